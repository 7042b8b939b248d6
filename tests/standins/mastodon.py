"""Mastodon: statuses, media and read-back for one account on one instance.

Checks what Mastodon checks, in its order: the Bearer token (401), the replied-to status
(404), the Idempotency-Key (the same key within the window answers the SAME status and
creates nothing), then media (at most 4, uploaded, processed), blank text, visibility,
and the length: Mastodon's count of the text (graphemes, URLs as 23, via
scheduler.text.mastodon_length) plus the content warning's graphemes, against
``max_characters`` (422 "Validation failed: Text character limit of 500 exceeded").

A 429 carries X-RateLimit-Limit/Remaining/Reset, the reset as ISO 8601 (and, like
Mastodon, no Retry-After); every /api answer carries the same headers.
"""

from __future__ import annotations

import argparse
import html
import re
from typing import Any

from scheduler.text import graphemes, mastodon_length
from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request, iso_ms

VISIBILITIES = ("public", "unlisted", "private", "direct")
MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio"}
WINDOW, LIMIT = 300, 300  # Mastodon's API throttle: 300 requests per 5 minutes


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """Return Mastodon's error shape: {"error": message}."""
    return Reply.json(status, {"error": message}, headers)


def content_html(text: str) -> str:
    """Return a status text as Mastodon's plain-text formatter renders it (no linkifying)."""
    paragraphs = re.split(r"\n{2,}", text.strip("\n"))
    return "".join(
        f"<p>{html.escape(p, quote=False).replace(chr(10), '<br />')}</p>" for p in paragraphs
    )


class Mastodon(StandIn):
    """One Mastodon account: POST /api/v1/statuses, media, verify_credentials, read-back."""

    platform = "mastodon"
    post_routes = "statuses.create"

    def __init__(
        self,
        *,
        token: str = "test-access-token",
        username: str = "solidarity",
        account_id: str = "109000000000000001",
        max_characters: int = 500,
        max_media: int = 4,
        media_async: bool = True,
        media_processing_polls: int = 0,
        idempotency_ttl: float = 3600,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.token, self.username, self.account_id = token, username, account_id
        self.max_characters, self.max_media = max_characters, max_media
        self.media_async, self.media_processing_polls = media_async, media_processing_polls
        self.idempotency_ttl = idempotency_ttl
        self._statuses: dict[str, dict[str, Any]] = {}
        self._media: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[str, float]] = {}
        self._last_id = 0

    # -- helpers ---------------------------------------------------------------------

    def _unauthorized(self, req: Request) -> Reply | None:
        if req.bearer() != self.token:
            return error(401, "The access token is invalid")
        if self.auth_rejected:
            return error(401, "The access token was revoked")
        return None

    def _next_id(self) -> str:
        """Return a new snowflake-like id: milliseconds << 16, strictly increasing."""
        self._last_id = max(int(self.clock() * 1000) << 16, self._last_id + 1)
        return str(self._last_id)

    def _params(self, req: Request) -> dict[str, Any] | None:
        """Return the parameters as Rails reads them (query, then form or JSON body)."""
        params: dict[str, Any] = {k: v[-1] for k, v in req.query.items()}
        if req.content_type == "application/json":
            try:
                body = req.json()
            except ValueError:
                return None
            if not isinstance(body, dict):
                return None
            return {**params, **body}
        fields, _ = req.form()
        for key, values in fields.items():
            if key.endswith("[]"):
                params[key[:-2]] = values
            else:
                params[key] = values[-1]
        return params

    def account(self) -> dict[str, Any]:
        """Return the Account entity."""
        last = max((s["created_at"] for s in self._statuses.values()), default=None)
        return {
            "id": self.account_id,
            "username": self.username,
            "acct": self.username,
            "display_name": "Solidarity",
            "locked": False,
            "bot": True,
            "discoverable": True,
            "group": False,
            "created_at": "2024-01-01T00:00:00.000Z",
            "note": "",
            "url": f"{self.url}/@{self.username}",
            "uri": f"{self.url}/users/{self.username}",
            "avatar": f"{self.url}/avatars/original/missing.png",
            "avatar_static": f"{self.url}/avatars/original/missing.png",
            "header": f"{self.url}/headers/original/missing.png",
            "header_static": f"{self.url}/headers/original/missing.png",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": len(self._statuses),
            "last_status_at": last[:10] if last else None,
            "emojis": [],
            "fields": [],
        }

    # -- statuses ------------------------------------------------------------------------

    @route("POST", r"/api/v1/statuses", "statuses.create")
    def create_status(self, req: Request, _: re.Match[str]) -> Reply:
        if (denied := self._unauthorized(req)) is not None:
            return denied
        params = self._params(req)
        if params is None:
            return error(400, "Error occurred while parsing request parameters")
        reply_to = params.get("in_reply_to_id")
        if reply_to and str(reply_to) not in self._statuses:
            return error(404, "The post you are trying to reply to does not appear to exist.")
        key = req.header("idempotency-key")
        if key:
            known = self._idempotency.get(key)
            if known is not None and self.clock() - known[1] < self.idempotency_ttl:
                return Reply.json(200, self._statuses[known[0]])
        media_ids = [str(m) for m in params.get("media_ids") or []]
        if (invalid := self._check_media(media_ids)) is not None:
            return invalid
        text = "" if params.get("status") is None else str(params["status"])
        spoiler = str(params.get("spoiler_text") or "")
        if not text.strip() and not media_ids:
            return error(422, "Validation failed: Text can't be blank")
        visibility = params.get("visibility") or "public"
        if visibility not in VISIBILITIES:
            return error(400, f"'{visibility}' is not a valid visibility")
        if params.get("scheduled_at"):
            return error(422, "The stand-in does not schedule statuses (scheduled_at)")
        if mastodon_length(text) + graphemes(spoiler) > self.max_characters:
            return error(
                422, f"Validation failed: Text character limit of {self.max_characters} exceeded"
            )
        status = self._status(text, spoiler, str(visibility), params, media_ids)
        if key:
            self._idempotency[key] = (status["id"], self.clock())
        self.add_post({**status, "text": text, "idempotency_key": key})
        return Reply.json(200, status)

    def _check_media(self, media_ids: list[str]) -> Reply | None:
        if len(media_ids) > self.max_media:
            return error(422, f"Cannot attach more than {self.max_media} files")
        missing = [m for m in media_ids if m not in self._media or self._media[m]["status_id"]]
        if missing:
            return error(
                422, f"Media {', '.join(missing)} not found or already attached to another post"
            )
        media = [self._media[m] for m in media_ids]
        if len(media) > 1 and any(m["entity"]["type"] in ("video", "audio") for m in media):
            return error(422, "Cannot attach a video to a post that already contains images")
        if any(not m["processed"] for m in media):
            return error(
                422, "Cannot attach files that have not finished processing. Try again in a moment!"
            )
        return None

    def _status(
        self, text: str, spoiler: str, visibility: str, params: dict[str, Any], media_ids: list[str]
    ) -> dict[str, Any]:
        sid = self._next_id()
        reply_to = params.get("in_reply_to_id")
        for m in media_ids:
            self._media[m]["status_id"] = sid
        status = {
            "id": sid,
            "created_at": iso_ms(self.clock()),
            "in_reply_to_id": str(reply_to) if reply_to else None,
            "in_reply_to_account_id": self.account_id if reply_to else None,
            "sensitive": bool(spoiler) or str(params.get("sensitive")).lower() in ("true", "1"),
            "spoiler_text": spoiler,
            "visibility": visibility,
            "language": params.get("language") or None,
            "uri": f"{self.url}/users/{self.username}/statuses/{sid}",
            "url": f"{self.url}/@{self.username}/{sid}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "pinned": False,
            "content": content_html(text),
            "filtered": [],
            "reblog": None,
            "application": {"name": "solidarity", "website": None},
            "account": None,
            "media_attachments": [self._media[m]["entity"] for m in media_ids],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        self._statuses[sid] = status
        status["account"] = self.account()
        return status

    @route("GET", r"/api/v1/statuses/(?P<id>\d+)", "statuses.get")
    def get_status(self, req: Request, match: re.Match[str]) -> Reply:
        status = self._statuses.get(match["id"])
        if status is None:
            return error(404, "Record not found")
        return Reply.json(200, {**status, "account": self.account()})

    @route("GET", r"/api/v1/accounts/verify_credentials", "accounts.verify_credentials")
    def verify_credentials(self, req: Request, _: re.Match[str]) -> Reply:
        if (denied := self._unauthorized(req)) is not None:
            return denied
        source = {
            "privacy": "public",
            "sensitive": False,
            "language": None,
            "note": "",
            "fields": [],
        }
        return Reply.json(200, {**self.account(), "source": source})

    @route("GET", r"/api/v1/accounts/(?P<id>\d+)/statuses", "accounts.statuses")
    def account_statuses(self, req: Request, match: re.Match[str]) -> Reply:
        if match["id"] != self.account_id:
            return error(404, "Record not found")
        q = {k: v[-1] for k, v in req.query.items()}
        limit = max(1, min(int(q["limit"]) if q.get("limit", "").isdigit() else 20, 40))
        found = sorted(self._statuses.values(), key=lambda s: int(s["id"]), reverse=True)
        if q.get("exclude_replies") in ("true", "1"):
            found = [s for s in found if s["in_reply_to_id"] is None]
        bound = {k: int(q[k]) for k in ("max_id", "since_id", "min_id") if q.get(k, "").isdigit()}
        if "max_id" in bound:
            found = [s for s in found if int(s["id"]) < bound["max_id"]]
        if "since_id" in bound:
            found = [s for s in found if int(s["id"]) > bound["since_id"]]
        if "min_id" in bound:
            found = [s for s in found if int(s["id"]) > bound["min_id"]][-limit:]
        page = [{**s, "account": self.account()} for s in found[:limit]]
        headers = {}
        if page:
            base = f"{self.url}/api/v1/accounts/{self.account_id}/statuses"
            headers["Link"] = (
                f'<{base}?limit={limit}&max_id={page[-1]["id"]}>; rel="next", '
                f'<{base}?limit={limit}&min_id={page[0]["id"]}>; rel="prev"'
            )
        return Reply.json(200, page, headers)

    @route("GET", r"/api/v2/instance", "instance")
    def instance(self, req: Request, _: re.Match[str]) -> Reply:
        statuses = {
            "max_characters": self.max_characters,
            "max_media_attachments": self.max_media,
            "characters_reserved_per_url": 23,
        }
        media = {
            "supported_mime_types": [
                "image/jpeg",
                "image/png",
                "image/gif",
                "image/webp",
                "video/mp4",
            ],
            "description_limit": 1500,
            "image_size_limit": 16777216,
            "image_matrix_limit": 33177600,
            "video_size_limit": 103809024,
            "video_frame_rate_limit": 120,
            "video_matrix_limit": 8294400,
        }
        return Reply.json(
            200,
            {
                "domain": f"{self.host}:{self.port}",
                "title": "Mastodon stand-in",
                "version": "4.3.0",
                "source_url": "https://github.com/mastodon/mastodon",
                "description": "",
                "languages": ["en"],
                "configuration": {
                    "urls": {"streaming": f"ws://{self.host}:{self.port}"},
                    "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                    "statuses": statuses,
                    "media_attachments": media,
                    "polls": {
                        "max_options": 4,
                        "max_characters_per_option": 50,
                        "min_expiration": 300,
                        "max_expiration": 2629746,
                    },
                    "translation": {"enabled": False},
                },
                "registrations": {"enabled": False, "approval_required": False, "message": None},
                "contact": {"email": "", "account": None},
                "rules": [],
                "api_versions": {"mastodon": 2},
            },
        )

    # -- media ------------------------------------------------------------------------------

    @route("POST", r"/api/v2/media", "media.create")
    def create_media(self, req: Request, _: re.Match[str]) -> Reply:
        return self._upload(req, asynchronous=self.media_async)

    @route("POST", r"/api/v1/media", "media.create_v1")
    def create_media_v1(self, req: Request, _: re.Match[str]) -> Reply:
        return self._upload(req, asynchronous=False)

    def _upload(self, req: Request, *, asynchronous: bool) -> Reply:
        if (denied := self._unauthorized(req)) is not None:
            return denied
        fields, files = req.form()
        if not files.get("file"):
            return error(422, "Validation failed: File can't be blank")
        upload = files["file"][0]
        kind = MEDIA_KINDS.get(upload.content_type.split("/", 1)[0])
        if kind is None:
            return error(422, "Validation failed: File content type is invalid, File is invalid")
        description = (fields.get("description") or [""])[-1]
        if len(description) > 1500:
            return error(
                422, "Validation failed: Description is too long (maximum is 1500 characters)"
            )
        mid = self._next_id()
        path = f"{self.url}/system/media_attachments/files/{mid}"
        entity: dict[str, Any] = {
            "id": mid,
            "type": kind,
            "url": None if asynchronous else f"{path}/original/{upload.filename}",
            "preview_url": f"{path}/small/{upload.filename}",
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": {},
            "description": description or None,
            "blurhash": None,
        }
        self._media[mid] = {
            "entity": entity,
            "processed": not asynchronous,
            "polls_left": self.media_processing_polls,
            "status_id": None,
            "size": len(upload.data),
            "original": f"{path}/original/{upload.filename}",
        }
        return Reply.json(202 if asynchronous else 200, entity)

    @route("GET", r"/api/v1/media/(?P<id>\d+)", "media.get")
    def get_media(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._unauthorized(req)) is not None:
            return denied
        media = self._media.get(match["id"])
        if media is None:
            return error(404, "Record not found")
        if not media["processed"]:
            if media["polls_left"] > 0:
                media["polls_left"] -= 1
                return Reply.json(206, media["entity"])
            media["processed"] = True
            media["entity"]["url"] = media["original"]
        return Reply.json(200, media["entity"])

    # -- the platform's shapes ---------------------------------------------------------------

    def _rate_headers(self, remaining: int, reset: float) -> dict[str, str]:
        stamp = iso_ms(reset)[:-1] + "000Z"  # Ruby's iso8601(6): microseconds
        return {
            "X-RateLimit-Limit": str(LIMIT),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": stamp,
        }

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        return error(429, "Too many requests", self._rate_headers(0, self.clock() + retry_after))

    def server_error(self, req: Request, status: int) -> Reply:
        if status == 500:
            return error(500, "Internal server error")
        if status == 503:
            return error(
                503, "There was a temporary problem serving your request, please try again"
            )
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        return error(404, "Record not found")

    def method_not_allowed(self, req: Request) -> Reply:
        return error(404, "Record not found")

    def decorate(self, req: Request, route_name: str, reply: Reply) -> Reply:
        if reply.status != 429 and req.path.startswith("/api/"):
            now = self.clock()
            start = now - now % WINDOW
            used = sum(1 for r in self._requests if r.at >= start)
            for name, value in self._rate_headers(max(0, LIMIT - used), start + WINDOW).items():
                reply.headers.setdefault(name, value)
        return reply

    def extra_state(self) -> dict[str, Any]:
        return {
            "media": [{**m["entity"], "processed": m["processed"]} for m in self._media.values()],
            "idempotency_keys": sorted(self._idempotency),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "token": self.token,
            "account_id": self.account_id,
            "username": self.username,
        }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--token", default="test-access-token")
        parser.add_argument("--username", default="solidarity")
        parser.add_argument("--max-characters", type=int, default=500)
        parser.add_argument("--media-polls", type=int, default=0, help="206 answers before 200")
        parser.add_argument(
            "--sync-media", action="store_true", help="POST /api/v2/media answers 200"
        )

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Mastodon:
        """Build from parsed command-line options."""
        return cls(
            token=ns.token,
            username=ns.username,
            max_characters=ns.max_characters,
            media_processing_polls=ns.media_polls,
            media_async=not ns.sync_media,
            **common,
        )
