"""The real ``solidarity send`` and ``accounts check`` against platform stand-ins on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.standins.bluesky import Bluesky
from tests.standins.discord import Discord
from tests.standins.fixtures import (  # noqa: F401 - pytest fixtures
    bluesky_standin,
    discord_standin,
    mastodon_standin,
    telegram_standin,
    webhook_standin,
)
from tests.standins.mastodon import Mastodon
from tests.standins.telegram import Telegram
from tests.standins.webhook import Webhook

CAMPAIGN = """\
name: e2e
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
language: en
accounts: [m, b, t, d, w]
people:
  - id: fatima
    name: Fatimə Movlamli
posts:
  - id: spotlight
    cron: "0 11 * * *"
    for_each: people
    text: "{{ person.name }} <journalist> & colleague is jailed for journalism. {{ person.name | hashtag }} https://www.amnesty.org/en/documents/eur55/0128/2025/en/"
  - id: long
    cron: "0 12 * * *"
    accounts: [m, b]
    overflow: thread
    text: "{% for i in range(12) %}Sentence number {{ i }} keeps the names of jailed journalists in view. {% endfor %}"
"""


@pytest.fixture
def world(
    tmp_path: Path,
    mastodon_standin: Mastodon,  # noqa: F811
    bluesky_standin: Bluesky,  # noqa: F811
    telegram_standin: Telegram,  # noqa: F811
    discord_standin: Discord,  # noqa: F811
    webhook_standin: Webhook,  # noqa: F811
) -> dict[str, object]:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "e2e.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(
        f"""\
m:
  platform: mastodon
  instance: {mastodon_standin.url}
  access_token: ${{M_TOKEN}}
  pace: 0
b:
  platform: bluesky
  service: {bluesky_standin.url}
  handle: test.example
  app_password: ${{B_PASSWORD}}
  pace: 0
t:
  platform: telegram
  api: {telegram_standin.url}
  bot_token: ${{T_TOKEN}}
  chat: "@test"
  pace: 0
d:
  platform: discord
  webhook_url: ${{D_WEBHOOK}}
  pace: 0
w:
  platform: webhook
  url: {webhook_standin.url}/hook
  pace: 0
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(
        M_TOKEN="test-access-token",
        B_PASSWORD="test-app-password",
        T_TOKEN=telegram_standin.token,
        D_WEBHOOK=discord_standin.webhook_url,
    )
    return {
        "dir": tmp_path,
        "env": env,
        "m": mastodon_standin,
        "b": bluesky_standin,
        "t": telegram_standin,
        "d": discord_standin,
        "w": webhook_standin,
    }


def solidarity(world: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    return subprocess.run(
        [*base, *args],
        cwd=world["dir"],  # type: ignore[arg-type]
        env=world["env"],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        timeout=int(os.environ.get("E2E_TIMEOUT", "120")),
        check=False,
    )


def secrets(world: dict[str, object]) -> list[str]:
    env = world["env"]
    assert isinstance(env, dict)
    return [env["M_TOKEN"], env["B_PASSWORD"], env["T_TOKEN"], env["D_WEBHOOK"].rsplit("/", 1)[-1]]


def test_send_posts_to_every_platform_and_prints_the_urls(world: dict[str, object]) -> None:
    result = solidarity(world, "send", "e2e", "spotlight", "--yes")
    assert result.returncode == 0, result.stderr
    for account in ("m", "b", "t", "d", "w"):
        assert f"{account}: sent " in result.stdout
    assert (
        "https://t.me/test/" in result.stdout
        and "https://bsky.app/profile/test.example/post/" in result.stdout
    )
    for name in ("m", "b", "t", "d", "w"):
        standin = world[name]
        assert len(standin.posts) == 1, name  # type: ignore[attr-defined]
    bsky_post = world["b"].posts[0]  # type: ignore[attr-defined]
    record = bsky_post["value"]
    kinds = sorted(f["features"][0]["$type"].rsplit("#", 1)[1] for f in record["facets"])
    assert kinds == ["link", "tag"]
    history = solidarity(world, "history", "--format", "json")
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert sorted(r["account"] for r in rows) == ["b", "d", "m", "t", "w"]
    assert all(r["status"] == "sent" and r["remote_id"] for r in rows)
    assert all(r["person"] == "fatima" for r in rows)
    everything = result.stdout + result.stderr + history.stdout + history.stderr
    for secret in secrets(world):
        assert secret not in everything


def test_overflow_thread_is_posted_in_order_as_replies(world: dict[str, object]) -> None:
    result = solidarity(world, "send", "e2e", "long", "--yes")
    assert result.returncode == 0, result.stderr
    mastodon_posts = world["m"].posts  # type: ignore[attr-defined]
    assert len(mastodon_posts) == 2
    assert mastodon_posts[1].get("in_reply_to_id") == mastodon_posts[0]["id"]
    bluesky_posts = world["b"].posts  # type: ignore[attr-defined]
    assert len(bluesky_posts) >= 2
    assert all("reply" in p["value"] for p in bluesky_posts[1:])


def test_accounts_check_names_who_we_are(world: dict[str, object]) -> None:
    result = solidarity(world, "accounts", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "m (Mastodon): ok" in result.stdout and "t (Telegram): ok" in result.stdout
    world["t"].reject_auth()  # type: ignore[attr-defined]
    refused = solidarity(world, "accounts", "check", "--account", "t")
    assert refused.returncode == 1 and "refused: Unauthorized" in refused.stdout


def test_mastodon_5xx_after_creation_is_retried_once_without_a_second_post(
    world: dict[str, object],
) -> None:
    world["m"].fail_next(1, status=502, after=True)  # type: ignore[attr-defined]
    result = solidarity(world, "send", "e2e", "spotlight", "--account", "m", "--yes")
    assert result.returncode == 0, result.stderr
    assert len(world["m"].posts) == 1  # type: ignore[attr-defined]


def test_telegram_5xx_after_creation_is_uncertain_and_not_retried(world: dict[str, object]) -> None:
    world["t"].fail_next(1, status=502, after=True)  # type: ignore[attr-defined]
    result = solidarity(world, "send", "e2e", "spotlight", "--account", "t", "--yes")
    assert result.returncode == 1
    assert "t: uncertain" in result.stderr
    assert len(world["t"].posts) == 1  # type: ignore[attr-defined]
    rows = [
        json.loads(x) for x in solidarity(world, "history", "--format", "json").stdout.splitlines()
    ]
    assert [r["status"] for r in rows] == ["uncertain"]


def test_revoked_token_fails_in_the_platforms_words(world: dict[str, object]) -> None:
    world["m"].reject_auth()  # type: ignore[attr-defined]
    result = solidarity(world, "send", "e2e", "spotlight", "--account", "m", "--yes")
    assert result.returncode == 1
    assert "m: failed: mastodon (HTTP 401): The access token was revoked" in result.stderr
    status = solidarity(world, "status")
    assert status.returncode == 0, status.stderr
    assert "needs a human: 1 row(s)" in status.stdout
    assert "Accounts whose credentials were refused:" in status.stdout
    assert "m: mastodon (HTTP 401): The access token was revoked" in status.stdout
    assert "next  " in status.stdout


def test_send_refuses_without_secrets_and_names_them(world: dict[str, object]) -> None:
    env = world["env"]
    assert isinstance(env, dict)
    del env["T_TOKEN"]
    result = solidarity(world, "send", "e2e", "spotlight", "--yes")
    assert result.returncode == 1
    assert "T_TOKEN" in result.stderr
    assert not world["m"].posts  # type: ignore[attr-defined]


def test_send_asks_before_posting(world: dict[str, object]) -> None:
    result = solidarity(world, "send", "e2e", "spotlight", "--account", "w")
    assert result.returncode == 1  # no one answered yes
    assert not world["w"].posts  # type: ignore[attr-defined]


def tiny_png() -> bytes:
    """Return a valid 1x1 PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_images_go_out_with_their_alt_text(world: dict[str, object]) -> None:
    folder = world["dir"]
    assert isinstance(folder, Path)
    (folder / "campaigns" / "photo.png").write_bytes(tiny_png())
    campaign = (folder / "campaigns" / "e2e.yaml").read_text(encoding="utf-8")
    campaign += (
        "  - id: photo\n    at: 2030-01-01 10:00\n    accounts: [m, b, t]\n"
        "    text: Sevinj Vagifgizi, editor-in-chief of Abzas Media\n"
        "    media:\n      path: photo.png\n      alt: A portrait of Sevinj Vagifgizi\n"
    )
    (folder / "campaigns" / "e2e.yaml").write_text(campaign, encoding="utf-8")
    result = solidarity(world, "send", "e2e", "photo", "--yes")
    assert result.returncode == 0, result.stderr
    mastodon_media = [r for r in world["m"].requests if r.path == "/api/v2/media"]  # type: ignore[attr-defined]
    assert len(mastodon_media) == 1
    status = world["m"].posts[0]  # type: ignore[attr-defined]
    assert status["media_attachments"][0]["description"] == "A portrait of Sevinj Vagifgizi"
    record = world["b"].posts[0]["value"]  # type: ignore[attr-defined]
    assert record["embed"]["images"][0]["alt"] == "A portrait of Sevinj Vagifgizi"
    photo = [r for r in world["t"].requests if r.path.endswith("/sendPhoto")]  # type: ignore[attr-defined]
    assert len(photo) == 1


def test_an_accounts_proxy_carries_its_requests_and_no_others(world: dict[str, object]) -> None:
    import http.server
    import threading

    import httpx

    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self) -> None:
            seen.append(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "proxy-connection", "connection")
            }
            answer = httpx.request(self.command, self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in (
                    "transfer-encoding",
                    "connection",
                    "content-encoding",
                    "content-length",
                ):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = _forward

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        folder = world["dir"]
        assert isinstance(folder, Path)
        accounts = (folder / "accounts.yaml").read_text(encoding="utf-8")
        accounts = accounts.replace(
            "  access_token: ${M_TOKEN}\n",
            f"  access_token: ${{M_TOKEN}}\n  proxy: http://127.0.0.1:{server.server_port}\n",
        )
        (folder / "accounts.yaml").write_text(accounts, encoding="utf-8")
        result = solidarity(world, "send", "e2e", "spotlight", "--account", "m", "--yes")
        assert result.returncode == 0, result.stderr
        assert any(path.endswith("/api/v1/statuses") for path in seen)
        result = solidarity(world, "send", "e2e", "spotlight", "--account", "t", "--yes")
        assert result.returncode == 0, result.stderr
        assert not any("/bot" in path for path in seen)
    finally:
        server.shutdown()


def test_run_once_sends_what_is_due_once_and_records_the_missed(world: dict[str, object]) -> None:
    env = world["env"]
    assert isinstance(env, dict)
    env["SOLIDARITY_NOW"] = "2026-03-10T11:05:00+04:00"  # spotlight is due at 11:00 Baku
    first = solidarity(world, "run", "--once", "--campaigns", "campaigns")
    assert first.returncode == 0, first.stderr
    sent = [line for line in first.stdout.splitlines() if line.startswith("sent")]
    assert len(sent) == 5  # one person, five accounts
    missed = [line for line in first.stdout.splitlines() if line.startswith("missed")]
    assert missed and all("past its grace of 15m" in line for line in missed)
    second = solidarity(world, "run", "--once")
    assert second.returncode == 0 and second.stdout.strip() == "nothing due"
    for name in ("m", "b", "t", "d", "w"):
        assert len(world[name].posts) == 1, name  # type: ignore[attr-defined]
    env["SOLIDARITY_NOW"] = "2026-03-11T11:40:00+04:00"  # 40 minutes late: past grace
    late = solidarity(world, "run", "--once")
    assert late.returncode == 0
    assert [line.split()[0] for line in late.stdout.splitlines()] == [
        "missed"
    ] * 7  # 5 spotlight + 2 long
    rows = [
        json.loads(x) for x in solidarity(world, "history", "--format", "json").stdout.splitlines()
    ]
    assert {r["status"] for r in rows} == {"sent", "missed"}


def test_run_once_logs_json_lines_without_secrets_and_fails_on_a_failed_row(
    world: dict[str, object],
) -> None:
    env = world["env"]
    assert isinstance(env, dict)
    env["SOLIDARITY_NOW"] = "2026-03-10T11:05:00+04:00"
    world["t"].reject_auth()  # type: ignore[attr-defined]
    result = solidarity(world, "run", "--once", "--log-format", "json")
    assert result.returncode == 1  # a failed row
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    deliveries = {line["account"]: line for line in lines if "status" in line}
    assert deliveries["m"]["status"] == "sent" and deliveries["m"]["url"]
    assert deliveries["t"]["status"] == "failed" and "Unauthorized" in deliveries["t"]["reason"]
    assert {"key", "duration", "platform", "ts", "level"} <= set(deliveries["m"])
    for secret in (env["T_TOKEN"], env["M_TOKEN"], env["B_PASSWORD"], env["D_WEBHOOK"]):
        assert secret not in result.stderr and secret not in result.stdout


def test_run_refuses_to_start_naming_each_missing_secret(world: dict[str, object]) -> None:
    env = world["env"]
    assert isinstance(env, dict)
    del env["T_TOKEN"], env["D_WEBHOOK"]
    for args in (["run"], ["run", "--once"]):
        result = solidarity(world, *args)
        assert result.returncode == 1
        assert "missing secrets: D_WEBHOOK, T_TOKEN" in result.stderr
        assert "accounts.yaml:" in result.stderr
    assert not (Path(str(world["dir"])) / "solidarity.db").exists()
