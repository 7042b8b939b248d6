"""Facebook: posts to a Page through the Graph API."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class FacebookSettings(AccountSettings):
    """A Facebook Page and a Page access token."""

    api: Url = "https://graph.facebook.com"
    page_id: str | int
    page_access_token: Secret


class Facebook(Platform):
    """A Page post may hold 63,206 characters."""

    name = "facebook"
    label = "Facebook"
    limit = 63206
    counter = "codepoints"
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("page_access_token",)
    settings_model = FacebookSettings
