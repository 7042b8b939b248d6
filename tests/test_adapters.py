"""One contract suite over every platform adapter, with httpx.MockTransport.

Each adapter must: publish and return receipts; keep the platform's own words on
a permanent error; honour the platform's wait on 429; treat a timeout or 5xx as
retryable only where the platform deduplicates by key, else as uncertain; and
never let a secret into an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.errors import PermanentError, PlatformError, RetryableError, UncertainError
from scheduler.platforms import PLATFORMS
from scheduler.platforms.base import MediaFile, Outgoing, Platform
from scheduler.platforms.webhook import SIGNATURE_HEADER, sign
from tests.social_cases import social_cases
from tests.standins.fixtures import matrix_standin  # noqa: F401 - a pytest fixture

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Case:
    platform: str
    settings: dict[str, Any]
    secrets: list[str]
    ok: Handler
    auth_fail: httpx.Response
    auth_words: str
    rate_limited: httpx.Response
    wait: float
    checks: Callable[[list[httpx.Request]], None] = field(default=lambda _r: None)
    # answers the requests that come before the post itself (a login), or None
    setup: Callable[[httpx.Request], httpx.Response | None] = field(default=lambda _r: None)


def _mastodon_ok(request: httpx.Request) -> httpx.Response:
    n = request.extensions.setdefault("n", 1)
    return httpx.Response(200, json={"id": f"10{n}", "url": f"https://m.example/@a/10{n}"})


def _mastodon_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.path == "/api/v1/statuses"
    assert req.headers["Authorization"] == "Bearer tok-mastodon-123"
    assert len(req.headers["Idempotency-Key"]) >= 32
    body = json.loads(req.content)
    assert body["status"] == "Free them" and body["language"] == "en"


def _telegram_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.path == "/bot123:tg-secret/sendMessage"
    body = json.loads(req.content)
    assert body["parse_mode"] == "HTML" and body["chat_id"] == "@chan"


def _discord_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.params["wait"] == "true"
    assert json.loads(req.content)["allowed_mentions"] == {"parse": []}


def _webhook_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.headers[SIGNATURE_HEADER] == sign("hook-secret", req.content)
    assert json.loads(req.content)["text"] == "Free them"


def _bluesky_setup(request: httpx.Request) -> httpx.Response | None:
    if request.url.path.endswith("createSession"):
        body = json.loads(request.content)
        assert body == {"identifier": "hr.example", "password": "app-pass-xyz"}
        return httpx.Response(
            200,
            json={
                "accessJwt": "acc-1",
                "refreshJwt": "ref-1",
                "did": "did:plc:abc",
                "handle": "hr.example",
            },
        )
    return None


def _bluesky_ok(request: httpx.Request) -> httpx.Response:
    assert request.headers["Authorization"] == "Bearer acc-1"
    return httpx.Response(
        200, json={"uri": "at://did:plc:abc/app.bsky.feed.post/3k2a", "cid": "bafy"}
    )


def _bluesky_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    body = json.loads(req.content)
    record = body["record"]
    assert body["repo"] == "did:plc:abc" and body["collection"] == "app.bsky.feed.post"
    assert record["text"] == "Free them" and record["langs"] == ["en"]
    assert record["createdAt"].endswith("Z")


CASES = [
    Case(
        "mastodon",
        {
            "platform": "mastodon",
            "instance": "https://m.example",
            "access_token": "tok-mastodon-123",
        },
        ["tok-mastodon-123"],
        _mastodon_ok,
        httpx.Response(401, json={"error": "The access token is invalid"}),
        "The access token is invalid",
        httpx.Response(
            429,
            json={"error": "Too many requests"},
            headers={"X-RateLimit-Reset": (datetime.now(UTC) + timedelta(seconds=90)).isoformat()},
        ),
        90,
        _mastodon_checks,
    ),
    Case(
        "telegram",
        {
            "platform": "telegram",
            "api": "https://tg.example",
            "bot_token": "123:tg-secret",
            "chat": "@chan",
        },
        ["123:tg-secret", "tg-secret"],
        lambda _r: httpx.Response(
            200, json={"ok": True, "result": {"message_id": 7, "chat": {"id": -1}}}
        ),
        httpx.Response(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"}),
        "Unauthorized",
        httpx.Response(
            429,
            json={
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            },
        ),
        3,
        _telegram_checks,
    ),
    Case(
        "discord",
        {"platform": "discord", "webhook_url": "https://d.example/api/webhooks/1/hook-token"},
        ["hook-token"],
        lambda _r: httpx.Response(200, json={"id": "99", "channel_id": "5", "guild_id": "4"}),
        httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015}),
        "Unknown Webhook",
        httpx.Response(
            429,
            json={"message": "You are being rate limited.", "retry_after": 1500, "global": False},
            headers={"Retry-After": "2"},
        ),
        2,
        _discord_checks,
    ),
    Case(
        "webhook",
        {"platform": "webhook", "url": "https://hook.example/in", "secret": "hook-secret"},
        ["hook-secret"],
        lambda _r: httpx.Response(200, json={"id": "abc"}),
        httpx.Response(403, json={"error": "bad signature"}),
        "bad signature",
        httpx.Response(429, headers={"Retry-After": "12"}),
        12,
        _webhook_checks,
    ),
]
CASES.append(
    Case(
        "bluesky",
        {
            "platform": "bluesky",
            "service": "https://pds.example",
            "handle": "hr.example",
            "app_password": "app-pass-xyz",
        },
        ["app-pass-xyz"],
        _bluesky_ok,
        httpx.Response(
            401,
            json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
        ),
        "Invalid identifier or password",
        httpx.Response(
            429,
            json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            headers={"RateLimit-Reset": str(int(datetime.now(UTC).timestamp()) + 60)},
        ),
        60,
        _bluesky_checks,
        _bluesky_setup,
    )
)


def _matrix_ok(request: httpx.Request) -> httpx.Response:
    assert request.headers["Authorization"] == "Bearer syt-matrix-secret"
    return httpx.Response(200, json={"event_id": f"$ev{request.url.path[-6:]}"})


def _matrix_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.method == "PUT"
    room, txn = req.url.path.split("/rooms/")[1].split("/send/m.room.message/")
    assert room == "!room:m.example" and txn.startswith("solidarity-") and len(txn) > 40
    assert json.loads(req.content) == {"msgtype": "m.text", "body": "Free them"}


CASES.append(
    Case(
        "matrix",
        {
            "platform": "matrix",
            "homeserver": "https://m.example",
            "room": "!room:m.example",
            "access_token": "syt-matrix-secret",
        },
        ["syt-matrix-secret"],
        _matrix_ok,
        httpx.Response(
            401,
            json={"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."},
        ),
        "M_UNKNOWN_TOKEN: Invalid access token passed.",
        httpx.Response(
            429,
            json={
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too Many Requests",
                "retry_after_ms": 2500,
            },
        ),
        2.5,
        _matrix_checks,
    )
)
CASES.extend(social_cases(Case))  # X, Facebook, Threads, LinkedIn
IDS = [c.platform for c in CASES]


def adapter(case: Case, handler: Handler, *, with_setup: bool = True) -> Platform:
    cls = PLATFORMS[case.platform]
    settings = cls.settings_model.model_validate(case.settings)

    def route(request: httpx.Request) -> httpx.Response:
        early = case.setup(request) if with_setup else None
        return early if early is not None else handler(request)

    return cls(settings, httpx.Client(transport=httpx.MockTransport(route)))


def outgoing(parts: tuple[str, ...] = ("Free them",)) -> Outgoing:
    return Outgoing("c/p/a/2026-07-01T09:00:00Z/-", parts, NOW, language="en")


def no_secret_in(case: Case, exc: BaseException) -> None:
    shown = f"{exc} {exc!r} {getattr(exc, 'reason', '')}"
    for secret in case.secrets:
        assert secret not in shown


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_happy_path_returns_receipts(case: Case) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return case.ok(request)

    (receipt,) = adapter(case, handler).publish(outgoing())
    assert receipt.remote_id
    case.checks(seen)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_auth_failure_is_permanent_in_the_platforms_words(case: Case) -> None:
    with pytest.raises(PermanentError) as info:
        adapter(case, lambda _r: case.auth_fail, with_setup=False).publish(outgoing())
    assert case.auth_words in str(info.value)
    no_secret_in(case, info.value)


def fresh(response: httpx.Response) -> httpx.Response:
    """Move an absolute reset time (Mastodon's, Bluesky's) to just ahead of the real clock."""
    headers = dict(response.headers)
    now = datetime.now(UTC)
    if "x-ratelimit-reset" in headers:
        headers["x-ratelimit-reset"] = (now + timedelta(seconds=90)).isoformat()
    if "ratelimit-reset" in headers:
        headers["ratelimit-reset"] = str(int(now.timestamp()) + 60)
    if "x-rate-limit-reset" in headers:  # X's, an epoch time
        headers["x-rate-limit-reset"] = str(int(now.timestamp()) + 60)
    return httpx.Response(response.status_code, headers=headers, content=response.content)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rate_limit_is_retryable_with_the_platforms_wait(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RetryableError) as info:
        adapter(case, lambda _r: fresh(case.rate_limited), with_setup=False).publish(outgoing())
    assert info.value.wait is not None
    if case.platform in ("mastodon", "bluesky", "x"):  # an absolute reset: the clock moved on
        assert 0 < info.value.wait <= case.wait + 1
    else:
        assert info.value.wait == pytest.approx(case.wait)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda _r: httpx.Response(500, text="Internal Server Error"), id="500"),
        pytest.param(lambda _r: httpx.Response(502, text="Bad Gateway"), id="502"),
        pytest.param("timeout", id="read-timeout"),
        pytest.param("dropped", id="connection-dropped"),
    ],
)
def test_outcome_unknown_is_uncertain_unless_the_platform_dedupes(case: Case, failure: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if failure == "dropped":
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        result: httpx.Response = failure(request)
        return result

    cls = PLATFORMS[case.platform]
    expected: type[PlatformError] = RetryableError if cls.dedupes_by_key else UncertainError
    with pytest.raises(PlatformError) as info:
        adapter(case, handler).publish(outgoing())
    assert type(info.value) is expected
    no_secret_in(case, info.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_connection_refused_is_retryable(case: Case) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(RetryableError) as info:
        adapter(case, handler, with_setup=False).publish(outgoing())
    no_secret_in(case, info.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_settings_never_print_secrets(case: Case) -> None:
    cls = PLATFORMS[case.platform]
    settings = cls.settings_model.model_validate(case.settings)
    for shown in (str(settings), repr(settings), settings.model_dump_json()):
        for secret in case.secrets:
            assert secret not in shown


def test_mastodon_thread_replies_to_the_previous_part_with_stable_keys() -> None:
    bodies: list[dict[str, Any]] = []
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(
            200, json={"id": str(len(bodies)), "url": f"https://m.example/{len(bodies)}"}
        )

    receipts = adapter(CASES[0], handler).publish(outgoing(("one 1/2", "two 2/2")))
    assert [r.remote_id for r in receipts] == ["1", "2"]
    assert "in_reply_to_id" not in bodies[0] and bodies[1]["in_reply_to_id"] == "1"
    again: list[str] = []
    adapter(
        CASES[0],
        lambda r: (
            again.append(r.headers["Idempotency-Key"]),
            httpx.Response(200, json={"id": "1"}),
        )[1],
    ).publish(outgoing(("one 1/2", "two 2/2")))
    assert again == keys and keys[0] != keys[1]


def test_telegram_escapes_html_so_names_cannot_break_the_message() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content)["text"])
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})

    adapter(CASES[1], handler).publish(outgoing(("<Fatimə> & co",)))
    assert sent == ["&lt;Fatimə&gt; &amp; co"]


def test_telegram_message_url_for_public_channel() -> None:
    (receipt,) = adapter(CASES[1], CASES[1].ok).publish(outgoing())
    assert receipt.url == "https://t.me/chan/7"


def test_mastodon_reads_the_instance_limit_and_reads_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/instance":
            return httpx.Response(
                200, json={"configuration": {"statuses": {"max_characters": 5000}}}
            )
        if request.url.path == "/api/v1/accounts/verify_credentials":
            return httpx.Response(200, json={"id": "42", "acct": "hr"})
        if request.url.path == "/api/v1/accounts/42/statuses":
            return httpx.Response(
                200,
                json=[
                    {
                        "id": "7",
                        "url": "https://m.example/@hr/7",
                        "content": "<p>Free them</p>",
                        "created_at": "2026-07-01T09:00:02.000Z",
                    },
                    {  # the same text a week before: another occurrence's post
                        "id": "6",
                        "url": "https://m.example/@hr/6",
                        "content": "<p>Free them</p>",
                        "created_at": "2026-06-24T09:00:02.000Z",
                    },
                ],
            )
        return httpx.Response(404)

    m = adapter(CASES[0], handler)
    assert m.live_limit() == 5000
    found = m.read_back(outgoing())
    assert found is not None and found.remote_id == "7"
    assert m.read_back(outgoing(("Something else",))) is None
    assert m.check() == "@hr@m.example"


def test_bluesky_reuses_its_session_and_refreshes_an_expired_token() -> None:
    case = next(c for c in CASES if c.platform == "bluesky")
    tokens: list[str] = []
    expired = {"once": True}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("refreshSession"):
            assert request.headers["Authorization"] == "Bearer ref-1"
            return httpx.Response(
                200,
                json={
                    "accessJwt": "acc-2",
                    "refreshJwt": "ref-2",
                    "did": "did:plc:abc",
                    "handle": "hr.example",
                },
            )
        tokens.append(request.headers["Authorization"])
        if (
            request.headers["Authorization"] == "Bearer acc-1"
            and len(tokens) == 2
            and expired.pop("once", False)
        ):
            return httpx.Response(
                400, json={"error": "ExpiredToken", "message": "Token has expired"}
            )
        return httpx.Response(
            200, json={"uri": f"at://did:plc:abc/app.bsky.feed.post/{len(tokens)}", "cid": "c"}
        )

    bsky = adapter(case, handler)
    bsky.publish(outgoing())
    bsky.publish(outgoing())
    assert tokens == ["Bearer acc-1", "Bearer acc-1", "Bearer acc-2"]
    assert bsky.logins == 1  # type: ignore[attr-defined]


def test_bluesky_thread_keeps_root_and_parent_and_facets_in_bytes() -> None:
    case = next(c for c in CASES if c.platform == "bluesky")
    records: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("resolveHandle"):
            return httpx.Response(200, json={"did": "did:plc:friend"})
        records.append(json.loads(request.content)["record"])
        return httpx.Response(
            200,
            json={
                "uri": f"at://did:plc:abc/app.bsky.feed.post/{len(records)}",
                "cid": f"c{len(records)}",
            },
        )

    text = "Fatimə #FreeThePress https://example.org 1/2"
    adapter(case, handler).publish(outgoing((text, "two 2/2")))
    first, second = records
    assert "reply" not in first
    assert second["reply"]["root"] == {"uri": "at://did:plc:abc/app.bsky.feed.post/1", "cid": "c1"}
    assert second["reply"]["parent"] == second["reply"]["root"]
    raw = text.encode()
    spans = {
        f["features"][0]["$type"].split("#")[1]: raw[
            f["index"]["byteStart"] : f["index"]["byteEnd"]
        ].decode()
        for f in first["facets"]
    }
    assert spans == {"tag": "#FreeThePress", "link": "https://example.org"}
    tag = next(f for f in first["facets"] if f["features"][0]["$type"].endswith("#tag"))
    assert tag["features"][0]["tag"] == "FreeThePress"


def test_third_party_platform_through_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pigeon_plugin.py").write_text(
        "from scheduler.platforms.base import AccountSettings, Platform\n"
        "class PigeonSettings(AccountSettings):\n    loft: str\n"
        "class Pigeon(Platform):\n"
        "    name = 'pigeon'\n    label = 'Carrier pigeon'\n    limit = 40\n    counter = 'codepoints'\n"
        "    settings_model = PigeonSettings\n",
        encoding="utf-8",
    )
    info = tmp_path / "pigeon_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pigeon-plugin\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[solidarity.platforms]\npigeon = pigeon_plugin:Pigeon\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        "scheduler.platforms.PLATFORMS", dict(PLATFORMS)
    )  # keep the plugin to this test
    from scheduler.platforms import find_platform

    found = find_platform("pigeon")
    assert found is not None and found.limit == 40
    assert find_platform("no-such-platform") is None


@pytest.mark.parametrize(
    ("url", "body", "wait"),
    [
        ("https://d.example/api/webhooks/1/hook-token", 1500, 1.5),  # unversioned: milliseconds
        ("https://d.example/api/v10/webhooks/1/hook-token", 1.5, 1.5),  # versioned: seconds
    ],
)
def test_discord_reads_the_body_wait_by_api_version(url: str, body: float, wait: float) -> None:
    case = next(c for c in CASES if c.platform == "discord")
    case = Case(**{**case.__dict__, "settings": {**case.settings, "webhook_url": url}})
    answer = httpx.Response(
        429, json={"message": "You are being rate limited.", "retry_after": body}
    )
    with pytest.raises(RetryableError) as info:
        adapter(case, lambda _r: answer).publish(outgoing())
    assert info.value.wait == pytest.approx(wait)


def test_a_rate_limit_header_on_a_502_is_not_a_wait() -> None:
    case = CASES[0]  # Mastodon sends X-RateLimit-Reset on every response
    reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    answer = httpx.Response(502, text="Bad Gateway", headers={"X-RateLimit-Reset": reset})
    with pytest.raises(RetryableError) as info:
        adapter(case, lambda _r: answer).publish(outgoing())
    assert info.value.wait is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_no_secret_in_any_log_record(case: Case, caplog: pytest.LogCaptureFixture) -> None:
    from scheduler.accounts import Account
    from scheduler.dispatch import make_adapter

    cls = PLATFORMS[case.platform]
    account = Account("a", cls, cls.settings_model.model_validate(case.settings), 1)
    caplog.set_level(logging.DEBUG)

    def route(request: httpx.Request) -> httpx.Response:
        return case.setup(request) or case.ok(request)

    make_adapter(account, httpx.MockTransport(route)).publish(outgoing())
    with pytest.raises(PlatformError):
        make_adapter(
            account, httpx.MockTransport(lambda r: case.setup(r) or case.auth_fail)
        ).publish(outgoing())
    for secret in case.secrets:
        assert secret not in caplog.text


def test_bluesky_reads_back_the_record_at_its_own_key() -> None:
    from scheduler.platforms.bluesky import record_key

    case = next(c for c in CASES if c.platform == "bluesky")
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("getRecord")
        assert request.url.params["repo"] == "did:plc:abc"
        rkey = request.url.params["rkey"]
        asked.append(rkey)
        if rkey != record_key(outgoing(), 0):
            return httpx.Response(400, json={"error": "RecordNotFound", "message": "no"})
        return httpx.Response(
            200,
            json={
                "uri": f"at://did:plc:abc/app.bsky.feed.post/{rkey}",
                "cid": "c",
                "value": {"text": "Free them"},
            },
        )

    bsky = adapter(case, handler)
    found = bsky.read_back(outgoing())
    key = record_key(outgoing(), 0)
    assert found is not None and found.url == f"https://bsky.app/profile/hr.example/post/{key}"
    other = Outgoing("c/p/a/2026-07-08T09:00:00Z/-", ("Free them",), NOW)
    assert bsky.read_back(other) is None  # the same text, another occurrence: not found
    assert asked == [key, record_key(other, 0)]


@pytest.mark.parametrize("platform", ["telegram", "discord", "webhook"])
def test_platforms_without_read_back_say_so_plainly(platform: str) -> None:
    case = next(c for c in CASES if c.platform == platform)
    assert not PLATFORMS[platform].can_read_back
    with pytest.raises(PermanentError, match="cannot read back"):
        adapter(case, case.ok).read_back(outgoing())


# -- Matrix ------------------------------------------------------------------------------


def _matrix(handler: Handler, room: str = "#press:m.example") -> Platform:
    case = next(c for c in CASES if c.platform == "matrix")
    settings = PLATFORMS["matrix"].settings_model.model_validate({**case.settings, "room": room})
    return PLATFORMS["matrix"](settings, httpx.Client(transport=httpx.MockTransport(handler)))


def test_matrix_resolves_an_alias_once_and_links_in_escaped_html(tmp_path: Path) -> None:
    from tests.test_real_servers import png

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "/directory/room/" in request.url.path:
            assert request.url.raw_path.endswith(b"/%23press%3Am.example")
            return httpx.Response(200, json={"room_id": "!abc:m.example", "servers": []})
        if request.url.path == "/_matrix/media/v3/upload":
            assert request.url.params["filename"] == "p.png"
            return httpx.Response(200, json={"content_uri": "mxc://m.example/xyz"})
        return httpx.Response(200, json={"event_id": f"$e{len(seen)}"})

    (tmp_path / "p.png").write_bytes(png(7, 4))
    media = (MediaFile(tmp_path, "p.png", "Nargiz <Absalamova>"),)
    text = "Free <Sevinj> & all:\nhttps://amnesty.org/a?b=1&c=2."
    out = Outgoing("c/p/a/2026-07-01T09:00:00Z/-", (text, "part two"), NOW, media=media)
    m = _matrix(handler)
    first = m.publish(out)
    m.publish(out)  # a retry: the same txnIds, and no second alias look-up
    assert [r.url.path for r in seen].count(
        "/_matrix/client/v3/directory/room/#press:m.example"
    ) == 1
    sends = [r for r in seen if r.method == "PUT"]
    assert len(sends) == 6 and len(first) == 3
    txns = [r.url.path.rsplit("/", 1)[1] for r in sends]
    assert txns[:3] == txns[3:] and len(set(txns[:3])) == 3
    body = json.loads(sends[0].content)
    assert body["body"] == text and body["format"] == "org.matrix.custom.html"
    assert body["formatted_body"] == (
        "Free &lt;Sevinj&gt; &amp; all:<br>"
        '<a href="https://amnesty.org/a?b=1&amp;c=2">https://amnesty.org/a?b=1&amp;c=2</a>.'
    )
    image = json.loads(sends[1].content)
    assert image["msgtype"] == "m.image" and image["body"] == "Nargiz <Absalamova>"
    assert image["url"] == "mxc://m.example/xyz"
    assert image["info"] == {"mimetype": "image/png", "size": len(png(7, 4)), "w": 7, "h": 4}
    assert json.loads(sends[2].content) == {"msgtype": "m.text", "body": "part two"}
    assert first[0].url == "https://matrix.to/#/!abc:m.example/$e2"


def test_matrix_refuses_an_oversized_event_before_any_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    huge = "<&> https://a.example/ " * 4000
    with pytest.raises(PermanentError, match="nothing was sent"):
        _matrix(handler, "!abc:m.example").publish(outgoing((huge,)))


@pytest.mark.parametrize(
    "room", ["room", "#nohost", "!", "#:server", "@user:server", "!a b:c"], ids=str
)
def test_matrix_room_must_be_an_id_or_an_alias(room: str) -> None:
    case = next(c for c in CASES if c.platform == "matrix")
    with pytest.raises(ValueError, match="is not a room"):
        PLATFORMS["matrix"].settings_model.model_validate({**case.settings, "room": room})


def test_matrix_against_its_standin_waits_dedupes_checks_and_reads_back(
    matrix_standin: Any,  # noqa: F811
) -> None:
    settings = PLATFORMS["matrix"].settings_model.model_validate(
        {
            "platform": "matrix",
            "homeserver": matrix_standin.url,
            "room": matrix_standin.alias,
            "access_token": matrix_standin.token,
        }
    )
    m = PLATFORMS["matrix"](settings, httpx.Client(timeout=5))
    assert m.check() == f"{matrix_standin.user} in {matrix_standin.alias}"
    out = outgoing(("Free them", "all of them"))
    assert m.read_back(out) is None
    matrix_standin.rate_limit_next(retry_after=1.5)
    with pytest.raises(RetryableError) as info:
        m.publish(out)
    assert info.value.wait == pytest.approx(1.5) and "M_LIMIT_EXCEEDED" in info.value.reason
    matrix_standin.fail_next(status=502, after=True)  # the first part went out, its answer lost
    with pytest.raises(RetryableError):
        m.publish(out)
    receipts = m.publish(out)
    assert [p["content"]["body"] for p in matrix_standin.posts] == ["Free them", "all of them"]
    found = m.read_back(out)
    assert found is not None and found.remote_id == receipts[0].remote_id
    matrix_standin.reject_auth()
    with pytest.raises(PermanentError, match=r"M_UNKNOWN_TOKEN: Invalid access token passed\."):
        m.publish(outgoing(("again",)))


def test_image_sizes_from_their_headers() -> None:
    from scheduler.platforms.imagesize import image_size
    from tests.test_real_servers import png

    assert image_size(png(3, 2)) == (3, 2)
    assert image_size(b"GIF89a\x05\x00\x07\x00" + b"\x00" * 8) == (5, 7)
    jpeg = b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08\x00\x09\x00\x0c\x03" + b"\x00" * 12
    assert image_size(jpeg) == (12, 9)
    vp8x = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"
        + b"\x1f\x00\x00\x0f\x00\x00"
    )
    assert image_size(vp8x) == (32, 16)
    assert image_size(b"not an image") is None
