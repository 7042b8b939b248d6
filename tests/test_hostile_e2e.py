"""The real `solidarity send` and `run --once` against stand-ins whose answers cannot be read.

Issue 10, item 6: a 200 whose body cannot be read after the post was made made Telegram
record `failed` (a person might resend it: a duplicate), and Mastodon's `run --once`
never exited, leaving the row `sending`.
"""

from __future__ import annotations

import json

from tests.standins.fixtures import (  # noqa: F401 - pytest fixtures
    bluesky_standin,
    discord_standin,
    mastodon_standin,
    telegram_standin,
    webhook_standin,
)
from tests.test_send_e2e import solidarity, world  # noqa: F401 - a pytest fixture


def rows(world: dict[str, object]) -> list[dict[str, object]]:  # noqa: F811
    out = solidarity(world, "history", "--format", "json").stdout.splitlines()
    return [json.loads(line) for line in out]


def test_telegram_unreadable_200_is_uncertain_never_failed(world: dict[str, object]) -> None:  # noqa: F811
    world["t"].garble_next()  # type: ignore[attr-defined]
    result = solidarity(world, "send", "e2e", "spotlight", "--account", "t", "--yes")
    assert result.returncode == 1
    assert "t: uncertain" in result.stderr and "could not be read" in result.stderr
    assert len(world["t"].posts) == 1  # type: ignore[attr-defined]
    assert [r["status"] for r in rows(world)] == ["uncertain"]


def test_mastodon_unreadable_200_in_run_once_exits_and_posts_once(world: dict[str, object]) -> None:  # noqa: F811
    env = world["env"]
    assert isinstance(env, dict)
    env["SOLIDARITY_NOW"] = "2026-03-10T11:05:00+04:00"  # spotlight is due at 11:00 Baku
    world["m"].garble_next()  # type: ignore[attr-defined]
    result = solidarity(world, "run", "--once")
    assert result.returncode == 0, result.stderr
    assert len(world["m"].posts) == 1  # type: ignore[attr-defined]  # the retry's key found it
    statuses = {r["account"]: r["status"] for r in rows(world) if r["post"] == "spotlight"}
    assert statuses["m"] == "sent"


def test_a_base_url_httpx_cannot_use_is_a_path_line_problem(world: dict[str, object]) -> None:  # noqa: F811
    folder = world["dir"]
    accounts = folder / "accounts.yaml"  # type: ignore[operator]
    text = accounts.read_text(encoding="utf-8")
    accounts.write_text(
        text.replace(f"api: {world['t'].url}", 'api: "http://[::1"'), encoding="utf-8"
    )  # type: ignore[attr-defined]
    result = solidarity(world, "validate")
    assert result.returncode == 1
    assert "accounts.yaml:" in result.stdout + result.stderr
    assert "not a valid URL" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    sent = solidarity(world, "send", "e2e", "spotlight", "--account", "t", "--yes")
    assert sent.returncode != 0 and "Traceback" not in sent.stderr  # the account is refused
    assert not [r for r in rows(world) if r["status"] == "sending"]
