"""Threads (Meta): posts through the Threads API."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class ThreadsSettings(AccountSettings):
    """A Threads user id and its access token."""

    api: Url = "https://graph.threads.net"
    user_id: str | int
    access_token: Secret


class Threads(Platform):
    """Threads allows 500 characters per post."""

    name = "threads"
    label = "Threads"
    limit = 500
    counter = "graphemes"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = ThreadsSettings
