"""Matrix: a homeserver with one user, joined to one room that has an alias.

Modelled on the Matrix client-server API specification (v1.13, spec.matrix.org/latest/
client-server-api/): "Standard error response" and "Rate limiting" (errors as
{"errcode", "error"}, M_LIMIT_EXCEEDED with ``retry_after_ms`` and a Retry-After header),
"Client authentication" (401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN), "GET
/_matrix/client/v3/account/whoami", "GET /_matrix/client/v3/directory/room/{roomAlias}",
"GET /_matrix/client/v3/joined_rooms", "PUT /_matrix/client/v3/rooms/{roomId}/send/
{eventType}/{txnId}" with "Transaction identifiers" (the same txnId from the same access
token returns the first event, and nothing new is sent), "GET /_matrix/client/v3/rooms/
{roomId}/messages" (``unsigned.transaction_id`` shown to the device that sent the event),
"Size limits" (an event is at most 65,536 bytes: 413 M_TOO_LARGE), "m.room.message msgtypes"
(m.text with ``format``/``formatted_body``, m.image with ``url`` and ``info``) and "Content
repository" (POST /_matrix/media/v3/upload -> content_uri; GET /_matrix/client/v1/media/
download/{serverName}/{mediaId}). Synapse's shapes where the spec leaves room: 404 and 405
are M_UNRECOGNIZED, a user not in the room is 403 M_FORBIDDEN.
"""

from __future__ import annotations

import argparse
import re
import secrets
from typing import Any
from urllib.parse import unquote

from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request

EVENT_MAX_BYTES = 65_536
_C = r"/_matrix/client/v3"


def error(status: int, errcode: str, message: str, **extra: Any) -> Reply:
    """Return the spec's standard error response."""
    return Reply.json(status, {"errcode": errcode, "error": message, **extra})


class Matrix(StandIn):
    """A homeserver: whoami, aliases, joined rooms, send (txnId), messages, media."""

    platform = "matrix"
    post_routes = "rooms.send"

    def __init__(
        self,
        *,
        server_name: str = "standin.test",
        user: str = "@solidarity:standin.test",
        token: str = "syt_standin_access_token",
        room_id: str = "!newsroom:standin.test",
        alias: str = "#free-the-press:standin.test",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.server_name, self.user, self.token = server_name, user, token
        self.room_id, self.alias = room_id, alias
        self.aliases = {alias: room_id}
        self.joined = {room_id}
        self._txns: dict[tuple[str, str, str], str] = {}  # (token, room, txn) -> event id
        self._events: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}  # media id -> (bytes, content type)

    def _denied(self, req: Request) -> Reply | None:
        token = req.bearer()
        if token is None:
            return error(401, "M_MISSING_TOKEN", "Missing access token")
        if token != self.token or self.auth_rejected:
            return error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False)
        return None

    @route("GET", _C + r"/account/whoami", "account.whoami")
    def whoami(self, req: Request, _: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        return Reply.json(200, {"user_id": self.user, "device_id": "STANDIN", "is_guest": False})

    @route("GET", _C + r"/directory/room/(?P<alias>[^/]+)", "directory.room")
    def directory(self, req: Request, match: re.Match[str]) -> Reply:
        alias = unquote(match["alias"])
        if alias not in self.aliases:
            return error(404, "M_NOT_FOUND", f"Room alias {alias} not found")
        return Reply.json(200, {"room_id": self.aliases[alias], "servers": [self.server_name]})

    @route("GET", _C + r"/joined_rooms", "joined_rooms")
    def joined_rooms(self, req: Request, _: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        return Reply.json(200, {"joined_rooms": sorted(self.joined)})

    @route("PUT", _C + r"/rooms/(?P<room>[^/]+)/send/(?P<type>[^/]+)/(?P<txn>[^/]+)", "rooms.send")
    def send(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        room, kind, txn = (unquote(match[k]) for k in ("room", "type", "txn"))
        if room not in self.joined:
            return error(403, "M_FORBIDDEN", f"User {self.user} not in room {room}")
        done = self._txns.get((self.token, room, txn))
        if done is not None:  # the same transaction again: the first event, nothing new
            return Reply.json(200, {"event_id": done})
        try:
            content = req.json()
        except ValueError:
            return error(400, "M_NOT_JSON", "Content not JSON.")
        if not isinstance(content, dict):
            return error(400, "M_BAD_JSON", "Content must be a JSON object.")
        if len(req.body) > EVENT_MAX_BYTES:
            return error(413, "M_TOO_LARGE", "event too large")
        if kind == "m.room.message" and (problem := self._check_message(content)):
            return error(400, "M_BAD_JSON", problem)
        event_id = f"${secrets.token_urlsafe(32)}"
        event = {
            "type": kind,
            "room_id": room,
            "sender": self.user,
            "content": content,
            "event_id": event_id,
            "origin_server_ts": int(self.clock() * 1000),
            "unsigned": {"transaction_id": txn},
        }
        self._txns[(self.token, room, txn)] = event_id
        self._events.append(event)
        self.add_post(event)
        return Reply.json(200, {"event_id": event_id})

    def _check_message(self, content: dict[str, Any]) -> str | None:
        if not isinstance(content.get("msgtype"), str) or not isinstance(content.get("body"), str):
            return "m.room.message needs a string msgtype and body"
        if "formatted_body" in content and content.get("format") != "org.matrix.custom.html":
            return "formatted_body without format org.matrix.custom.html"
        if content["msgtype"] == "m.image":
            url = content.get("url")
            media_id = str(url).removeprefix(f"mxc://{self.server_name}/")
            if not isinstance(url, str) or media_id not in self.media:
                return f"m.image url {url!r} is no media of this server"
            info = content.get("info")
            if info is not None and not isinstance(info, dict):
                return "info must be an object"
        return None

    @route("GET", _C + r"/rooms/(?P<room>[^/]+)/messages", "rooms.messages")
    def messages(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        room = unquote(match["room"])
        if room not in self.joined:
            return error(403, "M_FORBIDDEN", f"User {self.user} not in room {room}")
        events = [e for e in self._events if e["room_id"] == room]
        if req.query.get("dir", ["b"])[0] == "b":
            events.reverse()
        start = int(req.query.get("from", ["0"])[0] or 0)
        limit = min(int(req.query.get("limit", ["10"])[0]), 1000)
        page = events[start : start + limit]
        body: dict[str, Any] = {"chunk": page, "start": str(start)}
        if start + limit < len(events):
            body["end"] = str(start + limit)
        return Reply.json(200, body)

    @route("POST", r"/_matrix/media/v3/upload", "media.upload")
    def upload(self, req: Request, _: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        media_id = secrets.token_urlsafe(16)
        self.media[media_id] = (req.body, req.content_type or "application/octet-stream")
        return Reply.json(200, {"content_uri": f"mxc://{self.server_name}/{media_id}"})

    @route("GET", r"/_matrix/client/v1/media/download/(?P<server>[^/]+)/(?P<id>[^/]+)", "media.get")
    def download(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        found = self.media.get(match["id"]) if match["server"] == self.server_name else None
        if found is None:
            return error(404, "M_NOT_FOUND", "Not found")
        return Reply(200, found[0], {"Content-Type": found[1]})

    # -- the platform's shapes ------------------------------------------------------------

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        return Reply.json(
            429,
            {
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too Many Requests",
                "retry_after_ms": int(retry_after * 1000),
            },
            {"Retry-After": str(max(1, round(retry_after)))},
        )

    def server_error(self, req: Request, status: int) -> Reply:
        if status == 500:
            return error(500, "M_UNKNOWN", "Internal server error")
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        return error(404, "M_UNRECOGNIZED", "Unrecognized request")

    def method_not_allowed(self, req: Request) -> Reply:
        return error(405, "M_UNRECOGNIZED", "Unrecognized request")

    def extra_state(self) -> dict[str, Any]:
        return {"media": {k: len(v[0]) for k, v in self.media.items()}}

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "access_token": self.token,
            "room_id": self.room_id,
            "alias": self.alias,
            "user": self.user,
        }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--token", default="syt_standin_access_token")
        parser.add_argument("--alias", default="#free-the-press:standin.test")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Matrix:
        """Build from parsed command-line options."""
        return cls(token=ns.token, alias=ns.alias, **common)
