"""X (API v2): posts, media upload with alt text, the user's own posts, OAuth 1.0a.

Modelled on X's published API reference (docs.x.com):
  - "Create or Edit Post" (POST /2/tweets: text, reply.in_reply_to_tweet_id,
    media.media_ids; 201 {"data": {"id", "text"}}; duplicate content is 403 "You are
    not allowed to create a Tweet with duplicate content.")
  - "Upload media" (POST /2/media/upload, one-shot multipart ``media`` with
    ``media_category``) and "Create Media metadata" (POST /2/media/metadata, alt_text
    at most 1,000 characters)
  - "Get my User" (GET /2/users/me) and "Get Posts" of a user (GET /2/users/:id/tweets
    with start_time; URLs come back as t.co links and ``&`` as ``&amp;``)
  - "Rate limits" (429 with x-rate-limit-limit, -remaining and -reset, an epoch time)
  - "OAuth 1.0a" / "Creating a signature" (HMAC-SHA1 over method, URL, the oauth_*
    parameters, the query and a form body; a JSON or multipart body is not signed).

The signature is checked here with its own code, not with the adapter's library, so a
wrong signature is a 401 {"title": "Unauthorized", ..., "status": 401}.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import re
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request

ALT_LIMIT = 1000
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def problem(status: int, title: str, detail: str) -> Reply:
    """Return X's v2 problem shape."""
    return Reply.json(
        status, {"title": title, "detail": detail, "type": "about:blank", "status": status}
    )


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


def signature(
    method: str, url: str, params: list[tuple[str, str]], consumer_secret: str, token_secret: str
) -> str:
    """Return the OAuth 1.0a HMAC-SHA1 signature (RFC 5849 section 3.4)."""
    pairs = sorted((_enc(k), _enc(v)) for k, v in params)
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join((method.upper(), _enc(url), _enc(normalized)))
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()).decode()


class X(StandIn):
    """One X user: post, upload media and its alt text, read its posts back."""

    platform = "x"
    post_routes = "tweets.create"

    def __init__(
        self,
        *,
        api_key: str = "standin-api-key",
        api_secret: str = "standin-api-secret",
        access_token: str = "1000-standin-access-token",
        access_token_secret: str = "standin-access-token-secret",
        username: str = "solidarity",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.api_key, self.api_secret = api_key, api_secret
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.username, self.user_id = username, "1000"
        self._media: dict[str, dict[str, Any]] = {}
        self._nonces: set[str] = set()
        self._last = int(time.time() * 1000) << 22

    def _next_id(self) -> str:
        self._last += 1 << 22
        return str(self._last)

    def _denied(self, req: Request) -> Reply | None:
        """Check the OAuth 1.0a signature; return X's 401 when it does not hold."""
        header = req.header("authorization") or ""
        if self.auth_rejected or not header.startswith("OAuth "):
            return problem(401, "Unauthorized", "Unauthorized")
        given = {k: unquote(v) for k, v in _AUTH_PARAM.findall(header)}
        if given.get("oauth_consumer_key") != self.api_key or (
            given.get("oauth_token") != self.access_token
        ):
            return problem(401, "Unauthorized", "Unauthorized")
        if given.get("oauth_signature_method") != "HMAC-SHA1":
            return problem(401, "Unauthorized", "Unauthorized")
        params = [(k, v) for k, v in given.items() if k not in ("oauth_signature", "realm")]
        params += [(k, v) for k, values in req.query.items() for v in values]
        if req.content_type == "application/x-www-form-urlencoded":
            params += parse_qsl(req.body.decode(), keep_blank_values=True)
        url = f"http://{req.header('host')}{req.path}"
        expected = signature(req.method, url, params, self.api_secret, self.access_token_secret)
        nonce = given.get("oauth_nonce", "")
        fresh = abs(time.time() - float(given.get("oauth_timestamp", "0") or 0)) < 300
        if not hmac.compare_digest(expected, given.get("oauth_signature", "")) or not fresh:
            return problem(401, "Unauthorized", "Unauthorized")
        if nonce in self._nonces:
            return problem(401, "Unauthorized", "Unauthorized")  # a replayed request
        self._nonces.add(nonce)
        return None

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        reply = problem(429, "Too Many Requests", "Too Many Requests")
        reply.headers.update(
            {
                "x-rate-limit-limit": "100",
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(int(self.clock() + retry_after)),
            }
        )
        return reply

    @route("POST", r"/2/tweets", "tweets.create")
    def create(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        try:
            body = req.json()
            text = body.get("text", "")
        except (ValueError, AttributeError):
            return problem(
                400, "Invalid Request", "One or more parameters to your request was invalid."
            )
        media_ids = (body.get("media") or {}).get("media_ids") or []
        if not text and not media_ids:
            return problem(400, "Invalid Request", "The `text` field is required.")
        if any(p["text"] == text and text for p in self._posts):
            return problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and not any(p["id"] == reply_to for p in self._posts):
            return problem(
                403,
                "Forbidden",
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            )
        if any(m not in self._media for m in media_ids) or len(media_ids) > 4:
            return problem(400, "Invalid Request", "Your media IDs are invalid.")
        post = {
            "id": self._next_id(),
            "text": text,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(self.clock())),
            "in_reply_to_tweet_id": reply_to,
            "media": [self._media[m] for m in media_ids],
        }
        self.add_post(post)
        return Reply.json(201, {"data": {"id": post["id"], "text": text}})

    @route("POST", r"/2/media/upload", "media.upload")
    def upload(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if req.content_type != "multipart/form-data":
            return problem(400, "Invalid Request", "The `media` field is required.")
        fields, files = req.form()
        parts = files.get("media") or []
        if not parts or not parts[0].data:
            return problem(400, "Invalid Request", "The `media` field is required.")
        media_id = self._next_id()
        self._media[media_id] = {
            "id": media_id,
            "size": len(parts[0].data),
            "category": (fields.get("media_category") or [""])[-1],
            "alt_text": None,
        }
        return Reply.json(
            200,
            {
                "data": {
                    "id": media_id,
                    "media_key": f"3_{media_id}",
                    "size": len(parts[0].data),
                    "expires_after_secs": 86400,
                    "image": {"image_type": parts[0].content_type, "w": 1, "h": 1},
                }
            },
        )

    @route("POST", r"/2/media/metadata", "media.metadata")
    def metadata(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        try:
            body = req.json()
            media_id, alt = body["id"], body["metadata"]["alt_text"]["text"]
        except (ValueError, KeyError, TypeError):
            return problem(
                400, "Invalid Request", "One or more parameters to your request was invalid."
            )
        if media_id not in self._media:
            return problem(400, "Invalid Request", f"The media id {media_id} is invalid.")
        if len(alt) > ALT_LIMIT:
            return problem(400, "Invalid Request", f"alt_text.text is longer than {ALT_LIMIT}.")
        self._media[media_id]["alt_text"] = alt
        return Reply.json(200, {"data": {"id": media_id, "associated_metadata": body["metadata"]}})

    @route("GET", r"/2/users/me", "users.me")
    def me(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        return Reply.json(
            200, {"data": {"id": self.user_id, "name": "Solidarity", "username": self.username}}
        )

    @route("GET", r"/2/users/(?P<id>\d+)/tweets", "users.tweets")
    def timeline(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if match["id"] != self.user_id:
            return problem(403, "Forbidden", "Sorry, you are not authorized to see this user.")
        start = (req.query.get("start_time") or [""])[-1]
        posts = [
            p for p in reversed(self._posts) if not start or p["created_at"][:19] >= start[:19]
        ]
        data = [
            {
                "id": p["id"],
                "text": html.escape(
                    re.sub(r"https?://\S+", "https://t.co/abc123", p["text"]), quote=False
                ),
                "created_at": p["created_at"],
            }
            for p in posts[: int((req.query.get("max_results") or ["10"])[-1])]
        ]
        return Reply.json(
            200,
            {"data": data, "meta": {"result_count": len(data)}}
            if data
            else {"meta": {"result_count": 0}},
        )

    def extra_state(self) -> dict[str, Any]:
        return {"media": dict(self._media)}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "access_token": self.access_token,
            "access_token_secret": self.access_token_secret,
        }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--username", default="solidarity")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> X:
        """Build from parsed command-line options."""
        return cls(username=ns.username, **common)
