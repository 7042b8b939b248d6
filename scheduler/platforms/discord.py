"""Discord: a channel webhook."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret


class DiscordSettings(AccountSettings):
    """A Discord webhook; its URL carries both the base URL and the secret."""

    webhook_url: Secret

    def base_url(self) -> str:
        return self.webhook_url.get_secret_value().split("/api/", 1)[0]


class Discord(Platform):
    """Discord counts code points: 2000 per message."""

    name = "discord"
    label = "Discord"
    limit = 2000
    counter = "codepoints"
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)
    settings_model = DiscordSettings
