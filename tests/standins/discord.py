"""Discord: one channel webhook, executed and read back.

Checks what Discord checks: the webhook id (404 "Unknown Webhook", code 10015), its
token (401 "Invalid Webhook Token", code 50027), an empty message (50006), content at
most 2000 code points, at most 10 embeds. With ?wait=true the answer is the message
object, else 204.

Discord answers by API version, and a webhook URL as Discord's settings page hands it
out has none (/api/webhooks/...), which means the old default, v6. Mimicked: on v6/v7
paths a form error is {"content": ["Must be 2000 or fewer in length."]} and a 429's
retry_after (body) and Retry-After (header) are in MILLISECONDS; on /api/v8+ the form
error is {"code": 50035, "message": "Invalid Form Body", "errors": {...}} and
retry_after is in seconds (a float; the header rounded up).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request

CONTENT_LIMIT, EMBED_LIMIT = 2000, 10
DISCORD_EPOCH_MS = 1420070400000
_WEBHOOK = r"/api(?:/v(?P<version>\d+))?/webhooks/(?P<id>\d+)/(?P<token>[^/]+)"


def error(status: int, message: str, code: int, headers: dict[str, str] | None = None) -> Reply:
    """Return Discord's error shape: {"message": ..., "code": ...}."""
    return Reply.json(status, {"message": message, "code": code}, headers)


class Discord(StandIn):
    """A channel webhook: execute (POST), get (GET), get a message it sent."""

    platform = "discord"
    post_routes = "webhook.execute"

    def __init__(
        self,
        *,
        webhook_id: str = "1234567890123456789",
        webhook_token: str = "StandInWebhookToken-solidarity_tests",
        channel_id: str = "1111111111111111111",
        guild_id: str = "2222222222222222222",
        name: str = "Solidarity",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.webhook_id, self.webhook_token = webhook_id, webhook_token
        self.channel_id, self.guild_id, self.name = channel_id, guild_id, name
        self._messages: dict[str, dict[str, Any]] = {}
        self._last_id = 0

    @property
    def webhook_url(self) -> str:
        """Return the webhook URL as Discord hands it out (no API version)."""
        return f"{self.url}/api/webhooks/{self.webhook_id}/{self.webhook_token}"

    def _denied(self, match: re.Match[str]) -> Reply | None:
        if match["id"] != self.webhook_id:
            return error(404, "Unknown Webhook", 10015)
        if match["token"] != self.webhook_token or self.auth_rejected:
            return error(401, "Invalid Webhook Token", 50027)
        return None

    def _next_id(self) -> str:
        ms = int(self.clock() * 1000) - DISCORD_EPOCH_MS
        self._last_id = max(ms << 22, self._last_id + 1)
        return str(self._last_id)

    @route("POST", _WEBHOOK, "webhook.execute")
    def execute(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(match)) is not None:
            return denied
        payload, files = self._payload(req)
        if payload is None:
            return error(400, "The request body contains invalid JSON.", 50109)
        content = payload.get("content")
        embeds = payload.get("embeds") or []
        if not content and not embeds and not files and not payload.get("components"):
            return error(400, "Cannot send an empty message", 50006)
        if isinstance(content, str) and len(content) > CONTENT_LIMIT:
            return self._form_error(
                match, "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if len(embeds) > EMBED_LIMIT:
            return self._form_error(
                match, "embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
            )
        message = self._message(payload, files)
        if req.query.get("wait", [""])[-1].lower() in ("true", "1"):
            return Reply.json(200, message)
        return Reply(204)

    def _payload(self, req: Request) -> tuple[dict[str, Any] | None, list[str]]:
        """Return the JSON payload (a body, or multipart payload_json) and the file names."""
        if req.content_type == "multipart/form-data":
            fields, files = req.form()
            names = [part.filename or "" for parts in files.values() for part in parts]
            raw = (fields.get("payload_json") or ["{}"])[-1]
            payload = {k: v[-1] for k, v in fields.items() if k != "payload_json"}
        elif req.content_type == "application/x-www-form-urlencoded":
            fields, _ = req.form()
            return {k: v[-1] for k, v in fields.items()}, []
        elif req.content_type == "application/json":
            raw, payload, names = req.body.decode("utf-8", "replace"), {}, []
        else:
            return {}, []  # Discord reads nothing: an empty message
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None, names
        return ({**payload, **parsed} if isinstance(parsed, dict) else None), names

    def _form_error(self, match: re.Match[str], field: str, code: str, message: str) -> Reply:
        if int(match["version"] or 6) < 8:
            return Reply.json(400, {field: [message]})
        errors = {field: {"_errors": [{"code": code, "message": message}]}}
        return Reply.json(400, {"code": 50035, "errors": errors, "message": "Invalid Form Body"})

    def _message(self, payload: dict[str, Any], files: list[str]) -> dict[str, Any]:
        mid = self._next_id()
        described = {  # alt text: each attachment's description, by its id (the file's index)
            a.get("id"): a.get("description")
            for a in payload.get("attachments") or []
            if isinstance(a, dict)
        }
        stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="microseconds")
        message = {
            "type": 0,
            "content": payload.get("content") or "",
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {"id": f"{mid}{i}", "filename": name, "description": described.get(i)}
                for i, name in enumerate(files)
            ],
            "embeds": payload.get("embeds") or [],
            "timestamp": stamp,
            "edited_timestamp": None,
            "flags": 0,
            "components": payload.get("components") or [],
            "id": mid,
            "channel_id": self.channel_id,
            "author": {
                "bot": True,
                "id": self.webhook_id,
                "username": payload.get("username") or self.name,
                "avatar": None,
                "discriminator": "0000",
            },
            "pinned": False,
            "mention_everyone": False,
            "tts": bool(payload.get("tts")),
            "webhook_id": self.webhook_id,
        }
        self._messages[mid] = message
        self.add_post(message)
        return message

    @route("GET", _WEBHOOK, "webhook.get")
    def get_webhook(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(match)) is not None:
            return denied
        return Reply.json(
            200,
            {
                "application_id": None,
                "avatar": None,
                "channel_id": self.channel_id,
                "guild_id": self.guild_id,
                "id": self.webhook_id,
                "name": self.name,
                "type": 1,
                "token": self.webhook_token,
                "url": self.webhook_url,
            },
        )

    @route("GET", _WEBHOOK + r"/messages/(?P<message>\d+)", "webhook.message")
    def get_message(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(match)) is not None:
            return denied
        message = self._messages.get(match["message"])
        if message is None:
            return error(404, "Unknown Message", 10008)
        return Reply.json(200, message)

    # -- the platform's shapes ------------------------------------------------------------

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        legacy = api_version_of(req.path) < 8
        wait: float = math.ceil(retry_after * 1000) if legacy else round(retry_after, 3)
        header = (
            str(math.ceil(retry_after * 1000)) if legacy else str(max(1, math.ceil(retry_after)))
        )
        body = {"message": "You are being rate limited.", "retry_after": wait, "global": False}
        return Reply.json(429, body, {"Retry-After": header, **self._rate_headers(0, retry_after)})

    def _rate_headers(self, remaining: int, reset_after: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{self.clock() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "5f2cb9fb0a4c1d9b4ec6a6d5d4a7a0b2",
            "X-RateLimit-Scope": "shared",
        }

    def decorate(self, req: Request, route_name: str, reply: Reply) -> Reply:
        if reply.status != 429 and route_name == "webhook.execute":
            for name, value in self._rate_headers(4, 2.0).items():
                reply.headers.setdefault(name, value)
        return reply

    def server_error(self, req: Request, status: int) -> Reply:
        if status == 500:
            return error(500, "500: Internal Server Error", 0)
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        return error(404, "404: Not Found", 0)

    def method_not_allowed(self, req: Request) -> Reply:
        return error(405, "405: Method Not Allowed", 0)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "webhook_url": self.webhook_url}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--webhook-id", default="1234567890123456789")
        parser.add_argument("--webhook-token", default="StandInWebhookToken-solidarity_tests")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Discord:
        """Build from parsed command-line options."""
        return cls(webhook_id=ns.webhook_id, webhook_token=ns.webhook_token, **common)


def api_version_of(path: str) -> int:
    """Return the API version of a request path; none means Discord's default, 6."""
    found = re.match(r"/api/v(\d+)/", path)
    return int(found[1]) if found else 6
