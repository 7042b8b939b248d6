"""A generic webhook: a JSON POST of the rendered text and its metadata."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class WebhookSettings(AccountSettings):
    """Where to POST, and an optional secret to sign the body with (HMAC-SHA256)."""

    url: Url
    secret: Secret | None = None

    url_key = "url"


class Webhook(Platform):
    """A webhook has no length limit unless the account sets max_characters."""

    name = "webhook"
    label = "Webhook"
    limit = None
    counter = "codepoints"
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)
    settings_model = WebhookSettings
