"""X, Facebook Pages, Threads and LinkedIn beyond the contract suite: signing, resuming a
thread from the row's marks, Graph error codes, Threads containers, little text, X's cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauthlib.oauth1 import Client

from scheduler.errors import PermanentError, RetryableError
from scheduler.ledger import Claim, Ledger
from scheduler.platforms import PLATFORMS
from scheduler.platforms.base import Card, MediaFile, Outgoing, Platform
from scheduler.platforms.linkedin import little, plain
from scheduler.pricing import x_cost
from scheduler.text import count, threads_length
from tests.social_cases import social_cases
from tests.standins.linkedin import shown
from tests.standins.x import signature

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
CASES = {
    c.platform: c
    for c in social_cases(lambda *a: type("C", (), {"platform": a[0], "settings": a[1]})())
}


def make(platform: str, handler: Any) -> Platform:
    cls = PLATFORMS[platform]
    settings = cls.settings_model.model_validate(CASES[platform].settings)
    return cls(settings, httpx.Client(transport=httpx.MockTransport(handler)))


def out(*parts: str, **kwargs: Any) -> Outgoing:
    return Outgoing("c/p/a/2026-07-01T09:00:00Z/-", parts, NOW, **kwargs)


def test_oauthlib_signs_twitters_published_example() -> None:
    client = Client(
        "xvz1evFS4wEEPTGEFPHBog",
        client_secret="kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        resource_owner_key="370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
        resource_owner_secret="LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        nonce="kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
        timestamp="1318622958",
    )
    _, headers, _ = client.sign(
        "https://api.twitter.com/1.1/statuses/update.json?include_entities=true",
        http_method="POST",
        body="status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert 'oauth_signature="hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D"' in headers["Authorization"]
    # the stand-in's own implementation agrees on the same vector
    params = [
        ("include_entities", "true"),
        ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
        ("oauth_version", "1.0"),
    ]
    assert (
        signature(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            params,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        )
        == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
    )


def test_x_signs_a_json_post_without_its_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"data": {"id": "5", "text": "t"}})

    make("x", handler).publish(out("Free them & more"))
    auth = seen[0].headers["Authorization"]
    given = dict(
        (k, httpx.QueryParams(f"v={v}")["v"])
        for k, v in (p.strip().split("=", 1) for p in auth[6:].split(","))
    )
    given = {k: v.strip('"') for k, v in given.items()}
    params = [(k, v) for k, v in given.items() if k != "oauth_signature"]
    expected = signature(
        "POST", "https://x.example/2/tweets", params, "x-api-secret-123", "x-token-secret-456"
    )
    assert given["oauth_signature"] == expected


def test_x_thread_resumes_after_the_parts_kept_in_the_row() -> None:
    bodies: list[dict[str, Any]] = []
    kept: list[tuple[str, ...]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"data": {"id": str(10 + len(bodies)), "text": "t"}})

    receipts = make("x", handler).publish(
        out("one", "two", "three", progress=("1",), keep=kept.append)
    )
    assert [b["text"] for b in bodies] == ["two", "three"]
    assert bodies[0]["reply"] == {"in_reply_to_tweet_id": "1"}
    assert bodies[1]["reply"] == {"in_reply_to_tweet_id": "11"}
    assert [r.remote_id for r in receipts] == ["1", "11", "12"]
    assert kept == [("1", "11")]


def test_x_duplicate_content_is_permanent_and_says_so() -> None:
    detail = "You are not allowed to create a Tweet with duplicate content."
    answer = httpx.Response(403, json={"title": "Forbidden", "detail": detail, "status": 403})
    with pytest.raises(PermanentError, match=r"duplicate content.*not retried"):
        make("x", lambda _r: answer).publish(out("Free them"))


def test_x_uploads_the_image_and_sets_its_alt_text(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(b"\x89PNG")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/2/media/upload":
            return httpx.Response(200, json={"data": {"id": "77"}})
        return httpx.Response(201, json={"data": {"id": "9", "text": "t"}})

    make("x", handler).publish(out("Free them", media=(MediaFile(tmp_path, "p.png", "A desk"),)))
    assert [r.url.path for r in seen] == ["/2/media/upload", "/2/media/metadata", "/2/tweets"]
    assert json.loads(seen[1].content) == {"id": "77", "metadata": {"alt_text": {"text": "A desk"}}}
    assert json.loads(seen[2].content)["media"] == {"media_ids": ["77"]}
    with pytest.raises(PermanentError, match="at most 1000"):
        make("x", handler).publish(out("x", media=(MediaFile(tmp_path, "p.png", "a" * 1001),)))


@pytest.mark.parametrize(
    ("code", "extra", "kind", "words"),
    [
        (190, {}, PermanentError, "page_access_token was refused"),
        (4, {}, RetryableError, "throttled"),
        (17, {}, RetryableError, "throttled"),
        (613, {}, RetryableError, "throttled"),
        (2, {"is_transient": True}, RetryableError, "passing error"),
        (368, {}, PermanentError, "blocked from posting for a while"),
        (506, {}, PermanentError, "duplicate post"),
        (1609005, {}, PermanentError, "link could not be posted"),
    ],
)
def test_facebook_errors_by_code(code: int, extra: dict[str, Any], kind: type, words: str) -> None:
    error = {"message": "Graph says no", "type": "OAuthException", "code": code, **extra}
    answer = httpx.Response(400, json={"error": error})
    with pytest.raises(kind) as info:
        make("facebook", lambda _r: answer).publish(out("Free them"))
    assert (
        type(info.value) is kind and words in str(info.value) and "Graph says no" in str(info.value)
    )


def test_facebook_attaches_unpublished_photos_and_links_the_card(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(b"\x89PNG")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": f"1234567890_{len(seen)}"})

    card = Card("https://www.amnesty.org/", "Report")
    make("facebook", handler).publish(out("Free them", card=card))
    assert dict(httpx.QueryParams(seen[-1].content.decode()))["link"] == card.url
    seen.clear()
    media = (MediaFile(tmp_path, "p.png", "A desk"),)
    make("facebook", handler).publish(out("Free them", card=card, media=media))
    photo, feed = seen
    assert b'name="published"\r\n\r\nfalse' in photo.content
    assert b'name="alt_text_custom"\r\n\r\nA desk' in photo.content
    form = dict(httpx.QueryParams(feed.content.decode()))
    assert json.loads(form["attached_media[0]"]) == {"media_fbid": "1234567890_1"}


def test_threads_counts_emoji_as_their_utf8_bytes() -> None:
    assert threads_length("Free them") == 9
    assert threads_length("Fatimə Movlamlı") == 15  # non-ASCII letters count 1 each
    assert threads_length("❤️") == 6 and threads_length("🇦🇿") == 8
    assert threads_length("👨‍👩‍👧‍👦 family") == 25 + 7
    assert count("a👍🏽b", "threads") == 10
    assert PLATFORMS["threads"].measure("😀" * 125) == 500


def test_threads_publishes_the_kept_container_instead_of_a_new_one() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET" and request.url.path.endswith("/c-9"):
            return httpx.Response(200, json={"id": "c-9", "status": "FINISHED"})
        if request.url.path.endswith("/threads_publish"):
            return httpx.Response(200, json={"id": "t-9"})
        return httpx.Response(200, json={"permalink": "https://www.threads.net/@a/post/Z"})

    kept: list[tuple[str, ...]] = []
    (receipt,) = make("threads", handler).publish(
        out("Free them", progress=("c:c-9",), keep=kept.append)
    )
    assert [r.url.path for r in seen][:2] == ["/v1.0/c-9", "/v1.0/1789/threads_publish"]
    assert not any(r.url.path == "/v1.0/1789/threads" for r in seen)  # no second container
    assert receipt.remote_id == "t-9" and kept == [("p:t-9",)]


def test_threads_refuses_before_any_request_what_it_cannot_take(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may go out")

    threads = make("threads", handler)
    with pytest.raises(PermanentError, match=r"public URL.*url:"):
        threads.publish(out("Free them", media=(MediaFile(tmp_path, "p.png", "A desk"),)))
    six = " ".join(f"https://e.org/{i}" for i in range(6))
    with pytest.raises(PermanentError, match="at most 5"):
        threads.publish(out(six))


def test_linkedin_little_text_escapes_every_reserved_character_and_keeps_hashtags() -> None:
    text = "Free (them) [now] {all} @x <b> *a* _b_ ~c~ | back\\slash #FreeThePress # 3 a#b #_x"
    escaped = little(text)
    assert "#FreeThePress" in escaped and "\\#FreeThePress" not in escaped
    for c in "()[]{}@<>*_~|":
        assert f"\\{c}" in escaped
    assert "\\# 3" in escaped and "a\\#b" in escaped and "\\#\\_x" in escaped
    assert shown(escaped) == text  # LinkedIn shows every character
    assert plain(escaped) == text
    assert shown(text) != text  # unescaped, LinkedIn would cut it off


def test_x_cost_per_account_counts_each_part_and_urls() -> None:
    rows = [
        {"platform": "x", "account": "hr-x", "status": "ok", "parts": ["a", "b https://e.org"]},
        {"platform": "x", "account": "hr-x", "status": "too_long", "parts": ["c"]},
        {"platform": "x", "account": "other", "status": "ok", "text": "d"},
        {"platform": "mastodon", "account": "m", "status": "ok", "parts": ["e"]},
    ]
    assert x_cost(rows) == {"hr-x": Decimal("0.215"), "other": Decimal("0.015")}


def test_the_ledger_keeps_an_adapters_marks_in_the_row(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    claim = Claim("k", "c", "p", "a", "threads", None, NOW)
    entry = ledger.claim_sending(claim, ("one",), NOW, "me")
    assert entry is not None and entry.remote_ids == ()
    ledger.checkpoint(entry, ["c:123"], NOW)
    found = ledger.get("k")
    assert found is not None and found.remote_ids == ("c:123",)
    ledger.close()
