"""One redaction for every writer: no secret in any command's output, log, or the ledger."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from scheduler import redact, redacted_io
from scheduler.accounts import Account
from scheduler.platforms import find_platform
from tests.echo_standin import echo_server

TOKEN = "987654321:AAsecretTelegramTokenValue_abcdefghij"


def account(name: str, **values: object) -> Account:
    platform = find_platform(str(values["platform"]))
    assert platform is not None
    return Account(name, platform, platform.settings_model.model_validate(values), 1)


# --- the redactor, kind by kind ---------------------------------------------------------


def test_registered_telegram_token_is_masked_in_its_url_and_url_encoded() -> None:
    r = redact.Redactor([TOKEN])
    assert r.redact(f"POST /bot{TOKEN}/sendMessage") == "POST /bot***/sendMessage"
    for colon in ("%3A", "%3a"):
        split = TOKEN.replace(":", colon)
        assert r.redact(f"GET /bot{split}/getMe") == "GET /bot***/getMe"


def test_telegram_token_is_masked_by_shape_even_url_encoded() -> None:
    r = redact.Redactor()
    assert r.redact(f"at /bot{TOKEN}/x") == "at /bot***/x"
    assert r.redact(f"at /bot{TOKEN.replace(':', '%3A')}/x") == "at /bot***/x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refused Authorization: Bearer abc.def-1", "refused Authorization: Bearer ***"),
        ("Proxy-Authorization: Basic cHJveHk6cHc=", "Proxy-Authorization: Basic ***"),
        ("X-Api-Key: k-123456 next", "X-Api-Key: *** next"),
        ("Cookie: session=abcdef", "Cookie: ***"),
        ("via http://alice:hunter22@proxy:3128/", "via http://alice:***@proxy:3128/"),
        ("via https://ghp_abcdefghijklmnop1234@host/x", "via https://***@host/x"),
    ],
)
def test_credentials_are_masked_by_shape(text: str, expected: str) -> None:
    assert redact.Redactor().redact(text) == expected


def test_overlapping_secrets_are_both_masked_whole() -> None:
    r = redact.Redactor(["abcdef-1", "def-1-ghijk"])
    assert r.redact("x abcdef-1-ghijk y") == "x *** y"
    assert r.redact("x def-1-ghijk abcdef-1 y") == "x *** *** y"


def test_masking_keeps_json_valid() -> None:
    secret = 'se"cr\\et-with-quote'
    r = redact.Redactor([secret, TOKEN])
    line = json.dumps({"error": f"refused {secret} at /bot{TOKEN}/ Bearer x.y", "n": 1})
    masked = r.redact(line)
    assert json.loads(masked) == {"error": "refused *** at /bot***/ Bearer ***", "n": 1}


def test_sources_are_replaced_one_at_a_time() -> None:
    r = redact.Redactor()
    r.set_secrets(["project-secret"], source="project")
    r.set_secrets(["alert-secret"], source="alerts")
    r.set_secrets(["project-secret-2"], source="project")
    assert r.redact("project-secret alert-secret project-secret-2") == "project-secret *** ***"


def test_account_secrets_cover_webhook_paths_proxy_userinfo_and_discord() -> None:
    accounts = [
        account(
            "t",
            platform="telegram",
            bot_token=TOKEN,
            chat="@c",
            proxy="http://tg-user:pr%40xy-pass@proxy.example:3128",
        ),
        account("d", platform="discord", webhook_url="https://discord.com/api/webhooks/1/tok-en"),
        account(
            "w",
            platform="webhook",
            url="https://hooks.example/in/secret-path?key=secret-query",
            secret="hmac-key",
        ),
    ]
    r = redact.Redactor(redact.secret_values(accounts))
    basic = base64.b64encode(b"tg-user:pr@xy-pass").decode()
    text = (
        f"{TOKEN} pr@xy-pass pr%40xy-pass {basic} https://discord.com/api/webhooks/1/tok-en "
        "hmac-key POST /in/secret-path?key=secret-query HTTP/1.1 and /in/secret-path alone"
    )
    masked = r.redact(text)
    for secret in ("987654321", "xy-pass", basic, "tok-en", "hmac-key", "secret-path", "secret-q"):
        assert secret not in masked, masked


def test_every_var_value_in_use_is_registered(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("m:\n  platform: mastodon\n  instance: ${MY_HOST}\n", encoding="utf-8")
    environ = {"MY_HOST": "https://private-instance.example", "UNUSED": "unused-value"}
    found = redact.referenced_values(accounts, environ)
    assert "https://private-instance.example" in found and "unused-value" not in found


def test_alert_urls_and_the_database_password_are_secret() -> None:
    found = redact.environment_secrets(
        {
            "SOLIDARITY_ALERTS": "tgram://123456:alert-token-abc/42 mailto://u:mail-pw@x",
            "SOLIDARITY_DATABASE_URL": "postgresql+psycopg://app:db-pass-1@db/s",
        }
    )
    r = redact.Redactor(found)
    masked = r.redact("tgram://123456:alert-token-abc/42 mail-pw db-pass-1")
    assert "alert-token" not in masked and "mail-pw" not in masked and "db-pass" not in masked


def test_the_stream_masks_a_secret_written_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "REDACTOR", redact.Redactor(["piece-secret"]))
    out = io.StringIO()
    stream = redacted_io.RedactingStream(out)
    stream.write("a piece-")
    stream.write("secret b\nno end: piece-sec")
    stream.write("ret")
    stream.flush()
    assert out.getvalue() == "a *** b\nno end: ***"
    with pytest.raises(TypeError):
        stream.write(b"")  # type: ignore[arg-type]
    assert not hasattr(stream, "buffer")


# --- the ledger masks before storing ---------------------------------------------------


def test_the_ledger_stores_no_secret_on_any_write_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.holds import HoldStore
    from scheduler.ledger import Claim, Ledger
    from scheduler.manual import resolve

    secret = "ledger-secret-value"
    monkeypatch.setattr(redact, "REDACTOR", redact.Redactor([secret]))
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ledger = Ledger.open(url)
    now = datetime(2025, 6, 1, 9, tzinfo=UTC)
    echo = f"refused {secret} Authorization: Bearer tok-xyz /bot{TOKEN}/"

    def claim(n: int) -> Claim:
        return Claim(f"k{n}", "c", "p", "a", "mastodon", None, now + timedelta(minutes=n))

    rows = []
    first = ledger.claim(claim(1), now, "me", reason=echo)
    assert first is not None and first.reason is not None and secret not in first.reason
    rows.append(ledger.record(claim(2), "held", echo, now))
    for n, write in enumerate(
        (
            lambda i: ledger.failed(i, echo, now),
            lambda i: ledger.retrying(i, echo, now, now),
            lambda i: ledger.verify_later(i, echo, now, now),
            lambda i: ledger.uncertain(i, echo, now),
            lambda i: ledger.settle(i, "failed", echo, now),
            lambda i: ledger.settle(i, "skipped", echo, now),
        ),
        start=3,
    ):
        entry = ledger.claim_sending(claim(n), ["text"], now, "me")
        assert entry is not None
        rows.append(write(entry))
    last = ledger.claim_sending(claim(20), ["text"], now, "me")
    assert last is not None
    ledger.uncertain(last, "x", now)
    rows.append(resolve(ledger, "k20", None, echo, now))
    HoldStore(ledger).add("c", None, None, echo, now)
    for entry in rows:
        assert entry is not None
        shown = f"{entry.error} {entry.reason}"
        assert "refused" in shown and secret not in shown and "tok-xyz" not in shown, shown
    ledger.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("l.db*"))
    assert b"refused" in stored
    for leak in (secret, "tok-xyz", TOKEN):
        assert leak.encode() not in stored


# --- every command, end to end, against a platform that quotes the request --------------

CAMPAIGN = """\
name: leak
title: Leak test
timezone: UTC
language: en
starts: 2025-06-02
accounts: [t, m, w, d]
posts:
  - id: daily
    cron: "0 9 * * *"
    text: "Free the jailed journalists, every one of them."
  - id: evening
    cron: "0 18 * * *"
    text: "They are still in prison for their journalism."
"""

SECRETS = {
    "T_TOKEN": TOKEN,
    "M_TOKEN": "mastodon-secret-token-0123",
    "W_SECRET": "webhook-hmac-secret-4567",
    "PROXY_PASSWORD": "proxy-pass-word-777",
}
LITERAL_SECRETS = ["secret-path-89ab", "secret-query-cdef", "literal-proxy-pw-55"]
DISCORD_TOKEN = "discord-secret-token-XYZ987"
BAD_PROXY_PASSWORD = "bad-proxy-pw-99"


def _accounts(base: str) -> str:
    host = base.removeprefix("http://")
    return f"""\
t:
  platform: telegram
  api: {base}
  bot_token: ${{T_TOKEN}}
  chat: "@test"
  pace: 0
  proxy: http://tguser:literal-proxy-pw-55@{host}
m:
  platform: mastodon
  instance: {base}
  access_token: ${{M_TOKEN}}
  pace: 0
  proxy: http://proxyuser:${{PROXY_PASSWORD}}@{host}
w:
  platform: webhook
  url: {base}/hooks/secret-path-89ab?key=secret-query-cdef
  secret: ${{W_SECRET}}
  pace: 0
d:
  platform: discord
  webhook_url: ${{D_WEBHOOK}}
  pace: 0
"""


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret, safe="").lower()}


def test_no_command_output_or_ledger_holds_a_secret(tmp_path: Path) -> None:
    with echo_server() as (base, requests):
        (tmp_path / "campaigns").mkdir()
        (tmp_path / "templates").mkdir()
        (tmp_path / "campaigns" / "leak.yaml").write_text(CAMPAIGN, encoding="utf-8")
        (tmp_path / "accounts.yaml").write_text(_accounts(base), encoding="utf-8")
        (tmp_path / "bad.yaml").write_text(
            "t:\n  platform: telegram\n  bot_token: ${T_TOKEN}\n  chat: '@x'\n"
            f"  proxy: ftp://baduser:{BAD_PROXY_PASSWORD}@proxy.example:21\n",
            encoding="utf-8",
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SOLIDARITY_") and "proxy" not in k.lower()
        }
        env.update(SECRETS, D_WEBHOOK=f"{base}/api/webhooks/123456789/{DISCORD_TOKEN}")
        env["SOLIDARITY_NOW"] = "2025-06-02T09:00:20Z"
        exe = shutil.which("solidarity")
        command = [exe] if exe else [sys.executable, "-m", "scheduler"]
        outputs: dict[str, str] = {}

        def solidarity(*args: str, code: int | None = None) -> str:
            done = subprocess.run(
                [*command, *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if code is not None:
                assert done.returncode == code, done.stdout + done.stderr
            outputs[" ".join(args)] = done.stdout + done.stderr
            return done.stdout

        solidarity("validate")
        solidarity("validate", "--accounts", "bad.yaml", code=1)
        for fmt in ("table", "json", "html"):
            solidarity("preview", "--from", "2025-06-02", "--days", "2", "--format", fmt)
        solidarity("preview", "--format", "html", "-o", "preview.html")
        outputs["preview.html"] = (tmp_path / "preview.html").read_text(encoding="utf-8")
        solidarity("accounts", "check", code=1)
        solidarity("run", "--once", "--log-format", "json", code=1)
        solidarity("send", "leak", "evening", "--yes", code=1)
        solidarity("history", code=0)
        history = solidarity("history", "--format", "json", code=0)
        solidarity("status")
        solidarity("holds")
        env["SOLIDARITY_NOW"] = "2025-06-03T09:00:20Z"
        solidarity("run", "--once", code=1)

    every = [*SECRETS.values(), *LITERAL_SECRETS, DISCORD_TOKEN, BAD_PROXY_PASSWORD]
    every.append(base64.b64encode(b"proxyuser:" + SECRETS["PROXY_PASSWORD"].encode()).decode())
    quoted = " ".join(requests)
    # the test means something: the stand-in quoted the secrets back, and the errors were kept
    for secret in (TOKEN, SECRETS["M_TOKEN"], "secret-path-89ab", DISCORD_TOKEN):
        assert secret in quoted, secret
    rows = [json.loads(line) for line in history.splitlines()]  # still valid JSON
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) >= 8 and all("refused" in r["error"] for r in failed), json.dumps(rows)
    assert "baduser" in outputs["validate --accounts bad.yaml"]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("solidarity.db*"))
    assert b"refused" in stored
    for secret in every:
        for form in _forms(secret):
            assert form.encode() not in stored, f"{form} in the ledger"
            for name, output in outputs.items():
                assert form not in output, f"{form} in the output of {name}:\n{output}"


def test_a_secret_with_a_backslash_is_masked_inside_json() -> None:
    r = redact.Redactor(["value-with-\\-backslash"])
    line = json.dumps({"a": "x value-with-\\-backslash y", "b": [1, 2]})
    assert json.loads(r.redact(line))["a"] == "x *** y"


def test_history_masks_a_row_stored_before_masking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written by an older version still holds the token: history masks it on the way out."""
    from click.testing import CliRunner

    from scheduler.cli import cli
    from scheduler.ledger import Claim, Ledger

    secret = "old-row-secret-token-42"
    db = f"sqlite:///{tmp_path / 'old.db'}"
    ledger = Ledger.open(db)
    now = datetime(2025, 6, 1, 9, tzinfo=UTC)
    entry = ledger.claim_sending(Claim("k", "c", "p", "m", "mastodon", None, now), ["t"], now, "x")
    assert entry is not None
    ledger.failed(entry, f"mastodon (HTTP 401): refused {secret}", now)  # nothing registered
    ledger.close()
    assert secret.encode() in (tmp_path / "old.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("old.db-*")
    )
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("m:\n  platform: mastodon\n  access_token: ${M_TOKEN}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("M_TOKEN", secret)
    try:
        for fmt in ("table", "json"):
            result = CliRunner().invoke(
                cli, ["--db", db, "--accounts", str(accounts), "history", "--format", fmt]
            )
            assert result.exit_code == 0, result.output
            assert "refused ***" in result.output and secret not in result.output
    finally:
        redact.REDACTOR.set_secrets((), source="project")


def test_ordinary_words_are_not_made_secrets() -> None:
    """A user name without a password and a short webhook path would mask ordinary text."""
    assert redact.url_secrets("http://admin@proxy.example:3128") == set()
    found = redact.url_secrets("https://hooks.example/api?k=secret-query-1", whole_path=True)
    assert "/api" not in found and "/api?k=secret-query-1" in found
    assert redact.Redactor(found).redact("GET /api/v1/statuses") == "GET /api/v1/statuses"
