"""Telegram: the Bot API for one bot and the chats it may post to.

Checks what the Bot API checks: the token in the path (401 Unauthorized), the chat
(400 "Bad Request: chat not found"), parse_mode=HTML as tdlib parses it (400 "Bad
Request: can't parse entities: ..."), the text after parsing (1-4096 code points) and a
caption (at most 1024). Answers {"ok": true, "result": ...} or {"ok": false,
"error_code": ..., "description": ...} with the same HTTP status; a 429 has
parameters.retry_after and a Retry-After header, as the Bot API server sends.

Not mimicked: MarkdownV2 and Markdown are refused with a 400 saying so (a stand-in that
accepted them unparsed would hide bugs); URLs, mentions and hashtags are not detected
as entities; a bot cannot read a channel's history, so there is no read-back.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from tests.standins.base import StandIn, route
from tests.standins.telegram_html import HtmlError, parse_html
from tests.standins.wire import Reply, Request

TEXT_LIMIT, CAPTION_LIMIT = 4096, 1024


def failure(code: int, description: str, parameters: dict[str, Any] | None = None) -> Reply:
    """Return the Bot API's error shape, with the HTTP status equal to error_code."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply.json(code, body)


def bad_request(description: str) -> Reply:
    """Return 400 "Bad Request: ..."."""
    return failure(400, f"Bad Request: {description}")


def ok(result: Any) -> Reply:
    """Return {"ok": true, "result": result}."""
    return Reply.json(200, {"ok": True, "result": result})


class Telegram(StandIn):
    """A bot: getMe, getChat, sendMessage, sendPhoto."""

    platform = "telegram"
    post_routes = "send*"

    def __init__(
        self,
        *,
        token: str = "123456789:AAStandInTokenForSolidarityTests00",
        chats: Iterable[str | int] = ("@test",),
        bot_username: str = "solidarity_test_bot",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.token, self.bot_username = token, bot_username
        self._chats: list[dict[str, Any]] = [self._chat(c, i) for i, c in enumerate(chats)]
        self._last_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}

    @staticmethod
    def _chat(chat: str | int, index: int) -> dict[str, Any]:
        if isinstance(chat, str) and chat.startswith("@"):
            name = chat[1:]
            return {
                "id": -1001000000001 - index,
                "title": name,
                "username": name,
                "type": "channel",
            }
        number = int(chat)
        kind = "channel" if str(number).startswith("-100") else "group" if number < 0 else "private"
        return {"id": number, "title": f"Chat {number}", "type": kind}

    def find_chat(self, chat_id: Any) -> dict[str, Any] | None:
        """Return the chat of a chat_id ("@username" or a number), or None."""
        text = str(chat_id).strip()
        for chat in self._chats:
            if text.startswith("@") and text[1:].lower() == str(chat.get("username", "")).lower():
                return chat
            if text.lstrip("-").isdigit() and int(text) == chat["id"]:
                return chat
        return None

    def _params(self, req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (parameters, uploaded files) from the query, a form or a JSON body."""
        if req.content_type == "application/json":
            body = req.json()
            params = body if isinstance(body, dict) else {}
            return {**{k: v[-1] for k, v in req.query.items()}, **params}, {}
        fields, files = req.form()
        return {k: v[-1] for k, v in fields.items()}, {k: v[-1] for k, v in files.items()}

    @route("GET", r"/bot(?P<token>[^/]*)/(?P<method>[^/]*)", "{method}")
    def get_method(self, req: Request, match: re.Match[str]) -> Reply:
        return self._call(req, match)

    @route("POST", r"/bot(?P<token>[^/]*)/(?P<method>[^/]*)", "{method}")
    def post_method(self, req: Request, match: re.Match[str]) -> Reply:
        return self._call(req, match)

    def _call(self, req: Request, match: re.Match[str]) -> Reply:
        if match["token"] != self.token or self.auth_rejected:
            return failure(401, "Unauthorized")
        try:
            params, files = self._params(req)
        except ValueError:
            return bad_request("can't parse JSON object")
        method = {
            "getme": self._get_me,
            "getchat": self._get_chat,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
        }.get(match["method"].lower())
        if method is None:
            return failure(404, "Not Found")
        return method(params, files)

    def _get_me(self, params: dict[str, Any], files: dict[str, Any]) -> Reply:
        return ok(self.bot_user())

    def bot_user(self) -> dict[str, Any]:
        """Return the bot's User object."""
        return {
            "id": int(self.token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Solidarity Test Bot",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _get_chat(self, params: dict[str, Any], files: dict[str, Any]) -> Reply:
        if not str(params.get("chat_id", "")).strip():
            return bad_request("chat_id is empty")
        chat = self.find_chat(params["chat_id"])
        if chat is None:
            return bad_request("chat not found")
        return ok({**chat, "accent_color_id": 0, "max_reaction_count": 11})

    def _formatted(
        self, text: str, parse_mode: Any, limit: int, too_long: str
    ) -> tuple[str, list[dict[str, Any]]] | Reply:
        """Return (plain text, entities) of a text in a parse_mode, or the Bot API's error."""
        entities: list[dict[str, Any]] = []
        mode = str(parse_mode or "")
        if mode.lower() == "html":
            try:
                text, entities = parse_html(text)
            except HtmlError as exc:
                return bad_request(f"can't parse entities: {exc}")
        elif mode.lower() in ("markdown", "markdownv2"):
            return bad_request(f"the stand-in parses only parse_mode HTML, not {mode}")
        elif mode:
            return bad_request("unsupported parse_mode")
        if len(text) > limit:
            return bad_request(too_long)
        return text, entities

    def _target(self, params: dict[str, Any]) -> dict[str, Any] | Reply:
        if not str(params.get("chat_id", "")).strip():
            return bad_request("chat_id is empty")
        chat = self.find_chat(params["chat_id"])
        if chat is None:
            return bad_request("chat not found")
        reply_to = params.get("reply_to_message_id")
        reply = params.get("reply_parameters")
        if isinstance(reply, str):
            try:
                reply = json.loads(reply)
            except ValueError:
                return bad_request("can't parse reply parameters JSON object")
        if isinstance(reply, dict):
            reply_to = reply.get("message_id")
        if reply_to and (chat["id"], _int(reply_to)) not in self._messages:
            return bad_request("message to be replied not found")
        return chat

    def _message(self, chat: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        message_id = self._last_message_id.get(chat["id"], 0) + 1
        self._last_message_id[chat["id"]] = message_id
        message: dict[str, Any] = {"message_id": message_id}
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = self.bot_user()
        message |= {"chat": chat, "date": int(self.clock()), **fields}
        self._messages[(chat["id"], message_id)] = message
        self.add_post(message)
        return message

    def _send_message(self, params: dict[str, Any], files: dict[str, Any]) -> Reply:
        chat = self._target(params)
        if isinstance(chat, Reply):
            return chat
        formatted = self._formatted(
            str(params.get("text") or ""),
            params.get("parse_mode"),
            TEXT_LIMIT,
            "message is too long",
        )
        if isinstance(formatted, Reply):
            return formatted
        text, entities = formatted
        if not text.strip():
            return bad_request("message text is empty")
        fields: dict[str, Any] = {"text": text}
        if entities:
            fields["entities"] = entities
        return ok(self._message(chat, fields))

    def _send_photo(self, params: dict[str, Any], files: dict[str, Any]) -> Reply:
        chat = self._target(params)
        if isinstance(chat, Reply):
            return chat
        photo = files.get("photo") or params.get("photo")
        if not photo:
            return bad_request("there is no photo in the request")
        formatted = self._formatted(
            str(params.get("caption") or ""),
            params.get("parse_mode"),
            CAPTION_LIMIT,
            "message caption is too long",
        )
        if isinstance(formatted, Reply):
            return formatted
        caption, entities = formatted
        size = len(photo.data) if hasattr(photo, "data") else 0
        unique = f"AQAD{len(self._messages):04d}"
        fields: dict[str, Any] = {
            "photo": [
                {
                    "file_id": f"{unique}-s",
                    "file_unique_id": unique + "s",
                    "file_size": size // 8,
                    "width": 90,
                    "height": 90,
                },
                {
                    "file_id": f"{unique}-x",
                    "file_unique_id": unique + "x",
                    "file_size": size,
                    "width": 800,
                    "height": 800,
                },
            ]
        }
        if caption:
            fields["caption"] = caption
        if entities:
            fields["caption_entities"] = entities
        return ok(self._message(chat, fields))

    # -- the platform's shapes ------------------------------------------------------------

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        seconds = max(1, math.ceil(retry_after))
        reply = failure(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
        reply.headers["Retry-After"] = str(seconds)
        return reply

    def server_error(self, req: Request, status: int) -> Reply:
        if status == 500:
            return failure(500, "Internal Server Error")
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        return failure(404, "Not Found")

    def extra_state(self) -> dict[str, Any]:
        return {"chats": self._chats}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "token": self.token, "chats": self._chats}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--token", default="123456789:AAStandInTokenForSolidarityTests00")
        parser.add_argument(
            "--chat",
            action="append",
            help='a chat the bot may post to: "@name" or an id (repeatable)',
        )

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Telegram:
        """Build from parsed command-line options."""
        return cls(token=ns.token, chats=ns.chat or ["@test"], **common)


def _int(value: Any) -> int | None:
    """Return value as an integer, or None if it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
