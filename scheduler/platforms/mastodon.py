"""Mastodon (and compatible servers): statuses through the instance's REST API."""

from __future__ import annotations

from typing import ClassVar, Literal

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class MastodonSettings(AccountSettings):
    """An account on a Mastodon instance."""

    instance: Url = "https://mastodon.social"
    access_token: Secret
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"

    url_key = "instance"


class Mastodon(Platform):
    """Mastodon counts graphemes, URLs as 23 and remote mentions by their local part."""

    name = "mastodon"
    label = "Mastodon"
    limit = 500
    counter = "mastodon"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = MastodonSettings
