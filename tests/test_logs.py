"""The daemon's logs: text and JSON lines, and no secret in either."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from scheduler import logs
from scheduler.accounts import Account
from scheduler.platforms import find_platform

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
TELEGRAM_URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
FORMATS: tuple[Literal["text", "json"], ...] = ("text", "json")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Configure logging into a StringIO; put the root logger back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    out = io.StringIO()
    yield out
    for handler in root.handlers[:]:
        if handler not in saved[0]:
            root.removeHandler(handler)
    root.setLevel(saved[1])
    logs.REDACTOR.set_secrets(())


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


# --- Redactor ---------------------------------------------------------------


def test_registered_secrets_are_masked_longest_first() -> None:
    r = logs.Redactor()
    r.set_secrets(["s3cretvalue", "s3cretvalue-and-more", "abc", ""])
    assert r.redact("x s3cretvalue-and-more y s3cretvalue z") == "x *** y *** z"
    assert r.redact("abc stays: too short to be a secret") == "abc stays: too short to be a secret"


def test_many_secrets_sharing_their_start_are_each_masked_whole() -> None:
    hooks = [f"https://hooks.example.org/services/T0/B{i:04d}/tok{i}" for i in range(300)]
    long = "eyJ" + "x" * 5000  # a token longer than Python's recursion limit
    r = logs.Redactor([*hooks, long, "prefix-secret", "prefix-secret-longer"])
    for hook in (hooks[0], hooks[137], hooks[-1]):
        assert r.redact(f'{{"url": "{hook}", "n": 1}}') == '{"url": "***", "n": 1}'
    assert r.redact(f"a {long} b") == "a *** b"
    assert r.redact("prefix-secret-longer prefix-secret prefix-secre") == "*** *** prefix-secre"
    # a word that only starts like a secret is left alone
    assert r.redact("https://hooks.example.org/services/T0/B9999/x") == (
        "https://hooks.example.org/services/T0/B9999/x"
    )


def test_set_secrets_replaces_the_set() -> None:
    r = logs.Redactor(["first-secret"])
    r.set_secrets(["second-secret"])
    assert r.redact("first-secret second-secret") == "first-secret ***"
    assert r.secrets == frozenset({"second-secret"})


def test_registered_secret_is_masked_url_encoded_too() -> None:
    r = logs.Redactor(["pa/ss+word"])
    assert r.redact("GET /x?p=pa%2Fss%2Bword") == "GET /x?p=***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"POST {TELEGRAM_URL} 200",
            "POST https://api.telegram.org/bot***/sendMessage 200",
        ),
        ("token is " + TOKEN, "token is ***"),
        ("Authorization: Bearer xyz", "Authorization: Bearer ***"),
        ("headers {'authorization': 'Bearer ey.J0-x'}", "headers {'authorization': 'Bearer ***'}"),
        ("sent with Bearer abc.def", "sent with Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        (
            "socks5://alice:hunter22@proxy.example:1080 refused",
            "socks5://alice:***@proxy.example:1080 refused",
        ),
        (
            "postgresql+psycopg://app:pw0rd@db/solidarity",
            "postgresql+psycopg://app:***@db/solidarity",
        ),
        (
            "GET https://h.example/sync?since=1&access_token=syt_abc&timeout=3",
            "GET https://h.example/sync?since=1&access_token=***&timeout=3",
        ),
        ("https://h.example/?token=t0k&key=k3y&api_key=a&password=p&secret=s", None),
        (
            "POST https://discord.com/api/webhooks/112233445566/AbC-dEf_123?wait=true",
            "POST https://discord.com/api/webhooks/112233445566/***?wait=true",
        ),
        (
            'OAuth oauth_consumer_key="ck", oauth_nonce="n", oauth_signature="sig%3D"',
            'OAuth oauth_consumer_key="***", oauth_nonce="n", oauth_signature="***"',
        ),
        ("an ordinary line: 12:30, user@example.org", "an ordinary line: 12:30, user@example.org"),
    ],
)
def test_credentials_are_masked_by_shape(text: str, expected: str | None) -> None:
    got = logs.Redactor().redact(text)
    if expected is None:
        assert got == "https://h.example/?token=***&key=***&api_key=***&password=***&secret=***"
    else:
        assert got == expected


def test_redactor_is_safe_while_secrets_change() -> None:
    r = logs.Redactor(["secret-0"])
    errors: list[str] = []

    def swap() -> None:
        for i in range(300):
            r.set_secrets([f"secret-{i}", "always-secret"])

    def read() -> None:
        for _ in range(300):
            got = r.redact("always-secret")
            if got not in ("***", "always-secret"):
                errors.append(got)

    threads = [threading.Thread(target=swap), *(threading.Thread(target=read) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert r.redact("always-secret") == "***"


# --- formatters through configure() -------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_logged_telegram_url_never_shows_its_token(
    stream: io.StringIO, fmt: Literal["text", "json"]
) -> None:
    logs.configure(fmt, stream=stream)
    logging.getLogger("scheduler.test").warning("HTTP Request: POST %s failed", TELEGRAM_URL)
    logging.getLogger("scheduler.test").info("token alone: %s", TOKEN.split(":")[1])
    output = stream.getvalue()
    assert TOKEN not in output
    assert TOKEN.split(":")[1] in output  # the bare half is not shaped like a token...
    redactor = logs.configure(fmt, stream=stream)
    redactor.set_secrets([TOKEN.split(":")[1]])  # ...until it is registered
    logging.getLogger("scheduler.test").info("token alone: %s", TOKEN.split(":")[1])
    assert TOKEN.split(":")[1] not in lines(stream)[-1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_registered_secret_in_a_traceback_is_masked(
    stream: io.StringIO, fmt: Literal["text", "json"]
) -> None:
    redactor = logs.configure(fmt, stream=stream)
    redactor.set_secrets(["mastodon-access-token-value"])
    try:
        raise RuntimeError("refused mastodon-access-token-value")
    except RuntimeError:
        logging.getLogger("scheduler.dispatch").exception("send failed")
    output = stream.getvalue()
    assert "mastodon-access-token-value" not in output
    assert "RuntimeError: refused ***" in (json.loads(output)["exc"] if fmt == "json" else output)


def test_json_lines_parse_and_carry_fields(stream: io.StringIO) -> None:
    redactor = logs.configure("json", stream=stream)
    redactor.set_secrets(["hunter2-secret"])
    log = logging.getLogger("scheduler.dispatch")
    log.info(
        "sent %s to %s",
        "occ-1",
        "hr-mastodon",
        extra={
            "fields": {
                "account": "hr-mastodon",
                "attempt": 2,
                "ok": True,
                "level": "overwrite me",  # the base keys win
                "when": object(),  # not JSON: its str()
                "auth": "hunter2-secret",
                "quote": 'say "hi" \\ bye',
            }
        },
    )
    log.warning("no fields here")
    records = [json.loads(line) for line in lines(stream)]
    assert len(records) == 2
    first, second = records
    assert first["message"] == "sent occ-1 to hr-mastodon"
    assert first["logger"] == "scheduler.dispatch"
    assert first["level"] == "INFO"
    assert first["account"] == "hr-mastodon"
    assert first["attempt"] == 2
    assert first["ok"] is True
    assert first["when"].startswith("<object object at")
    assert first["auth"] == "***"
    assert first["quote"] == 'say "hi" \\ bye'
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert "exc" not in first
    assert second == {
        "ts": second["ts"],
        "level": "WARNING",
        "logger": "scheduler.dispatch",
        "message": "no fields here",
    }


def test_json_line_stays_valid_when_credentials_are_masked(stream: io.StringIO) -> None:
    logs.configure("json", stream=stream)
    message = 'proxy "socks5://u:p4ss@h:1" and "https://x/?token=abc\\"def" and Bearer q"r'
    logging.getLogger("t").info(message, extra={"fields": {"url": "http://a:b@c", "d": "x@y"}})
    record = json.loads(stream.getvalue())
    assert "p4ss" not in record["message"]
    assert "token=***" in record["message"]
    assert record["url"] == "http://a:***@c"
    assert record["d"] == "x@y"


def test_text_lines_have_a_utc_timestamp_level_logger_and_the_redacted_message(
    stream: io.StringIO,
) -> None:
    logs.configure("text", stream=stream)
    logging.getLogger("scheduler.catchup").info(
        "missed %d at %s", 3, "https://u:pw@h/", extra={"fields": {"n": 3}}
    )
    (line,) = lines(stream)
    stamp, level, name, rest = line.split(" ", 3)
    assert stamp.endswith("Z") and stamp[10] == "T"
    assert (level, name) == ("INFO", "scheduler.catchup:")
    assert rest == "missed 3 at https://u:***@h/"  # fields are for the JSON form


def test_configure_twice_installs_one_handler_and_quiets_noisy_loggers(
    stream: io.StringIO,
) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    first = logs.configure("text", stream=stream)
    second = logs.configure("json", level=logging.DEBUG, stream=stream)
    assert first is second is logs.REDACTOR
    assert len(root.handlers) == before + 1
    assert root.level == logging.DEBUG
    for noisy in ("httpx", "httpcore", "alembic", "apscheduler"):
        assert logging.getLogger(noisy).level == logging.WARNING
    logging.getLogger("httpx").info(f"HTTP Request: POST {TELEGRAM_URL}")
    logging.getLogger("x").debug("once")
    assert [json.loads(line)["message"] for line in lines(stream)] == ["once"]


def test_configure_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="text or json"):
        logs.configure("xml")  # type: ignore[arg-type]


# --- secret_values ------------------------------------------------------------


def account(name: str, **values: object) -> Account:
    platform = find_platform(str(values["platform"]))
    assert platform is not None
    return Account(name, platform, platform.settings_model.model_validate(values), 1)


def test_secret_values_reads_secret_fields_and_url_passwords() -> None:
    accounts = [
        account(
            "hr-telegram",
            platform="telegram",
            bot_token=TOKEN,
            chat="@c",
            proxy="socks5://user:pr%40xy-pass@proxy.example:1080",
        ),
        account(
            "hr-discord",
            platform="discord",
            webhook_url="https://discord.com/api/webhooks/1/tok-en",
        ),
        account("hook", platform="webhook", url="https://rx:hook-pass@hooks.example/in"),
        account("hook2", platform="webhook", url="https://hooks.example/in", secret="hmac-key"),
        account(
            "hr-x",
            platform="x",
            api_key="ak-1234",
            api_secret="as-1234",
            access_token="at-1234",
            access_token_secret="ats-1234",
        ),
    ]
    # among others: the userinfo whole, Basic credentials, a webhook's path (test_redaction)
    assert logs.secret_values(accounts) >= {
        TOKEN,
        "pr%40xy-pass",
        "pr@xy-pass",
        "https://discord.com/api/webhooks/1/tok-en",
        "hook-pass",
        "hmac-key",
        "ak-1234",
        "as-1234",
        "at-1234",
        "ats-1234",
    }


def test_secret_values_skips_unset_secrets() -> None:
    platform = find_platform("webhook")
    assert platform is not None
    values: dict[str, Any] = {"platform": "webhook", "url": "https://h/"}
    unset = platform.settings_model.model_construct(**values)
    assert logs.secret_values([Account("hook", platform, unset, 1)]) == set()
