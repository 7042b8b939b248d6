"""Tests for tests/standins: each platform's stand-in answers as the platform does.

Every request goes over HTTP with plain httpx. The atproto lexicons and interop files are
read from shared/conformance beside the repository; Bluesky tests skip without them.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.standins import Bluesky, Discord, Mastodon, Telegram, Webhook, sign
from tests.standins.atsyntax import (
    is_at_identifier,
    is_at_uri,
    is_cid,
    is_datetime,
    is_did,
    is_handle,
    is_language,
    is_nsid,
    is_record_key,
    is_tid,
    is_uri,
)
from tests.standins.fixtures import serve
from tests.standins.lexicon import LEXICONS, LexiconError, Lexicons
from tests.standins.process import spawn

INTEROP = LEXICONS.parents[1] / "atproto-interop-tests"
needs_lexicons = pytest.mark.skipif(
    not LEXICONS.is_dir(), reason=f"atproto lexicons not found at {LEXICONS}"
)


TLS = ssl.create_default_context()  # built once: each costs ~30 ms, and nothing here uses it
HTTP = httpx.Client(timeout=5, verify=TLS)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


class Clock:
    """A settable clock for the stand-ins' TTLs and windows."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the shared machinery ------------------------------------------------------------


@pytest.fixture
def mastodon() -> Iterator[Mastodon]:
    yield from serve(Mastodon())


@pytest.fixture
def api(mastodon: Mastodon) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {mastodon.token}"}
    with httpx.Client(base_url=mastodon.url, headers=headers, timeout=5, verify=TLS) as client:
        yield client


def test_faults_are_consumed_in_order_on_the_posting_route(
    mastodon: Mastodon, api: httpx.Client
) -> None:
    mastodon.rate_limit_next(2, retry_after=7)
    mastodon.fail_next(status=503)
    assert api.get("/api/v1/accounts/verify_credentials").status_code == 200  # not a post
    codes = [api.post("/api/v1/statuses", data={"status": "hi"}).status_code for _ in range(4)]
    assert codes == [429, 429, 503, 200]
    assert [r.fault for r in mastodon.requests_to("statuses.create")] == [
        "rate_limit 7s",
        "rate_limit 7s",
        "status 503",
        None,
    ]
    assert len(mastodon.posts) == 1


def test_a_delayed_answer_times_out_after_the_post_was_created(
    mastodon: Mastodon, api: httpx.Client
) -> None:
    mastodon.delay_next(2)
    with pytest.raises(httpx.ReadTimeout):
        api.post("/api/v1/statuses", data={"status": "hi"}, timeout=0.2)
    assert len(mastodon.posts) == 1
    assert mastodon.requests[0].fault == "delay 2s after"


@pytest.mark.parametrize(("after", "posts"), [(False, 0), (True, 1)])
def test_a_dropped_connection_before_or_after_the_post(
    mastodon: Mastodon, api: httpx.Client, after: bool, posts: int
) -> None:
    mastodon.drop_next(after=after)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/api/v1/statuses", data={"status": "hi"})
    assert len(mastodon.posts) == posts
    assert mastodon.requests[0].status is None


def test_a_5xx_after_the_post_is_the_proxy_s_page(mastodon: Mastodon, api: httpx.Client) -> None:
    mastodon.fail_next(status=502, after=True)
    reply = api.post("/api/v1/statuses", data={"status": "hi"})
    assert reply.status_code == 502
    assert "502 Bad Gateway" in reply.text
    assert len(mastodon.posts) == 1


def test_the_control_routes_are_not_recorded(mastodon: Mastodon) -> None:
    reply = HTTP.post(
        f"{mastodon.url}/__standin__/knob",
        json={"name": "rate_limit_next", "args": {"n": 1, "retry_after": 2}},
    )
    assert reply.json() == {"ok": True, "result": None}
    assert HTTP.get(f"{mastodon.url}/__standin__/state").json()["faults"] == ["rate_limit 2s"]
    bad = HTTP.post(f"{mastodon.url}/__standin__/knob", json={"name": "stop"})
    assert bad.status_code == 400
    assert mastodon.requests == []


# -- Mastodon ----------------------------------------------------------------------------


def test_mastodon_posts_a_status(mastodon: Mastodon, api: httpx.Client) -> None:
    reply = api.post(
        "/api/v1/statuses",
        data={"status": "Free them <now>\n\nNow", "visibility": "unlisted", "language": "az"},
    )
    assert reply.status_code == 200
    status = reply.json()
    assert isinstance(status["id"], str)
    assert status["url"] == f"{mastodon.url}/@solidarity/{status['id']}"
    assert status["uri"].endswith(f"/users/solidarity/statuses/{status['id']}")
    assert status["content"] == "<p>Free them &lt;now&gt;</p><p>Now</p>"
    assert (status["visibility"], status["language"]) == ("unlisted", "az")
    assert datetime.fromisoformat(status["created_at"])
    assert mastodon.posts[0]["text"] == "Free them <now>\n\nNow"
    assert "X-RateLimit-Reset" in reply.headers


def test_mastodon_takes_json_and_reads_back_newest_first(
    mastodon: Mastodon, api: httpx.Client
) -> None:
    first = api.post("/api/v1/statuses", json={"status": "one"}).json()
    second = api.post("/api/v1/statuses", json={"status": "two", "in_reply_to_id": first["id"]})
    assert second.json()["in_reply_to_id"] == first["id"]
    me = api.get("/api/v1/accounts/verify_credentials").json()
    assert me["id"] == mastodon.account_id
    listed = api.get(f"/api/v1/accounts/{me['id']}/statuses", params={"limit": 1})
    assert [s["id"] for s in listed.json()] == [second.json()["id"]]
    assert 'rel="next"' in listed.headers["Link"]
    assert api.get(f"/api/v1/statuses/{first['id']}").json()["content"] == "<p>one</p>"


def test_mastodon_refuses_a_bad_or_revoked_token(mastodon: Mastodon) -> None:
    url = f"{mastodon.url}/api/v1/statuses"
    reply = HTTP.post(url, data={"status": "hi"}, headers={"Authorization": "Bearer nope"})
    assert (reply.status_code, reply.json()) == (401, {"error": "The access token is invalid"})
    assert HTTP.post(url, data={"status": "hi"}).status_code == 401
    mastodon.reject_auth()
    good = {"Authorization": f"Bearer {mastodon.token}"}
    reply = HTTP.post(url, data={"status": "hi"}, headers=good)
    assert reply.json() == {"error": "The access token was revoked"}
    assert mastodon.posts == []


def test_mastodon_counts_as_mastodon_does(mastodon: Mastodon, api: httpx.Client) -> None:
    url = "https://example.org/" + "a" * 200  # counts 23
    assert api.post("/api/v1/statuses", data={"status": "x" * 500}).status_code == 200
    assert api.post("/api/v1/statuses", data={"status": f"{url} " + "x" * 476}).status_code == 200
    over = api.post("/api/v1/statuses", data={"status": "x" * 490, "spoiler_text": "x" * 11})
    assert over.status_code == 422
    assert over.json() == {"error": "Validation failed: Text character limit of 500 exceeded"}
    blank = api.post("/api/v1/statuses", data={"status": "  "})
    assert blank.json() == {"error": "Validation failed: Text can't be blank"}
    assert len(mastodon.posts) == 2


def test_mastodon_s_limit_and_instance_configuration_follow_max_characters() -> None:
    with Mastodon(max_characters=5000) as mastodon:
        instance = HTTP.get(f"{mastodon.url}/api/v2/instance").json()
        assert instance["configuration"]["statuses"]["max_characters"] == 5000
        reply = HTTP.post(
            f"{mastodon.url}/api/v1/statuses",
            data={"status": "x" * 5001},
            headers={"Authorization": f"Bearer {mastodon.token}"},
        )
        assert reply.json()["error"].endswith("character limit of 5000 exceeded")


def test_mastodon_honours_the_idempotency_key_within_its_window() -> None:
    clock = Clock()
    with Mastodon(clock=clock, idempotency_ttl=3600) as mastodon:
        auth = {"Authorization": f"Bearer {mastodon.token}"}
        url = f"{mastodon.url}/api/v1/statuses"

        def post(key: str, text: str = "hi") -> dict[str, Any]:
            headers = {**auth, "Idempotency-Key": key}
            return dict(HTTP.post(url, data={"status": text}, headers=headers).json())

        first = post("k1")
        clock.now += 3599
        assert post("k1", "a different text") == first
        assert len(mastodon.posts) == 1
        assert post("k2")["id"] != first["id"]
        clock.now += 2
        assert post("k1")["id"] != first["id"]  # the key expired
        assert len(mastodon.posts) == 3


def test_mastodon_retry_after_a_lost_answer_finds_the_same_status(
    mastodon: Mastodon, api: httpx.Client
) -> None:
    mastodon.delay_next(2)
    key = {"Idempotency-Key": "occurrence-42"}
    with pytest.raises(httpx.ReadTimeout):
        api.post("/api/v1/statuses", data={"status": "hi"}, headers=key, timeout=0.2)
    retried = api.post("/api/v1/statuses", data={"status": "hi"}, headers=key)
    assert retried.json()["id"] == mastodon.posts[0]["id"]
    assert len(mastodon.posts) == 1


def test_mastodon_429_resets_at_an_iso_time(mastodon: Mastodon, api: httpx.Client) -> None:
    mastodon.rate_limit_next(retry_after=30)
    reply = api.post("/api/v1/statuses", data={"status": "hi"})
    assert (reply.status_code, reply.json()) == (429, {"error": "Too many requests"})
    reset = datetime.fromisoformat(reply.headers["X-RateLimit-Reset"])
    assert 25 < reset.timestamp() - mastodon.clock() <= 31
    assert reply.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in reply.headers


def test_mastodon_media_is_processed_before_it_can_be_attached() -> None:
    with Mastodon(media_processing_polls=1) as mastodon:
        headers = {"Authorization": f"Bearer {mastodon.token}"}
        api = httpx.Client(base_url=mastodon.url, headers=headers, verify=TLS)
        upload = api.post(
            "/api/v2/media",
            files={"file": ("cell.png", b"\x89PNG...", "image/png")},
            data={"description": "A prison cell"},
        )
        assert (upload.status_code, upload.json()["url"]) == (202, None)
        media = upload.json()["id"]
        early = api.post("/api/v1/statuses", data={"status": "", "media_ids[]": [media]})
        assert early.json()["error"].startswith("Cannot attach files that have not finished")
        assert api.get(f"/api/v1/media/{media}").status_code == 206
        processed = api.get(f"/api/v1/media/{media}")
        assert processed.status_code == 200
        assert processed.json()["url"].endswith("/original/cell.png")
        status = api.post("/api/v1/statuses", data={"status": "", "media_ids[]": [media]})
        assert status.json()["media_attachments"][0]["description"] == "A prison cell"
        again = api.post("/api/v1/statuses", data={"status": "x", "media_ids[]": [media]})
        assert (
            again.json()["error"] == f"Media {media} not found or already attached to another post"
        )
        bad = api.post("/api/v2/media", files={"file": ("x.txt", b"hello", "text/plain")})
        assert bad.status_code == 422
        api.close()


def test_mastodon_replies_only_to_statuses_that_exist(api: httpx.Client) -> None:
    reply = api.post("/api/v1/statuses", data={"status": "hi", "in_reply_to_id": "1"})
    assert reply.status_code == 404


# -- Bluesky -------------------------------------------------------------------------------


@pytest.fixture
def bluesky() -> Iterator[Bluesky]:
    if not LEXICONS.is_dir():
        pytest.skip(f"atproto lexicons not found at {LEXICONS}")
    yield from serve(Bluesky())


def login(pds: Bluesky, password: str | None = None) -> dict[str, Any]:
    body = {"identifier": pds.handle, "password": password or pds.password}
    return dict(HTTP.post(f"{pds.url}/xrpc/com.atproto.server.createSession", json=body).json())


def create(pds: Bluesky, token: str, record: dict[str, Any]) -> httpx.Response:
    body = {"repo": pds.did, "collection": "app.bsky.feed.post", "record": record}
    return HTTP.post(
        f"{pds.url}/xrpc/com.atproto.repo.createRecord",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def post(text: str, **more: Any) -> dict[str, Any]:
    return {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2026-01-01T00:00:00.000Z",
        **more,
    }


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_bluesky_logs_in_and_posts(bluesky: Bluesky) -> None:
    session = login(bluesky)
    assert (session["did"], session["handle"]) == (bluesky.did, "test.example")
    assert claims(session["accessJwt"])["scope"] == "com.atproto.appPass"
    reply = create(bluesky, session["accessJwt"], post("Free them all", langs=["en"]))
    assert reply.status_code == 200
    uri = reply.json()["uri"]
    assert uri.startswith(f"at://{bluesky.did}/app.bsky.feed.post/")
    assert is_tid(uri.rsplit("/", 1)[1]) and is_cid(reply.json()["cid"])
    assert reply.json()["validationStatus"] == "valid"
    assert bluesky.posts[0]["value"]["text"] == "Free them all"
    assert bluesky.logins == 1
    assert reply.headers["RateLimit-Policy"] == "3000;w=300"


def test_bluesky_refuses_a_wrong_password_and_missing_token(bluesky: Bluesky) -> None:
    reply = HTTP.post(
        f"{bluesky.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": bluesky.handle, "password": "wrong"},
    )
    assert (reply.status_code, reply.json()) == (
        401,
        {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
    )
    missing = HTTP.post(f"{bluesky.url}/xrpc/com.atproto.repo.createRecord", json={})
    assert (missing.status_code, missing.json()["error"]) == (401, "AuthenticationRequired")
    assert bluesky.logins == 0


@needs_lexicons
def test_bluesky_expires_and_refreshes_tokens() -> None:
    clock = Clock()
    with Bluesky(clock=clock) as pds:
        session = login(pds)
        pds.expire_access_tokens()
        expired = create(pds, session["accessJwt"], post("hi"))
        assert (expired.status_code, expired.json()) == (
            400,
            {"error": "ExpiredToken", "message": "Token has expired"},
        )
        url = f"{pds.url}/xrpc/com.atproto.server.refreshSession"
        refresh = {"Authorization": f"Bearer {session['refreshJwt']}"}
        fresh = HTTP.post(url, headers=refresh).json()
        assert create(pds, fresh["accessJwt"], post("hi")).status_code == 200
        # The used refresh token still works for a grace period, yielding the same successor.
        again = HTTP.post(url, headers=refresh).json()
        assert claims(again["refreshJwt"])["jti"] == claims(fresh["refreshJwt"])["jti"]
        clock.now += 2 * 3600 + 1
        revoked = HTTP.post(url, headers=refresh)
        assert revoked.json() == {"error": "ExpiredToken", "message": "Token has been revoked"}
        wrong_kind = HTTP.post(url, headers={"Authorization": f"Bearer {fresh['accessJwt']}"})
        assert wrong_kind.json()["error"] == "InvalidToken"
        assert (pds.logins, pds.refreshes) == (1, 2)


def test_bluesky_limits_logins(bluesky: Bluesky) -> None:
    bluesky.max_logins = 1
    login(bluesky)
    reply = HTTP.post(
        f"{bluesky.url}/xrpc/com.atproto.server.createSession",
        json={"identifier": bluesky.handle, "password": bluesky.password},
    )
    assert (reply.status_code, reply.json()["error"]) == (429, "RateLimitExceeded")
    assert reply.headers["RateLimit-Policy"] == "30;w=300"
    assert int(reply.headers["RateLimit-Reset"]) > bluesky.clock()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (post("x" * 301), "grapheme too big (maximum 300, got 301) at $.record.text"),
        (post("\U0001f468\u200d\U0001f469\u200d\U0001f467" * 200), "string too big (maximum 3000, got 3600) at $.record.text"),
        ({"$type": "app.bsky.feed.post", "text": "hi"}, 'Missing required key "createdAt" at $.record'),
        (post("hi", createdAt="2026-01-01 00:00:00"), 'Invalid datetime (got "2026-01-01 00:00:00") at $.record.createdAt'),
        (post("hi", langs=["en", "az", "ru", "fr"]), "array too big (maximum 3, got 4) at $.record.langs"),
        (post("hi", langs=["english"]), 'Invalid language (got "english") at $.record.langs[0]'),
    ],
)  # fmt: skip
def test_bluesky_validates_posts_against_the_lexicon(
    bluesky: Bluesky, record: dict[str, Any], message: str
) -> None:
    reply = create(bluesky, login(bluesky)["accessJwt"], record)
    assert reply.status_code == 400
    assert reply.json()["error"] == "InvalidRequest"
    assert reply.json()["message"].startswith(f"Invalid app.bsky.feed.post record: {message}")
    assert bluesky.posts == []


def link(start: int, end: int) -> dict[str, Any]:
    feature = {"$type": "app.bsky.richtext.facet#link", "uri": "https://amnesty.org"}
    return {"index": {"byteStart": start, "byteEnd": end}, "features": [feature]}


@pytest.mark.parametrize(
    ("facet", "message"),
    [
        (link(0, 99), "byteEnd is past the end of the text (12 bytes) at $.record.facets[0].index"),
        (link(6, 12), "byteStart splits a UTF-8 character at $.record.facets[0].index"),
        (link(5, 5), "byteEnd must be greater than byteStart at $.record.facets[0].index"),
        (
            link(-1, 3),
            "integer too small (minimum 0, got -1) at $.record.facets[0].index.byteStart",
        ),
    ],
)
def test_bluesky_checks_facet_byte_ranges(
    bluesky: Bluesky, facet: dict[str, Any], message: str
) -> None:
    token = login(bluesky)["accessJwt"]
    assert create(bluesky, token, post("Fatimə link", facets=[link(8, 12)])).status_code == 200
    reply = create(bluesky, token, post("Fatimə link", facets=[facet]))
    assert reply.json()["message"] == f"Invalid app.bsky.feed.post record: {message}"


def test_bluesky_threads_need_existing_strong_refs(bluesky: Bluesky) -> None:
    token = login(bluesky)["accessJwt"]
    root = create(bluesky, token, post("1/3")).json()
    ref = {"uri": root["uri"], "cid": root["cid"]}
    second = create(bluesky, token, post("2/3", reply={"root": ref, "parent": ref})).json()
    third = {"root": ref, "parent": {"uri": second["uri"], "cid": second["cid"]}}
    assert create(bluesky, token, post("3/3", reply=third)).status_code == 200
    broken = {"root": {"uri": second["uri"], "cid": second["cid"]}, "parent": third["parent"]}
    reply = create(bluesky, token, post("x", reply=broken))
    assert reply.json()["message"].endswith(
        f"not the thread's root ({root['uri']}) at $.record.reply.root"
    )
    ghost = {"uri": root["uri"][:-3] + "zzz", "cid": root["cid"]}
    missing = create(bluesky, token, post("x", reply={"root": ghost, "parent": ghost}))
    assert "not a record here (" in missing.json()["message"]
    stale = create(
        bluesky, token, post("x", reply={"root": ref, "parent": {**ref, "cid": second["cid"]}})
    )
    assert "not the record's CID (" in stale.json()["message"]
    assert stale.json()["message"].endswith("at $.record.reply.parent.cid")
    assert len(bluesky.posts) == 3


def test_bluesky_embeds_uploaded_blobs(bluesky: Bluesky) -> None:
    token = login(bluesky)["accessJwt"]
    uploaded = HTTP.post(
        f"{bluesky.url}/xrpc/com.atproto.repo.uploadBlob",
        content=b"\x89PNG fake",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
    ).json()["blob"]
    assert uploaded["mimeType"] == "image/png" and uploaded["ref"]["$link"].startswith("bafkrei")

    def embed(blob: dict[str, Any], **image: Any) -> dict[str, Any]:
        return {
            "$type": "app.bsky.embed.images",
            "images": [{"image": blob, "alt": "cell", **image}],
        }

    assert create(bluesky, token, post("hi", embed=embed(uploaded))).status_code == 200
    other = {
        **uploaded,
        "ref": {"$link": "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    }
    assert create(bluesky, token, post("hi", embed=embed(other))).json()["error"] == "BlobNotFound"
    jpeg = create(bluesky, token, post("hi", embed=embed({**uploaded, "mimeType": "image/jpeg"})))
    assert jpeg.json()["error"] == "InvalidBlob"
    no_alt = embed(uploaded)
    del no_alt["images"][0]["alt"]
    reply = create(bluesky, token, post("hi", embed=no_alt))
    assert reply.json()["message"].endswith(
        'Missing required key "alt" at $.record.embed.images[0]'
    )


def test_bluesky_reads_back_and_resolves(bluesky: Bluesky) -> None:
    token = login(bluesky)["accessJwt"]
    uris = [create(bluesky, token, post(f"post {i}")).json()["uri"] for i in range(3)]
    listed = HTTP.get(
        f"{bluesky.url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": bluesky.handle, "collection": "app.bsky.feed.post", "limit": 2},
    ).json()
    assert [r["uri"] for r in listed["records"]] == uris[:0:-1]
    rest = HTTP.get(
        f"{bluesky.url}/xrpc/com.atproto.repo.listRecords",
        params={
            "repo": bluesky.did,
            "collection": "app.bsky.feed.post",
            "cursor": listed["cursor"],
        },
    ).json()
    assert [r["uri"] for r in rest["records"]] == uris[:1]
    feed = HTTP.get(
        f"{bluesky.url}/xrpc/app.bsky.feed.getAuthorFeed", params={"actor": bluesky.did}
    )
    assert feed.json()["feed"][0]["post"]["record"]["text"] == "post 2"
    resolved = HTTP.get(
        f"{bluesky.url}/xrpc/com.atproto.identity.resolveHandle", params={"handle": "test.example"}
    )
    assert resolved.json() == {"did": bluesky.did}
    unknown = HTTP.get(f"{bluesky.url}/xrpc/com.atproto.sync.getRepo")
    assert (unknown.status_code, unknown.json()["error"]) == (501, "MethodNotImplemented")


def test_bluesky_429_resets_at_an_epoch_second(bluesky: Bluesky) -> None:
    bluesky.rate_limit_next(retry_after=60)
    reply = create(bluesky, login(bluesky)["accessJwt"], post("hi"))
    assert reply.json() == {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
    assert reply.headers["RateLimit-Remaining"] == "0"
    assert int(reply.headers["RateLimit-Reset"]) == int(bluesky.clock() + 60)


# -- the lexicon validator and atproto syntax, against atproto's own interop files ----------


def interop(name: str) -> list[str]:
    path = INTEROP / "syntax" / name
    if not path.is_file():
        return []
    return [
        line for line in path.read_text(encoding="utf-8").split("\n") if line and line[0] != "#"
    ]


SYNTAX = {
    "atidentifier": is_at_identifier,
    "aturi": is_at_uri,
    "cid": is_cid,
    "datetime": is_datetime,
    "did": is_did,
    "handle": is_handle,
    "language": is_language,
    "nsid": is_nsid,
    "recordkey": is_record_key,
    "tid": is_tid,
    "uri": is_uri,
}


@needs_lexicons
@pytest.mark.parametrize("kind", sorted(SYNTAX))
def test_atproto_syntax_matches_the_interop_files(kind: str) -> None:
    check = SYNTAX[kind]
    assert [v for v in interop(f"{kind}_syntax_valid.txt") if not check(v)] == []
    invalid = interop(f"{kind}_syntax_invalid.txt")
    if kind == "datetime":
        invalid += interop("datetime_parse_invalid.txt")
    assert [v for v in invalid if check(v)] == []


def lexicon_cases(name: str) -> list[Any]:
    path = INTEROP / "lexicon" / name
    if not path.is_file():
        return [
            pytest.param(None, id="missing", marks=pytest.mark.skip(reason=f"{path} not found"))
        ]
    return [pytest.param(case["data"], id=case["name"]) for case in json.loads(path.read_text())]


@pytest.fixture(scope="module")
def catalog() -> Lexicons:
    return Lexicons.load(INTEROP / "lexicon" / "catalog")


@pytest.mark.parametrize("data", lexicon_cases("record-data-valid.json"))
def test_the_lexicon_validator_accepts_valid_records(catalog: Lexicons, data: Any) -> None:
    catalog.validate_record(data["$type"], data)


@pytest.mark.parametrize("data", lexicon_cases("record-data-invalid.json"))
def test_the_lexicon_validator_refuses_invalid_records(catalog: Lexicons, data: Any) -> None:
    with pytest.raises(LexiconError):
        catalog.validate_record(
            data["$type"], {"integer": 1, **data} if "unknown" in data else data
        )


# -- Telegram -------------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[Telegram]:
    yield from serve(Telegram(chats=["@test", -1001234567890]))


def bot(tg: Telegram, method: str, token: str | None = None, **params: Any) -> httpx.Response:
    return HTTP.post(f"{tg.url}/bot{token or tg.token}/{method}", json=params)


def test_telegram_sends_html_and_answers_plain_text_and_entities(telegram: Telegram) -> None:
    text = '<b>Free</b> 😀 <a href="https://amnesty.org/?a=1&amp;b=2">them</a> &lt;now&gt;'
    reply = bot(telegram, "sendMessage", chat_id="@test", text=text, parse_mode="HTML")
    assert reply.status_code == 200
    message = reply.json()["result"]
    assert message["text"] == "Free 😀 them <now>"
    assert message["entities"] == [
        {"offset": 0, "length": 4, "type": "bold"},
        {"offset": 8, "length": 4, "type": "text_link", "url": "https://amnesty.org/?a=1&b=2"},
    ]
    assert message["chat"]["username"] == "test" and message["sender_chat"] == message["chat"]
    assert (message["message_id"], len(telegram.posts)) == (1, 1)
    by_id = bot(telegram, "sendMessage", chat_id=-1001234567890, text="plain")
    assert by_id.json()["result"]["chat"]["id"] == -1001234567890


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a href>x</a>", 'Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0'),
    ],
)  # fmt: skip
def test_telegram_refuses_malformed_html(telegram: Telegram, text: str, description: str) -> None:
    reply = bot(telegram, "sendMessage", chat_id="@test", text=text, parse_mode="HTML")
    assert reply.status_code == 400
    assert reply.json() == {
        "ok": False,
        "error_code": 400,
        "description": f"Bad Request: can't parse entities: {description}",
    }
    assert telegram.posts == []


def test_telegram_counts_the_text_after_parsing(telegram: Telegram) -> None:
    fits = bot(
        telegram, "sendMessage", chat_id="@test", text=f"<b>{'x' * 4096}</b>", parse_mode="HTML"
    )
    assert fits.status_code == 200
    over = bot(telegram, "sendMessage", chat_id="@test", text="ə" * 4097)
    assert over.json()["description"] == "Bad Request: message is too long"
    empty = bot(telegram, "sendMessage", chat_id="@test", text="<b> </b>", parse_mode="HTML")
    assert empty.json()["description"] == "Bad Request: message text is empty"


def test_telegram_refuses_a_wrong_token_chat_or_method(telegram: Telegram) -> None:
    wrong = bot(telegram, "sendMessage", token="1:wrong", chat_id="@test", text="hi")
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    chat = bot(telegram, "sendMessage", chat_id="@nobody", text="hi")
    assert chat.json()["description"] == "Bad Request: chat not found"
    assert bot(telegram, "sendSticker", chat_id="@test").status_code == 404
    telegram.reject_auth()
    assert bot(telegram, "getMe").status_code == 401


def test_telegram_get_me_get_chat_and_photos(telegram: Telegram) -> None:
    me = HTTP.get(f"{telegram.url}/bot{telegram.token}/getMe").json()["result"]
    assert me["is_bot"] and me["id"] == 123456789
    chat = bot(telegram, "getChat", chat_id="@test").json()["result"]
    assert chat["type"] == "channel"
    photo = HTTP.post(
        f"{telegram.url}/bot{telegram.token}/sendPhoto",
        data={"chat_id": "@test", "caption": "<i>cell</i>", "parse_mode": "HTML"},
        files={"photo": ("cell.jpg", b"JPEG", "image/jpeg")},
    ).json()["result"]
    assert photo["caption"] == "cell" and photo["caption_entities"][0]["type"] == "italic"
    long = bot(telegram, "sendPhoto", chat_id="@test", photo="AgACAgIAAx", caption="x" * 1025)
    assert long.json()["description"] == "Bad Request: message caption is too long"


def test_telegram_429_says_when_to_retry(telegram: Telegram) -> None:
    telegram.rate_limit_next(retry_after=3)
    reply = bot(telegram, "sendMessage", chat_id="@test", text="hi")
    assert reply.json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert reply.headers["Retry-After"] == "3"
    assert telegram.requests[0].route == "sendMessage"


# -- Discord --------------------------------------------------------------------------------


@pytest.fixture
def discord() -> Iterator[Discord]:
    yield from serve(Discord())


def test_discord_executes_with_and_without_wait(discord: Discord) -> None:
    sent = HTTP.post(discord.webhook_url, params={"wait": "true"}, json={"content": "Free them"})
    assert sent.status_code == 200
    message = sent.json()
    assert message["content"] == "Free them" and message["webhook_id"] == discord.webhook_id
    assert message["channel_id"] == discord.channel_id and message["id"].isdigit()
    quiet = HTTP.post(discord.webhook_url, json={"content": "again"})
    assert (quiet.status_code, quiet.content) == (204, b"")
    assert [p["content"] for p in discord.posts] == ["Free them", "again"]
    fetched = HTTP.get(f"{discord.webhook_url}/messages/{message['id']}")
    assert fetched.json() == message
    assert HTTP.get(discord.webhook_url).json()["id"] == discord.webhook_id


def test_discord_refuses_unknown_webhooks_and_tokens(discord: Discord) -> None:
    unknown = HTTP.post(
        f"{discord.url}/api/webhooks/1/{discord.webhook_token}", json={"content": "x"}
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"message": "Unknown Webhook", "code": 10015},
    )
    token = HTTP.get(f"{discord.url}/api/webhooks/{discord.webhook_id}/nope")
    assert (token.status_code, token.json()["code"]) == (401, 50027)
    empty = HTTP.post(discord.webhook_url, json={"content": ""})
    assert empty.json() == {"message": "Cannot send an empty message", "code": 50006}
    assert discord.posts == []


def test_discord_form_errors_depend_on_the_api_version(discord: Discord) -> None:
    versioned = discord.webhook_url.replace("/api/", "/api/v10/")
    reply = HTTP.post(versioned, json={"content": "x" * 2001})
    assert reply.status_code == 400
    assert reply.json() == {
        "code": 50035,
        "errors": {
            "content": {
                "_errors": [
                    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                ]
            }
        },
        "message": "Invalid Form Body",
    }
    legacy = HTTP.post(discord.webhook_url, json={"content": "ə" * 2001})
    assert legacy.json() == {"content": ["Must be 2000 or fewer in length."]}
    assert HTTP.post(versioned, json={"content": "ə" * 2000}).status_code == 204


def test_discord_429_in_seconds_on_v10_and_milliseconds_unversioned(discord: Discord) -> None:
    discord.rate_limit_next(2, retry_after=1.5)
    versioned = HTTP.post(discord.webhook_url.replace("/api/", "/api/v10/"), json={"content": "x"})
    assert versioned.json() == {
        "message": "You are being rate limited.",
        "retry_after": 1.5,
        "global": False,
    }
    assert versioned.headers["Retry-After"] == "2"
    legacy = HTTP.post(discord.webhook_url, json={"content": "x"})
    assert legacy.json()["retry_after"] == 1500 and legacy.headers["Retry-After"] == "1500"
    assert float(legacy.headers["X-RateLimit-Reset-After"]) == 1.5


# -- the generic webhook ----------------------------------------------------------------------


def test_webhook_takes_json_posts() -> None:
    with Webhook(path="/in") as hook:
        reply = HTTP.post(hook.hook_url, json={"text": "Free them"})
        assert (reply.status_code, reply.json()) == (200, {"ok": True, "id": 1})
        assert hook.posts[0]["payload"] == {"text": "Free them"}
        not_json = HTTP.post(hook.hook_url, content=b"hi", headers={"Content-Type": "text/plain"})
        assert not_json.status_code == 415
        assert HTTP.post(f"{hook.url}/hook", json={}).status_code == 404


def test_webhook_checks_the_hmac_signature() -> None:
    with Webhook(secret="s3cret", signature_header="X-Signature") as hook:
        body = json.dumps({"text": "Free them"}).encode()
        headers = {"Content-Type": "application/json"}
        good = {**headers, "X-Signature": sign("s3cret", body)}
        assert good["X-Signature"].startswith("sha256=") and len(good["X-Signature"]) == 71
        assert HTTP.post(hook.hook_url, content=body, headers=good).status_code == 200
        assert HTTP.post(hook.hook_url, content=body, headers=headers).status_code == 401
        wrong = {**headers, "X-Signature": sign("other", body)}
        assert HTTP.post(hook.hook_url, content=body, headers=wrong).status_code == 401
        tampered = HTTP.post(hook.hook_url, content=body + b" ", headers=good)
        assert tampered.status_code == 401
        assert len(hook.posts) == 1


# -- as a process -----------------------------------------------------------------------------


def test_a_standin_process_prints_its_url_and_writes_its_state(tmp_path: Path) -> None:
    state = tmp_path / "mastodon.json"
    with spawn("mastodon", "--max-characters", "600", state_file=state) as process:
        assert process.url.startswith("http://127.0.0.1:")
        auth = {"Authorization": f"Bearer {process.info['token']}"}
        url = f"{process.url}/api/v1/statuses"
        assert HTTP.post(url, data={"status": "x" * 600}, headers=auth).status_code == 200
        assert process.state()["posts"][0]["text"] == "x" * 600
        process.knob("rate_limit_next", retry_after=5)
        assert HTTP.post(url, data={"status": "hi"}, headers=auth).status_code == 429
        written = json.loads(state.read_text())
        assert [r["status"] for r in written["requests"]] == [200, 429]
        assert written["requests"][1]["fault"] == "rate_limit 5s"
        with pytest.raises(ValueError, match="unknown knob"):
            process.knob("shutdown")
    assert process.process.returncode == 0
