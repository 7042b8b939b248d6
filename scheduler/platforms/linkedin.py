"""LinkedIn: posts by a person or an organization through the Posts API."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class LinkedInSettings(AccountSettings):
    """The author (``urn:li:person:…`` or ``urn:li:organization:…``) and a token."""

    api: Url = "https://api.linkedin.com"
    author: str
    access_token: Secret


class LinkedIn(Platform):
    """A LinkedIn post's commentary may hold 3,000 characters."""

    name = "linkedin"
    label = "LinkedIn"
    limit = 3000
    counter = "codepoints"
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = LinkedInSettings
