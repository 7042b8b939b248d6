"""The platforms we post to, by the name used in ``accounts.yaml``.

Third-party platforms plug in through the entry point group
``solidarity.platforms`` (name = platform name, value = a Platform subclass);
they are looked up only when accounts.yaml names a platform we do not ship.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

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

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "solidarity.platforms"

PLATFORMS: dict[str, type[Platform]] = {
    p.name: p
    for p in (Mastodon, Bluesky, Telegram, Discord, Webhook, X, Facebook, Threads, LinkedIn, Matrix)
}


def find_platform(name: str) -> type[Platform] | None:
    """Return the platform of that name: built in, or from an installed plugin."""
    found = PLATFORMS.get(name)
    if found is not None:
        return found
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name != name:
            continue
        try:
            loaded = point.load()
        except Exception as exc:  # a broken plugin must not take the product down
            log.warning("platform plugin %s could not be loaded: %s", point.value, exc)
            return None
        if isinstance(loaded, type) and issubclass(loaded, Platform):
            PLATFORMS[name] = loaded
            return loaded
        log.warning("platform plugin %s is not a Platform subclass", point.value)
    return None


__all__ = ["ENTRY_POINT_GROUP", "PLATFORMS", "AccountSettings", "Platform", "find_platform"]
