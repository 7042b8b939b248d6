"""Telegram: a bot posting to a channel or group through the Bot API."""

from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


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


class Telegram(Platform):
    """Telegram counts code points: 4096 per message, 1024 per caption."""

    name = "telegram"
    label = "Telegram"
    limit = 4096
    counter = "codepoints"
    media_caption_limit = 1024
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("bot_token",)
    settings_model = TelegramSettings
