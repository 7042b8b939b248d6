"""Facebook Pages (Graph API): feed posts, unpublished photos, comments, read-back.

Modelled on Meta's published Graph API reference (developers.facebook.com/docs):
  - "Page Feed" (graph-api/reference/page/feed: POST /{page-id}/feed with message,
    link and attached_media[N]={"media_fbid": ...}; answers {"id": "PAGEID_POSTID"})
  - "Page Photos" (graph-api/reference/page/photos: POST /{page-id}/photos with
    source, published=false, alt_text_custom; answers {"id": ...})
  - "Object Comments" (graph-api/reference/object/comments: POST /{post-id}/comments)
  - "Page Published Posts" (graph-api/reference/page/published_posts) for read-back
  - "Error Handling" (graph-api/guides/error-handling: {"error": {"message", "type",
    "code", "error_subcode", "is_transient", "fbtrace_id"}}; 190 a bad token, 4/17/32/613
    throttling, 368 blocked, 506 duplicate, 1609005 a link error) and "Rate Limiting"
    (graph-api/overview/rate-limiting: X-Business-Use-Case-Usage with
    estimated_time_to_regain_access, in minutes).

The token may come as ``Authorization: Bearer`` or the ``access_token`` parameter.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request

_V = r"/v\d+\.\d+"
MESSAGE_LIMIT = 63206


def graph_error(
    status: int, message: str, code: int, *, kind: str = "OAuthException", **extra: Any
) -> Reply:
    """Return the Graph API's error shape."""
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AStandInTrace", **extra}
    return Reply.json(status, {"error": error})


class Facebook(StandIn):
    """One Page: feed posts, photos, comments, its published posts."""

    platform = "facebook"
    post_routes = "page.feed"

    def __init__(
        self,
        *,
        page_id: str = "1234567890",
        token: str = "standin-page-token",
        name: str = "Solidarity",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.page_id, self.token, self.name = page_id, token, name
        self._photos: dict[str, dict[str, Any]] = {}
        self._comments: list[dict[str, Any]] = []
        self._last = 10_000

    def _next(self) -> str:
        self._last += 1
        return str(self._last)

    def _fields(self, req: Request) -> dict[str, str]:
        if req.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            fields, _ = req.form()
        else:
            fields = dict(req.query)
        return {k: v[-1] for k, v in fields.items()}

    def _denied(self, req: Request) -> Reply | None:
        token = req.bearer() or self._fields(req).get("access_token")
        if token is None:
            return graph_error(
                400,
                "An active access token must be used to query information about the current user.",
                2500,
            )
        if token != self.token or self.auth_rejected:
            return graph_error(
                400,
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.",
                190,
                error_subcode=460,
            )
        return None

    def _page(self, match: re.Match[str]) -> Reply | None:
        if match["page"] != self.page_id:
            return graph_error(
                400,
                f"Unsupported post request. Object with ID '{match['page']}' does not exist",
                100,
                kind="GraphMethodException",
                error_subcode=33,
            )
        return None

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        reply = graph_error(
            400,
            "(#32) Page request limit reached",
            32,
            is_transient=False,
        )
        usage = {
            self.page_id: [
                {
                    "type": "pages",
                    "call_count": 100,
                    "total_cputime": 20,
                    "total_time": 20,
                    "estimated_time_to_regain_access": max(1, round(retry_after / 60)),
                }
            ]
        }
        reply.headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return reply

    @route("POST", _V + r"/(?P<page>\d+)/feed", "page.feed")
    def feed(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._page(match)) is not None:
            return denied
        fields = self._fields(req)
        message, link = fields.get("message", ""), fields.get("link")
        attached = [
            json.loads(v) for k, v in sorted(fields.items()) if k.startswith("attached_media[")
        ]
        if not message and not link and not attached:
            return graph_error(400, "(#100) Missing message or attachment", 100)
        if len(message) > MESSAGE_LIMIT:
            return graph_error(400, "(#100) Message is too long", 100)
        if any(p["message"] == message and message for p in self._posts):
            return graph_error(400, "(#506) Duplicate status message", 506)
        if link is not None and not link.startswith(("http://", "https://")):
            return graph_error(400, "There was a problem posting your link.", 1609005)
        photos = []
        for item in attached:
            photo = self._photos.get(str(item.get("media_fbid")))
            if photo is None or photo["published"]:
                return graph_error(400, "(#100) Invalid parameter", 100)
            photos.append(photo)
        post = {
            "id": f"{self.page_id}_{self._next()}",
            "message": message,
            "link": link,
            "photos": photos,
            "created_time": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(self.clock())),
        }
        self.add_post(post)
        return Reply.json(200, {"id": post["id"]})

    @route("POST", _V + r"/(?P<page>\d+)/photos", "page.photos")
    def photo(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._page(match)) is not None:
            return denied
        if req.content_type != "multipart/form-data":
            return graph_error(400, "(#324) Requires upload file", 324)
        fields, files = req.form()
        source = files.get("source") or []
        if not source or not source[0].data:
            return graph_error(400, "(#324) Requires upload file", 324)
        photo_id = self._next()
        published = (fields.get("published") or ["true"])[-1].lower() != "false"
        self._photos[photo_id] = {
            "id": photo_id,
            "size": len(source[0].data),
            "alt_text_custom": (fields.get("alt_text_custom") or [None])[-1],
            "published": published,
        }
        return Reply.json(200, {"id": photo_id})

    @route("POST", _V + r"/(?P<post>\d+_\d+)/comments", "post.comments")
    def comment(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if not any(p["id"] == match["post"] for p in self._posts):
            return graph_error(
                400,
                f"Unsupported post request. Object with ID '{match['post']}' does not exist",
                100,
                kind="GraphMethodException",
            )
        message = self._fields(req).get("message", "")
        if not message:
            return graph_error(400, "(#100) Missing message or attachment", 100)
        comment = {
            "id": f"{match['post']}_{self._next()}",
            "post": match["post"],
            "message": message,
        }
        self._comments.append(comment)
        return Reply.json(200, {"id": comment["id"]})

    @route("GET", _V + r"/(?P<page>\d+)", "page.get")
    def page(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._page(match)) is not None:
            return denied
        return Reply.json(200, {"id": self.page_id, "name": self.name})

    @route("GET", _V + r"/(?P<page>\d+)/published_posts", "page.published_posts")
    def published(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._page(match)) is not None:
            return denied
        limit = int((req.query.get("limit") or ["25"])[-1])
        data = [
            {"id": p["id"], "message": p["message"], "created_time": p["created_time"]}
            for p in reversed(self._posts)
        ][:limit]
        return Reply.json(200, {"data": data, "paging": {}})

    @property
    def comments(self) -> list[dict[str, Any]]:
        """Return every comment made, oldest first."""
        with self._lock:
            return [dict(c) for c in self._comments]

    def extra_state(self) -> dict[str, Any]:
        return {"photos": dict(self._photos), "comments": list(self._comments)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "page_id": self.page_id, "token": self.token}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--page-id", default="1234567890")
        parser.add_argument("--token", default="standin-page-token")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Facebook:
        """Build from parsed command-line options."""
        return cls(page_id=ns.page_id, token=ns.token, **common)
