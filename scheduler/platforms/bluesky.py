"""Bluesky: app.bsky.feed.post records through an atproto PDS."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class BlueskySettings(AccountSettings):
    """An account on Bluesky (or another atproto service), with an app password."""

    service: Url = "https://bsky.social"
    handle: str
    app_password: Secret

    url_key = "service"


class Bluesky(Platform):
    """Bluesky allows 300 graphemes and 3000 UTF-8 bytes per post."""

    name = "bluesky"
    label = "Bluesky"
    limit = 300
    counter = "graphemes"
    byte_limit = 3000
    secret_fields: ClassVar[tuple[str, ...]] = ("app_password",)
    settings_model = BlueskySettings
