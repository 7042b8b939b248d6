"""The contract suite's cases for X, Facebook Pages, Threads and LinkedIn (tests/test_adapters.py).

Built by ``social_cases(Case)`` so that this module needs nothing from the suite's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx


def _x_ok(request: httpx.Request) -> httpx.Response:
    assert request.headers["Authorization"].startswith("OAuth ")
    if request.url.path == "/2/media/upload":
        return httpx.Response(200, json={"data": {"id": "77", "media_key": "3_77"}})
    if request.url.path == "/2/media/metadata":
        return httpx.Response(200, json={"data": {"id": "77"}})
    n = request.extensions.setdefault("n", 1)
    return httpx.Response(201, json={"data": {"id": f"18{n}", "text": "Free them"}})


def _x_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.path == "/2/tweets"
    auth = req.headers["Authorization"]
    assert 'oauth_consumer_key="x-key"' in auth and 'oauth_token="x-token"' in auth
    assert "oauth_body_hash" not in auth  # a JSON body is not part of the signature
    assert json.loads(req.content) == {"text": "Free them"}


def _graph_ok(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/threads"):
        return httpx.Response(200, json={"id": "c-1"})
    if path.endswith("/threads_publish"):
        return httpx.Response(200, json={"id": "t-1"})
    if "/t-1" in path:
        return httpx.Response(200, json={"permalink": "https://www.threads.net/@a/post/X"})
    return httpx.Response(200, json={"id": "1234567890_42"})


def _facebook_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.path == "/v23.0/1234567890/feed"
    assert req.headers["Authorization"] == "Bearer fb-page-token"
    assert b"fb-page-token" not in req.content and "fb-page-token" not in str(req.url)
    assert dict(httpx.QueryParams(req.content.decode())) == {"message": "Free them"}


def _threads_checks(requests: list[httpx.Request]) -> None:
    create, publish, permalink = requests
    assert create.url.path == "/v1.0/1789/threads"
    assert dict(httpx.QueryParams(create.content.decode())) == {
        "text": "Free them",
        "media_type": "TEXT",
    }
    assert publish.url.path == "/v1.0/1789/threads_publish"
    assert dict(httpx.QueryParams(publish.content.decode())) == {"creation_id": "c-1"}
    assert permalink.method == "GET"


def _linkedin_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, headers={"x-restli-id": "urn:li:share:7000"})


def _linkedin_checks(requests: list[httpx.Request]) -> None:
    (req,) = requests
    assert req.url.path == "/rest/posts"
    assert req.headers["LinkedIn-Version"].isdigit() and len(req.headers["LinkedIn-Version"]) == 6
    assert req.headers["X-Restli-Protocol-Version"] == "2.0.0"
    body = json.loads(req.content)
    assert body["author"] == "urn:li:organization:42" and body["commentary"] == "Free them"
    assert body["lifecycleState"] == "PUBLISHED" and body["visibility"] == "PUBLIC"


def _graph_error(status: int, code: int, message: str, **headers: str) -> httpx.Response:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "T"}
    return httpx.Response(status, json={"error": error}, headers=headers)


def social_cases(case: Any) -> list[Any]:
    """Return the four platforms' cases, each a ``Case`` of the contract suite."""
    usage = json.dumps({"1": [{"type": "pages", "estimated_time_to_regain_access": 5}]})
    return [
        case(
            "x",
            {
                "platform": "x",
                "api": "https://x.example",
                "api_key": "x-key",
                "api_secret": "x-api-secret-123",
                "access_token": "x-token",
                "access_token_secret": "x-token-secret-456",
            },
            ["x-api-secret-123", "x-token-secret-456"],
            _x_ok,
            httpx.Response(
                401,
                json={
                    "title": "Unauthorized",
                    "type": "about:blank",
                    "status": 401,
                    "detail": "Unauthorized",
                },
            ),
            "Unauthorized",
            httpx.Response(
                429,
                json={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
                headers={"x-rate-limit-reset": str(int(datetime.now(UTC).timestamp()) + 60)},
            ),
            60,
            _x_checks,
        ),
        case(
            "facebook",
            {
                "platform": "facebook",
                "api": "https://graph.example",
                "page_id": "1234567890",
                "page_access_token": "fb-page-token",
            },
            ["fb-page-token"],
            _graph_ok,
            _graph_error(400, 190, "Error validating access token: Session has expired"),
            "Error validating access token: Session has expired",
            _graph_error(
                400, 32, "(#32) Page request limit reached", **{"X-Business-Use-Case-Usage": usage}
            ),
            300,
            _facebook_checks,
        ),
        case(
            "threads",
            {
                "platform": "threads",
                "api": "https://threads.example",
                "user_id": "1789",
                "access_token": "threads-token-789",
            },
            ["threads-token-789"],
            _graph_ok,
            _graph_error(401, 190, "Error validating access token: Session has expired"),
            "Error validating access token",
            _graph_error(
                429,
                4,
                "Application request limit reached",
                **{
                    "X-App-Usage": json.dumps(
                        {"call_count": 100, "estimated_time_to_regain_access": 2}
                    )
                },
            ),
            120,
            _threads_checks,
        ),
        case(
            "linkedin",
            {
                "platform": "linkedin",
                "api": "https://li.example",
                "author": "urn:li:organization:42",
                "access_token": "li-token-abc",
            },
            ["li-token-abc"],
            _linkedin_ok,
            httpx.Response(
                401,
                json={
                    "status": 401,
                    "serviceErrorCode": 65600,
                    "code": "INVALID_ACCESS_TOKEN",
                    "message": "Invalid access token",
                },
            ),
            "Invalid access token",
            httpx.Response(
                429, json={"status": 429, "message": "Throttled"}, headers={"Retry-After": "7"}
            ),
            7,
            _linkedin_checks,
        ),
    ]
