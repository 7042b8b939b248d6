"""The platforms we post to, by the name used in ``accounts.yaml``.

Third-party platforms plug in through the entry point group
``solidarity.platforms`` (name = platform name, value = a Platform subclass);
they are looked up only when accounts.yaml names a platform we do not ship.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, MutableMapping
from importlib.metadata import entry_points

from scheduler.platforms.base import AccountSettings, Platform

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "solidarity.platforms"

_BUILT_IN = {  # name -> module:class, imported when an account first names the platform
    "mastodon": "mastodon:Mastodon",
    "bluesky": "bluesky:Bluesky",
    "telegram": "telegram:Telegram",
    "discord": "discord:Discord",
    "webhook": "webhook:Webhook",
    "x": "x:X",
    "facebook": "facebook:Facebook",
    "threads": "threads:Threads",
    "linkedin": "linkedin:LinkedIn",
    "matrix": "matrix:Matrix",
}


class _Registry(MutableMapping[str, type[Platform]]):
    """The platforms by name; a built-in adapter's module is imported at its first use.

    Ten adapters cost memory and start-up time that an operator with three
    platforms should not pay.
    """

    def __init__(self) -> None:
        self._names = dict(_BUILT_IN)
        self._loaded: dict[str, type[Platform]] = {}

    def __getitem__(self, name: str) -> type[Platform]:
        found = self._loaded.get(name)
        if found is None:
            module, _, attribute = self._names[name].partition(":")
            found = getattr(importlib.import_module(f"scheduler.platforms.{module}"), attribute)
            assert isinstance(found, type) and issubclass(found, Platform)
            self._loaded[name] = found
        return found

    def __setitem__(self, name: str, platform: type[Platform]) -> None:
        self._names.setdefault(name, "")
        self._loaded[name] = platform

    def __delitem__(self, name: str) -> None:
        del self._names[name]
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


PLATFORMS: MutableMapping[str, type[Platform]] = _Registry()


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
