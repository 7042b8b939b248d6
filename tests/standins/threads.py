"""Threads (Meta's Threads API): containers, publishing, status, permalinks, read-back.

Modelled on Meta's published Threads API reference (developers.facebook.com/docs/threads):
  - "Publishing" reference (POST /{threads-user-id}/threads: media_type TEXT, IMAGE or
    CAROUSEL, text, image_url, alt_text, is_carousel_item, children, reply_to_id,
    link_attachment; POST /{threads-user-id}/threads_publish with creation_id)
  - "Media container status" (GET /{container-id}?fields=status: IN_PROGRESS, FINISHED,
    PUBLISHED, ERROR, EXPIRED)
  - "Create Replies" (reply_to_id), "Post to Threads" (500 characters, emoji counted
    as their UTF-8 bytes; at most 5 links), "Retrieve Threads media" (GET
    /{threads-user-id}/threads?fields=id,text,timestamp,permalink and GET /{media-id})
  - Graph-style errors ({"error": {"message", "type", "code", "fbtrace_id"}}).

Publishing a container twice is refused (never a second post). Image URLs must be
public: here, any http(s) URL is "fetched" (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from scheduler.text import threads_length
from tests.standins.base import StandIn, route
from tests.standins.facebook import graph_error
from tests.standins.wire import Reply, Request

_V = r"/v1\.0"
TEXT_LIMIT, LINK_LIMIT = 500, 5


class Threads(StandIn):
    """One Threads profile: containers, publishing, its posts."""

    platform = "threads"
    post_routes = "threads.publish"

    def __init__(
        self,
        *,
        user_id: str = "1789000000",
        token: str = "standin-threads-token",
        username: str = "solidarity",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.user_id, self.token, self.username = user_id, token, username
        self._containers: dict[str, dict[str, Any]] = {}
        self._last = 17_000_000

    def _next(self) -> str:
        self._last += 1
        return str(self._last)

    def _fields(self, req: Request) -> dict[str, str]:
        fields, _ = req.form() if req.body else (dict(req.query), {})
        return {k: v[-1] for k, v in fields.items()}

    def _denied(self, req: Request) -> Reply | None:
        token = req.bearer() or self._fields(req).get("access_token")
        if token != self.token or self.auth_rejected:
            return graph_error(401, "Error validating access token: Session has expired", 190)
        return None

    def _user(self, match: re.Match[str]) -> Reply | None:
        if match["user"] not in (self.user_id, "me"):
            return graph_error(400, "Unsupported request: the user does not exist", 100)
        return None

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        return graph_error(429, "Application request limit reached", 4, is_transient=True)

    @route("POST", _V + r"/(?P<user>\w+)/threads", "threads.create")
    def create(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._user(match)) is not None:
            return denied
        f = self._fields(req)
        kind, text = f.get("media_type", ""), f.get("text", "")
        if kind not in ("TEXT", "IMAGE", "VIDEO", "CAROUSEL"):
            return graph_error(
                400, "Param media_type must be one of {TEXT, IMAGE, VIDEO, CAROUSEL}", 100
            )
        if kind == "TEXT" and not text:
            return graph_error(400, "Param text is required for TEXT posts", 100)
        if threads_length(text) > TEXT_LIMIT:
            return graph_error(400, "The post text is over the 500 character limit", 100)
        links = len(re.findall(r"https?://\S+", text))
        if (
            links + (1 if f.get("link_attachment") and f["link_attachment"] not in text else 0)
            > LINK_LIMIT
        ):
            return graph_error(400, "A post may contain at most 5 links", 100)
        if kind == "IMAGE" and not f.get("image_url", "").startswith(("http://", "https://")):
            return graph_error(
                400, "Param image_url is required for IMAGE posts and must be public", 100
            )
        children = [c for c in f.get("children", "").split(",") if c]
        if kind == "CAROUSEL" and (
            not children or any(c not in self._containers for c in children)
        ):
            return graph_error(400, "Param children must list carousel item containers", 100)
        reply_to = f.get("reply_to_id")
        if reply_to and not any(p["id"] == reply_to for p in self._posts):
            return graph_error(400, "The post you are replying to does not exist", 100)
        container = {
            "id": self._next(),
            "media_type": kind,
            "text": text,
            "image_url": f.get("image_url"),
            "alt_text": f.get("alt_text"),
            "reply_to_id": reply_to,
            "link_attachment": f.get("link_attachment"),
            "children": [self._containers[c] for c in children],
            "is_carousel_item": f.get("is_carousel_item") == "true",
            "status": "FINISHED",
        }
        self._containers[container["id"]] = container
        return Reply.json(200, {"id": container["id"]})

    @route("POST", _V + r"/(?P<user>\w+)/threads_publish", "threads.publish")
    def publish(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._user(match)) is not None:
            return denied
        container = self._containers.get(self._fields(req).get("creation_id", ""))
        if container is None or container["is_carousel_item"]:
            return graph_error(
                400, "The media container does not exist", 100, error_subcode=4279009
            )
        if container["status"] == "PUBLISHED":
            return graph_error(
                400, "The media container has already been published", 10, error_subcode=2207051
            )
        container["status"] = "PUBLISHED"
        post = {
            **{k: v for k, v in container.items() if k != "status"},
            "id": self._next(),
            "container": container["id"],
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(self.clock())),
        }
        post["permalink"] = f"https://www.threads.net/@{self.username}/post/S{post['id']}"
        self.add_post(post)
        return Reply.json(200, {"id": post["id"]})

    @route("GET", _V + r"/(?P<user>\w+)/threads", "threads.list")
    def list_posts(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req) or self._user(match)) is not None:
            return denied
        limit = int((req.query.get("limit") or ["25"])[-1])
        data = [
            {
                "id": p["id"],
                "text": p["text"],
                "timestamp": p["timestamp"],
                "permalink": p["permalink"],
            }
            for p in reversed(self._posts)
        ][:limit]
        return Reply.json(200, {"data": data, "paging": {}})

    @route("GET", _V + r"/(?P<id>\w+)", "object.get")
    def get(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if match["id"] in ("me", self.user_id):
            return Reply.json(200, {"id": self.user_id, "username": self.username})
        if (container := self._containers.get(match["id"])) is not None:
            return Reply.json(200, {"id": container["id"], "status": container["status"]})
        for post in self._posts:
            if post["id"] == match["id"]:
                return Reply.json(200, {"id": post["id"], "permalink": post["permalink"]})
        return graph_error(400, f"Object with ID '{match['id']}' does not exist", 100)

    def extra_state(self) -> dict[str, Any]:
        return {"containers": dict(self._containers)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "user_id": self.user_id, "token": self.token}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--user-id", default="1789000000")
        parser.add_argument("--token", default="standin-threads-token")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Threads:
        """Build from parsed command-line options."""
        return cls(user_id=ns.user_id, token=ns.token, **common)
