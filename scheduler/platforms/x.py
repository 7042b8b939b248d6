"""X (Twitter): API v2 posts with OAuth 1.0a user context."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class XSettings(AccountSettings):
    """An X account: the app's key and secret and the user's access token and secret."""

    api: Url = "https://api.x.com"
    api_key: Secret
    api_secret: Secret
    access_token: Secret
    access_token_secret: Secret


class X(Platform):
    """X counts twitter-text's weighted length: 280, URLs as 23, CJK and emoji as 2."""

    name = "x"
    label = "X"
    limit = 280
    counter = "x"
    secret_fields: ClassVar[tuple[str, ...]] = (
        "api_key",
        "api_secret",
        "access_token",
        "access_token_secret",
    )
    settings_model = XSettings
