"""The platforms we post to, by the name used in ``accounts.yaml``."""

from __future__ import annotations

from scheduler.platforms.base import AccountSettings, Platform
from scheduler.platforms.bluesky import Bluesky
from scheduler.platforms.discord import Discord
from scheduler.platforms.facebook import Facebook
from scheduler.platforms.linkedin import LinkedIn
from scheduler.platforms.mastodon import Mastodon
from scheduler.platforms.matrix import Matrix
from scheduler.platforms.telegram import Telegram
from scheduler.platforms.threads import Threads
from scheduler.platforms.webhook import Webhook
from scheduler.platforms.x import X

PLATFORMS: dict[str, type[Platform]] = {
    p.name: p
    for p in (Mastodon, Bluesky, Telegram, Discord, Webhook, X, Facebook, Threads, LinkedIn, Matrix)
}

__all__ = ["PLATFORMS", "AccountSettings", "Platform"]
