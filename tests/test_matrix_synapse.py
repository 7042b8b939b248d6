"""The Matrix adapter against a real Synapse on 127.0.0.1: the real CLI where it can, else the adapter.

What Synapse shows here: the text and its HTML (links as <a href>, names escaped), an image as
m.image with its alt text and info (the media downloadable again), a room named by its alias,
one event for an occurrence sent twice (txnId), thread parts as consecutive messages, read-back
by txnId, and a refused token in Synapse's own words. Outside CI these skip when Synapse is not
installed (``.ci/install-synapse``); in CI they must run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from scheduler.errors import PermanentError
from scheduler.platforms.base import MediaFile, Outgoing
from scheduler.platforms.matrix import Matrix, MatrixSettings
from tests.servers.fixtures import synapse  # noqa: F401 - pytest fixtures
from tests.servers.synapse import MatrixRoom, MatrixUser, Synapse
from tests.test_real_servers import png

URL = "https://www.amnesty.org/en/documents/eur55/0128/2025/en/"
CAMPAIGN = f"""\
name: e2e
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
language: en
accounts: [room]
posts:
  - id: launch
    at: 2025-12-03 10:00
    text: "Sevinj Vagifgizi <journalist> & colleagues are jailed for journalism.\\nRead: {URL}"
    media:
      - path: portrait.png
        alt: "A portrait of Sevinj Vagifgizi"
"""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def messages(server: Synapse, token: str, room_id: str) -> list[dict[str, Any]]:
    """Return the room's m.room.message events, oldest first."""
    reply = httpx.get(
        f"{server.url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
        params={"dir": "b", "limit": "100"},
        headers=bearer(token),
    )
    reply.raise_for_status()
    events = [e for e in reply.json()["chunk"] if e["type"] == "m.room.message"]
    return list(reversed(events))


def adapter(server: Synapse, token: str, room: str) -> Matrix:
    settings = MatrixSettings.model_validate(
        {"platform": "matrix", "homeserver": server.url, "room": room, "access_token": token}
    )
    return Matrix(settings, httpx.Client(timeout=30))


def outgoing(
    parts: tuple[str, ...], media: tuple[MediaFile, ...] = (), key: str | None = None
) -> Outgoing:
    now = datetime.now(UTC)
    key = key or f"e2e/p/room/{now:%Y-%m-%dT%H:%M:%SZ}/{secrets.token_hex(4)}"
    return Outgoing(key, parts, now, media=media, scheduled_for=now, since=now)


@pytest.fixture
def member(synapse: Synapse) -> tuple[MatrixUser, MatrixRoom]:  # noqa: F811
    user = synapse.register()
    return user, synapse.create_room(user.access_token, alias=f"news-{secrets.token_hex(3)}")


def solidarity(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    return subprocess.run(
        [*base, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=int(os.environ.get("E2E_TIMEOUT", "120")),
        check=False,
    )


def project(tmp_path: Path, server: Synapse, room: str, token: str) -> dict[str, str]:
    """Write a project whose one account is the room; return the CLI's environment."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "e2e.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "campaigns" / "portrait.png").write_bytes(png(5, 3))
    (tmp_path / "accounts.yaml").write_text(
        f'room:\n  platform: matrix\n  homeserver: {server.url}\n  room: "{room}"\n'
        "  access_token: ${MATRIX_ACCESS_TOKEN}\n  pace: 0\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOLIDARITY_", "MATRIX_"))}
    env["MATRIX_ACCESS_TOKEN"] = token
    return env


def test_cli_sends_text_links_and_an_image_to_a_room_named_by_its_alias(
    tmp_path: Path,
    synapse: Synapse,  # noqa: F811
    member: tuple[MatrixUser, MatrixRoom],
) -> None:
    user, room = member
    assert room.alias is not None
    env = project(tmp_path, synapse, room.alias, user.access_token)

    sent = solidarity(tmp_path, env, "send", "e2e", "launch", "--yes")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "room: sent https://matrix.to/#/" in sent.stdout
    assert user.access_token not in sent.stdout + sent.stderr

    text, image = messages(synapse, user.access_token, room.room_id)
    body = f"Sevinj Vagifgizi <journalist> & colleagues are jailed for journalism.\nRead: {URL}"
    assert text["sender"] == user.user_id
    assert text["content"] == {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": "Sevinj Vagifgizi &lt;journalist&gt; &amp; colleagues are jailed for "
        f'journalism.<br>Read: <a href="{URL}">{URL}</a>',
    }
    picture = png(5, 3)
    content = image["content"]
    assert content["msgtype"] == "m.image"
    assert content["body"] == "A portrait of Sevinj Vagifgizi"
    assert content["info"] == {"mimetype": "image/png", "size": len(picture), "w": 5, "h": 3}
    server_name, media_id = content["url"].removeprefix("mxc://").split("/")
    download = httpx.get(
        f"{synapse.url}/_matrix/client/v1/media/download/{server_name}/{media_id}",
        headers=bearer(user.access_token),
    )
    assert download.status_code == 200 and download.content == picture

    history = solidarity(tmp_path, env, "history", "--format", "json")
    (row,) = [json.loads(line) for line in history.stdout.splitlines()]
    assert row["status"] == "sent" and row["remote_id"] == text["event_id"]


def test_cli_accounts_check_names_the_user_and_refuses_a_bad_token_in_synapses_words(
    tmp_path: Path,
    synapse: Synapse,  # noqa: F811
    member: tuple[MatrixUser, MatrixRoom],
) -> None:
    user, room = member
    env = project(tmp_path, synapse, room.room_id, user.access_token)
    checked = solidarity(tmp_path, env, "accounts", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "room (Matrix): ok" in checked.stdout and user.user_id in checked.stdout

    env["MATRIX_ACCESS_TOKEN"] = "syt_not_a_token_" + secrets.token_hex(8)
    refused = solidarity(tmp_path, env, "accounts", "check")
    assert refused.returncode == 1
    assert "M_UNKNOWN_TOKEN" in refused.stdout + refused.stderr
    sent = solidarity(tmp_path, env, "send", "e2e", "launch", "--yes")
    assert sent.returncode == 1
    assert "room: failed: matrix (HTTP 401): M_UNKNOWN_TOKEN: " in sent.stderr
    assert env["MATRIX_ACCESS_TOKEN"] not in sent.stdout + sent.stderr
    assert messages(synapse, user.access_token, room.room_id) == []


def test_the_same_occurrence_sent_twice_is_one_event_and_reads_back(
    synapse: Synapse,  # noqa: F811
    member: tuple[MatrixUser, MatrixRoom],
) -> None:
    user, room = member
    out = outgoing(("Free Sevinj Vagifgizi",))
    first = adapter(synapse, user.access_token, room.room_id).publish(out)
    # a retry, even from a fresh process (a new adapter, a new client), with the same token
    again = adapter(synapse, user.access_token, room.room_id).publish(out)
    assert [r.remote_id for r in again] == [r.remote_id for r in first]
    events = messages(synapse, user.access_token, room.room_id)
    assert [e["event_id"] for e in events] == [first[0].remote_id]

    found = adapter(synapse, user.access_token, room.room_id).read_back(out)
    assert found is not None and found.remote_id == first[0].remote_id
    other = outgoing(("Free Sevinj Vagifgizi",))  # the same text, another occurrence
    assert adapter(synapse, user.access_token, room.room_id).read_back(other) is None


def test_a_thread_goes_as_consecutive_messages_with_each_parts_image_after_it(
    tmp_path: Path,
    synapse: Synapse,  # noqa: F811
    member: tuple[MatrixUser, MatrixRoom],
) -> None:
    user, room = member
    (tmp_path / "p.png").write_bytes(png(2, 2))
    picture = MediaFile(tmp_path, "p.png", "Nargiz Absalamova at her desk")
    out = outgoing(("One (1/3)", "Two (2/3)", "Three (3/3)"), (picture,))
    receipts = adapter(synapse, user.access_token, room.room_id).publish(out)
    events = messages(synapse, user.access_token, room.room_id)
    assert [e["event_id"] for e in events] == [r.remote_id for r in receipts]
    assert [(e["content"]["msgtype"], e["content"]["body"]) for e in events] == [
        ("m.text", "One (1/3)"),
        ("m.image", "Nargiz Absalamova at her desk"),
        ("m.text", "Two (2/3)"),
        ("m.text", "Three (3/3)"),
    ]
    found = adapter(synapse, user.access_token, room.room_id).read_back(out)
    assert found is not None and found.remote_id == receipts[0].remote_id


def test_an_unknown_alias_and_a_room_not_joined_are_refused_in_synapses_words(
    synapse: Synapse,  # noqa: F811
    member: tuple[MatrixUser, MatrixRoom],
) -> None:
    user, room = member
    with pytest.raises(PermanentError) as missing:
        adapter(synapse, user.access_token, "#nowhere:localhost").publish(outgoing(("x",)))
    assert missing.value.status == 404 and "M_NOT_FOUND" in missing.value.reason

    stranger = synapse.register()
    with pytest.raises(PermanentError) as forbidden:
        adapter(synapse, stranger.access_token, room.room_id).publish(outgoing(("x",)))
    assert forbidden.value.status == 403 and "M_FORBIDDEN" in forbidden.value.reason
    with pytest.raises(PermanentError) as unjoined:
        adapter(synapse, stranger.access_token, room.room_id).check()
    assert "has not joined" in unjoined.value.reason
    assert messages(synapse, user.access_token, room.room_id) == []
