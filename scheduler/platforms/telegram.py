"""Telegram: a bot posting to a channel or group through the Bot API.

The bot token is part of every URL path, so no URL of ours ever reaches an
error message (see platforms/http.py) and httpx's request log is kept quiet.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import field_validator

from scheduler.platforms import http as web
from scheduler.platforms.base import AccountSettings, Outgoing, Platform, Receipt, Secret, Url

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")


class TelegramSettings(AccountSettings):
    """A bot and the chat it posts to (``@channel`` or a numeric id)."""

    api: Url = "https://api.telegram.org"
    bot_token: Secret
    chat: str | int

    @field_validator("chat")
    @classmethod
    def _chat(cls, value: str | int) -> str | int:
        text = str(value)
        if not (text.startswith("@") or text.lstrip("-").isdigit()):
            raise ValueError(f"'{value}' is not a chat; write \"@channel_name\" or a numeric id")
        return value


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("description"), str):
        return str(body["description"])
    return web.short_body(response)


def _retry_after(response: httpx.Response) -> float | None:
    body = web.json_or_none(response)
    try:
        return float(body["parameters"]["retry_after"])
    except (TypeError, KeyError, ValueError):
        return None


def _result(body: Any) -> dict[str, Any]:
    """Return a success's result; a 2xx without ``ok`` and a result cannot be read."""
    if body.get("ok") is not True or not isinstance(body.get("result"), dict):
        raise ValueError("no ok result")
    return dict(body["result"])


def _message_id(body: Any) -> int:
    return int(web.text_of(_result(body)["message_id"]))


def message_url(chat: str | int, message_id: int) -> str | None:
    """Return the public link of a message in a channel or supergroup, where one exists."""
    text = str(chat)
    if text.startswith("@"):
        return f"https://t.me/{text[1:]}/{message_id}"
    if text.startswith("-100"):
        return f"https://t.me/c/{text[4:]}/{message_id}"
    return None


class Telegram(Platform):
    """Telegram counts code points: 4096 per message, 1024 per caption."""

    name = "telegram"
    label = "Telegram"
    limit = 4096
    counter = "codepoints"
    media_caption_limit = 1024
    has_threads = False
    media_on_parts = True  # consecutive messages: a part with media goes as a photo
    secret_fields: ClassVar[tuple[str, ...]] = ("bot_token",)
    settings_model = TelegramSettings

    settings: TelegramSettings

    def _call(
        self,
        method: str,
        read: Callable[[Any], T],
        *,
        idempotent: bool = False,
        **kwargs: Any,
    ) -> T:
        url = f"{self.settings.api}/bot{self.settings.bot_token.get_secret_value()}/{method}"
        response = web.send(
            self.name,
            lambda: self.http.post(url, **kwargs),
            idempotent=idempotent,
            reason=_reason,
            body_wait=_retry_after,
        )
        return web.parsed(self.name, response, read, idempotent=idempotent)

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Send each part as a message (as a photo with a caption when the part has media)."""
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        receipts: list[Receipt] = []
        for i, part in enumerate(out.parts):
            text = html.escape(part, quote=False)  # a '<' or '&' in a name must not break HTML
            if media[i]:
                photo, content = media[i][0]
                result = self._call(
                    "sendPhoto",
                    _message_id,
                    data={
                        "chat_id": str(self.settings.chat),
                        "caption": text,
                        "parse_mode": "HTML",
                    },
                    files={"photo": (photo.path.name, content, photo.mime)},
                )
            else:
                payload: dict[str, Any] = {
                    "chat_id": self.settings.chat,
                    "text": text,
                    "parse_mode": "HTML",
                    "link_preview_options": {"is_disabled": not out.link_preview},
                }
                result = self._call("sendMessage", _message_id, json=payload)
            message_id = int(result)
            receipts.append(Receipt(str(message_id), message_url(self.settings.chat, message_id)))
        return receipts

    def check(self) -> str:
        """Verify the token with getMe, and that the bot can see the chat with getChat."""
        me = self._call("getMe", _result, idempotent=True)
        chat = self._call("getChat", _result, idempotent=True, json={"chat_id": self.settings.chat})
        where = chat.get("title") or chat.get("username") or self.settings.chat
        return f"bot @{me.get('username')} in {where}"
