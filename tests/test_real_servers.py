"""Smoke tests of the real servers (Synapse, the Bluesky PDS) with httpx alone, not our adapters.

They pin down the behaviours the Matrix and Bluesky adapters rely on: Synapse answers a
repeated txnId with the first event, the PDS refuses a second record at the same rkey, and how
media and blobs are referenced. Outside CI they skip when the servers are not installed
(``.ci/install-synapse``, ``.ci/install-pds``); in CI they must run.
"""

from __future__ import annotations

import secrets
import struct
import time
import zlib
from typing import Any
from urllib.parse import quote

import httpx

from tests.servers.fixtures import pds, synapse  # noqa: F401 - pytest fixtures
from tests.servers.pds import Pds
from tests.servers.synapse import Synapse

TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid() -> str:
    """A fresh atproto TID (13 base32-sortable characters: microseconds, then a clock id)."""
    value = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    return "".join(TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def png(width: int = 2, height: int = 1) -> bytes:
    """A small, valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- Synapse --------------------------------------------------------------------------------


def test_synapse_registers_a_user_who_can_ask_whoami(synapse: Synapse) -> None:  # noqa: F811
    user = synapse.register()
    assert user.user_id.endswith(":localhost")

    reply = httpx.get(
        f"{synapse.url}/_matrix/client/v3/account/whoami", headers=bearer(user.access_token)
    )
    assert reply.status_code == 200
    assert reply.json()["user_id"] == user.user_id

    refused = httpx.get(f"{synapse.url}/_matrix/client/v3/account/whoami", headers=bearer("nope"))
    assert refused.status_code == 401
    assert refused.json()["errcode"] == "M_UNKNOWN_TOKEN"


def test_synapse_room_alias_resolves_to_the_room(synapse: Synapse) -> None:  # noqa: F811
    user = synapse.register()
    room = synapse.create_room(user.access_token, alias=f"news-{secrets.token_hex(3)}")
    assert room.alias is not None and room.alias.endswith(":localhost")

    reply = httpx.get(
        f"{synapse.url}/_matrix/client/v3/directory/room/{quote(room.alias, safe='')}",
        headers=bearer(user.access_token),
    )
    assert reply.status_code == 200
    assert reply.json()["room_id"] == room.room_id

    missing = httpx.get(
        f"{synapse.url}/_matrix/client/v3/directory/room/{quote('#nowhere:localhost', safe='')}",
        headers=bearer(user.access_token),
    )
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"


def room_messages(server: Synapse, token: str, room_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server.url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
        params={"dir": "b", "limit": "100"},
        headers=bearer(token),
    )
    reply.raise_for_status()
    return [event for event in reply.json()["chunk"] if event["type"] == "m.room.message"]


def test_synapse_repeated_txn_id_gives_the_same_single_event(synapse: Synapse) -> None:  # noqa: F811
    user = synapse.register()
    room = synapse.create_room(user.access_token)
    txn_id = f"solidarity-{secrets.token_hex(8)}"
    send = (
        f"{synapse.url}/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}"
        f"/send/m.room.message/{txn_id}"
    )
    content = {"msgtype": "m.text", "body": "Free them all"}

    first = httpx.put(send, json=content, headers=bearer(user.access_token))
    again = httpx.put(send, json=content, headers=bearer(user.access_token))
    assert first.status_code == again.status_code == 200
    assert first.json()["event_id"] == again.json()["event_id"]

    sent = room_messages(synapse, user.access_token, room.room_id)
    assert [e["event_id"] for e in sent] == [first.json()["event_id"]]
    assert sent[0]["content"] == content

    # The same txnId from another access token (another device) is a new transaction.
    other = synapse.login(user.user_id.split(":")[0][1:], user.password)
    third = httpx.put(send, json=content, headers=bearer(other.access_token))
    assert third.status_code == 200
    assert third.json()["event_id"] != first.json()["event_id"]


def test_synapse_uploads_media_and_sends_an_image(synapse: Synapse) -> None:  # noqa: F811
    user = synapse.register()
    room = synapse.create_room(user.access_token)
    image = png(3, 2)

    upload = httpx.post(
        f"{synapse.url}/_matrix/media/v3/upload",
        params={"filename": "portrait.png"},
        content=image,
        headers={**bearer(user.access_token), "Content-Type": "image/png"},
    )
    assert upload.status_code == 200
    content_uri = upload.json()["content_uri"]
    assert content_uri.startswith("mxc://localhost/")

    content = {
        "msgtype": "m.image",
        "body": "A portrait of the journalist",
        "url": content_uri,
        "info": {"mimetype": "image/png", "size": len(image), "w": 3, "h": 2},
    }
    sent = httpx.put(
        f"{synapse.url}/_matrix/client/v3/rooms/{quote(room.room_id, safe='')}"
        f"/send/m.room.message/img-{secrets.token_hex(6)}",
        json=content,
        headers=bearer(user.access_token),
    )
    assert sent.status_code == 200

    # Downloads are authenticated media (/_matrix/client/v1/media/...).
    server, media_id = content_uri.removeprefix("mxc://").split("/")
    download = httpx.get(
        f"{synapse.url}/_matrix/client/v1/media/download/{server}/{media_id}",
        headers=bearer(user.access_token),
    )
    assert download.status_code == 200
    assert download.content == image


# --- the Bluesky PDS ------------------------------------------------------------------------


def session(server: Pds, identifier: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": identifier, "password": password},
    )


def test_pds_app_password_opens_a_session(pds: Pds) -> None:  # noqa: F811
    account = pds.create_account()
    assert account.handle.endswith(".test")
    assert account.did.startswith("did:plc:")
    app_password = pds.create_app_password(account)

    opened = session(pds, account.handle, app_password)
    assert opened.status_code == 200
    assert opened.json()["did"] == account.did
    assert opened.json()["handle"] == account.handle

    refused = session(pds, account.handle, "aaaa-bbbb-cccc-dddd")
    assert refused.status_code == 401
    assert refused.json()["error"] == "AuthenticationRequired"

    bad_token = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json={"repo": account.did, "collection": "app.bsky.feed.post", "record": {}},
        headers=bearer("not-a-token"),
    )
    assert bad_token.status_code == 400
    assert bad_token.json()["error"] == "InvalidToken"


def post(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2026-12-01T10:00:00.000Z",
        **extra,
    }


def test_pds_second_record_at_the_same_rkey_is_refused(pds: Pds) -> None:  # noqa: F811
    account = pds.create_account()
    token = session(pds, account.handle, pds.create_app_password(account)).json()["accessJwt"]
    rkey = tid()
    record = post("Free them all")
    create = {"repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkey}

    first = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json={**create, "record": record},
        headers=bearer(token),
    )
    assert first.status_code == 200
    assert first.json()["uri"] == f"at://{account.did}/app.bsky.feed.post/{rkey}"

    # createRecord again at the same rkey: a 500 with no detail (the PDS's log says "There is
    # already a value at key: app.bsky.feed.post/RKEY"), and nothing is created.
    again = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json={**create, "record": record},
        headers=bearer(token),
    )
    assert again.status_code == 500
    assert again.json() == {"error": "InternalServerError", "message": "Internal Server Error"}

    # putRecord with swapRecord null means "only if there is none": the same record again is
    # a no-op 200 with the same cid; a different one is a clean 400 InvalidSwap.
    put = {**create, "swapRecord": None}
    same = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.putRecord",
        json={**put, "record": record},
        headers=bearer(token),
    )
    assert same.status_code == 200
    assert same.json()["cid"] == first.json()["cid"]
    other = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.putRecord",
        json={**put, "record": post("Something else")},
        headers=bearer(token),
    )
    assert other.status_code == 400
    assert other.json()["error"] == "InvalidSwap"

    # Read-back: getRecord at the rkey gives the one record, unchanged.
    got = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkey},
    )
    assert got.status_code == 200
    assert got.json()["cid"] == first.json()["cid"]
    assert got.json()["value"]["text"] == "Free them all"
    listed = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": account.did, "collection": "app.bsky.feed.post"},
    )
    assert [r["uri"] for r in listed.json()["records"]] == [first.json()["uri"]]

    missing = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": account.did, "collection": "app.bsky.feed.post", "rkey": tid()},
    )
    assert missing.status_code == 400
    assert missing.json()["error"] == "RecordNotFound"


def test_pds_refuses_an_invalid_record_in_its_own_words(pds: Pds) -> None:  # noqa: F811
    account = pds.create_account()
    reply = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": account.did,
            "collection": "app.bsky.feed.post",
            "rkey": tid(),
            "record": post("x" * 301),
        },
        headers=bearer(account.access_jwt),
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "InvalidRequest"
    assert "grapheme too big (maximum 300, got 301)" in reply.json()["message"]


def test_pds_uploads_a_blob_that_a_post_references(pds: Pds) -> None:  # noqa: F811
    account = pds.create_account()
    token = session(pds, account.handle, pds.create_app_password(account)).json()["accessJwt"]
    image = png(4, 3)

    upload = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.uploadBlob",
        content=image,
        headers={**bearer(token), "Content-Type": "image/png"},
    )
    assert upload.status_code == 200
    blob = upload.json()["blob"]
    assert blob["$type"] == "blob"
    assert blob["mimeType"] == "image/png"
    assert blob["size"] == len(image)
    cid = blob["ref"]["$link"]

    rkey = tid()
    embed = {
        "$type": "app.bsky.embed.images",
        "images": [{"image": blob, "alt": "A portrait", "aspectRatio": {"width": 4, "height": 3}}],
    }
    created = httpx.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": account.did,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": post("With a picture", embed=embed),
        },
        headers=bearer(token),
    )
    assert created.status_code == 200

    got = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": account.did, "collection": "app.bsky.feed.post", "rkey": rkey},
    )
    image_entry = got.json()["value"]["embed"]["images"][0]
    assert image_entry["image"]["ref"]["$link"] == cid
    assert image_entry["alt"] == "A portrait"

    fetched = httpx.get(
        f"{pds.url}/xrpc/com.atproto.sync.getBlob", params={"did": account.did, "cid": cid}
    )
    assert fetched.status_code == 200
    assert fetched.content == image
