"""The Bluesky adapter against the reference PDS on 127.0.0.1 (no AppView: read com.atproto.repo.*).

What the PDS shows here: facets over the right UTF-8 bytes (a link, a #tag, a tag with a
non-ASCII name), the link card as an external embed, images with their alt text and aspect
ratio whose blobs read back whole, a three-part thread whose root and parent refs are the
records' own, a retry that meets the PDS's 500 for a taken record key and settles it by reading
the record there (no second post), read-back at the derived record keys, a refused app password
and a record the PDS refuses, each in the PDS's own words. The real ``solidarity send`` posts
one of them. Outside CI these skip when the PDS is not installed (``.ci/install-pds``).
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

import httpx
import pytest

from scheduler.errors import PermanentError
from scheduler.platforms.base import Card, MediaFile, Outgoing
from scheduler.platforms.bluesky import POST, Bluesky, BlueskySettings, record_key
from tests.servers.fixtures import pds  # noqa: F401 - pytest fixtures
from tests.servers.pds import BlueskyAccount, Pds
from tests.test_real_servers import png

URL = "https://www.amnesty.org/en/documents/eur55/0128/2025/en/"


@pytest.fixture
def account(pds: Pds) -> tuple[BlueskyAccount, str]:  # noqa: F811
    """A fresh account and an app password for it."""
    made = pds.create_account(f"hr{secrets.token_hex(3)}")
    return made, pds.create_app_password(made)


def adapter(server: Pds, handle: str, app_password: str) -> Bluesky:
    settings = BlueskySettings.model_validate(
        {
            "platform": "bluesky",
            "service": server.url,
            "handle": handle,
            "app_password": app_password,
        }
    )
    return Bluesky(settings, httpx.Client(timeout=30))


def outgoing(parts: tuple[str, ...], **extra: Any) -> Outgoing:
    now = datetime.now(UTC)
    key = f"e2e/p/b/{now:%Y-%m-%dT%H:%M:%SZ}/{secrets.token_hex(4)}"
    return Outgoing(key, parts, now, language="en", scheduled_for=now, since=now, **extra)


def get_record(server: Pds, did: str, rkey: str) -> dict[str, Any]:
    reply = httpx.get(
        f"{server.url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": did, "collection": POST, "rkey": rkey},
    )
    assert reply.status_code == 200, reply.text
    found: dict[str, Any] = reply.json()
    return found


def records(server: Pds, did: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server.url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": POST, "limit": "100"},
    )
    reply.raise_for_status()
    listed: list[dict[str, Any]] = reply.json()["records"]
    return listed


def spans(text: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """Return each facet's covered text and what it means (uri or tag)."""
    raw = text.encode()
    found = []
    for facet in record.get("facets", []):
        piece = raw[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()
        feature = facet["features"][0]
        found.append((piece, feature.get("uri") or feature.get("tag")))
    return found


def test_facets_cover_a_link_a_tag_and_a_non_ascii_name(
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    text = f"Fatimə Movlamlı is jailed. #FreeThePress #FatiməMovlamlı {URL}"
    (receipt,) = adapter(pds, who.handle, app_password).publish(outgoing((text,)))
    record = get_record(pds, who.did, receipt.remote_id.rsplit("/", 1)[1])["value"]
    assert record["text"] == text and record["langs"] == ["en"]
    assert spans(text, record) == [
        ("#FreeThePress", "FreeThePress"),
        ("#FatiməMovlamlı", "FatiməMovlamlı"),
        (URL, URL),
    ]
    assert receipt.url == f"https://bsky.app/profile/{who.handle}/post/{record_key_of(receipt)}"


def record_key_of(receipt: Any) -> str:
    return str(receipt.remote_id).rsplit("/", 1)[1]


def test_link_card_is_an_external_embed(
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    card = Card(URL, "Azerbaijan: From Newsroom to Cell", "Amnesty International's report")
    out = outgoing((f"Read the report: {URL}",), card=card)
    (receipt,) = adapter(pds, who.handle, app_password).publish(out)
    record = get_record(pds, who.did, record_key_of(receipt))["value"]
    assert record["embed"] == {
        "$type": "app.bsky.embed.external",
        "external": {"uri": URL, "title": card.title, "description": card.description},
    }


def test_images_carry_their_alt_text_and_their_blobs_read_back_whole(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    (tmp_path / "a.png").write_bytes(png(6, 4))
    (tmp_path / "b.png").write_bytes(png(2, 3))
    media = (
        MediaFile(tmp_path, "a.png", "Sevinj Vagifgizi in court"),
        MediaFile(tmp_path, "b.png", "Fatimə Movlamlı, a portrait"),
    )
    (receipt,) = adapter(pds, who.handle, app_password).publish(
        outgoing(("Free them",), media=media)
    )
    embed = get_record(pds, who.did, record_key_of(receipt))["value"]["embed"]
    assert embed["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in embed["images"]] == [m.alt for m in media]
    assert [i["aspectRatio"] for i in embed["images"]] == [
        {"width": 6, "height": 4},
        {"width": 2, "height": 3},
    ]
    for image, name in zip(embed["images"], ("a.png", "b.png"), strict=True):
        assert image["image"]["mimeType"] == "image/png"
        blob = httpx.get(
            f"{pds.url}/xrpc/com.atproto.sync.getBlob",
            params={"did": who.did, "cid": image["image"]["ref"]["$link"]},
        )
        assert blob.status_code == 200 and blob.content == (tmp_path / name).read_bytes()


def test_a_thread_keeps_root_and_parent_and_a_retry_posts_nothing_twice(
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    out = outgoing(("One (1/3)", "Two (2/3)", "Three (3/3)"))
    receipts = adapter(pds, who.handle, app_password).publish(out)
    assert [r.remote_id for r in receipts] == [
        f"at://{who.did}/{POST}/{record_key(out, i)}" for i in range(3)
    ]
    got = [get_record(pds, who.did, record_key(out, i)) for i in range(3)]
    root = {"uri": got[0]["uri"], "cid": got[0]["cid"]}
    assert "reply" not in got[0]["value"]
    assert got[1]["value"]["reply"] == {"root": root, "parent": root}
    assert got[2]["value"]["reply"] == {
        "root": root,
        "parent": {"uri": got[1]["uri"], "cid": got[1]["cid"]},
    }

    # A retry from a fresh adapter: the PDS answers each taken rkey with a 500, and the
    # adapter settles it by reading the record at that key.
    again = adapter(pds, who.handle, app_password).publish(out)
    assert [r.remote_id for r in again] == [r.remote_id for r in receipts]
    assert len(records(pds, who.did)) == 3

    found = adapter(pds, who.handle, app_password).read_back(out)
    assert found is not None and found.remote_id == receipts[0].remote_id
    assert adapter(pds, who.handle, app_password).read_back(outgoing(("One (1/3)",))) is None


def test_a_refused_app_password_and_a_refused_record_in_the_pdss_words(
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    with pytest.raises(PermanentError) as login:
        adapter(pds, who.handle, "aaaa-bbbb-cccc-dddd").publish(outgoing(("Free them",)))
    assert login.value.status == 401
    assert login.value.reason == "AuthenticationRequired: Invalid identifier or password"

    with pytest.raises(PermanentError) as refused:
        adapter(pds, who.handle, app_password).publish(outgoing(("x" * 301,)))
    assert refused.value.status == 400
    assert refused.value.reason.startswith("InvalidRequest: ")
    assert "grapheme too big (maximum 300, got 301)" in refused.value.reason
    assert records(pds, who.did) == []


def test_the_cli_sends_a_post_with_facets_an_image_and_a_card(
    tmp_path: Path,
    pds: Pds,  # noqa: F811
    account: tuple[BlueskyAccount, str],
) -> None:
    who, app_password = account
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "portrait.png").write_bytes(png(4, 4))
    (tmp_path / "campaigns" / "e2e.yaml").write_text(
        f"""\
name: e2e
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
language: en
accounts: [b]
people:
  - id: fatima
    name: Fatimə Movlamlı
posts:
  - id: spotlight
    at: 2025-12-03 10:00
    for_each: people
    text: "{{{{ person.name }}}} is jailed for journalism. {{{{ person.name | hashtag }}}} {URL}"
    media:
      - path: portrait.png
        alt: "A portrait of Fatimə Movlamlı"
""",
        encoding="utf-8",
    )
    (tmp_path / "accounts.yaml").write_text(
        f"b:\n  platform: bluesky\n  service: {pds.url}\n  handle: {who.handle}\n"
        "  app_password: ${BLUESKY_APP_PASSWORD}\n  pace: 0\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOLIDARITY_", "BLUESKY_"))}
    env["BLUESKY_APP_PASSWORD"] = app_password
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    sent = subprocess.run(
        [*base, "send", "e2e", "spotlight", "--yes"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert f"b: sent https://bsky.app/profile/{who.handle}/post/" in sent.stdout
    assert app_password not in sent.stdout + sent.stderr
    (stored,) = records(pds, who.did)
    record = stored["value"]
    text = f"Fatimə Movlamlı is jailed for journalism. #FatiməMovlamlı {URL}"
    assert record["text"] == text
    assert spans(text, record) == [("#FatiməMovlamlı", "FatiməMovlamlı"), (URL, URL)]
    assert record["embed"]["images"][0]["alt"] == "A portrait of Fatimə Movlamlı"
    assert json.loads(json.dumps(record["langs"])) == ["en"]
