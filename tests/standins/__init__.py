"""Stand-ins for the platforms' APIs, served on 127.0.0.1, for end-to-end tests.

Each is a class that serves one platform's API on a free port, checks what the real
service checks (answering with its status codes, error shapes and rate-limit headers),
records every request and every post it created, and takes faults:

    with Mastodon() as mastodon:                    # or .start() / .stop()
        run_solidarity(instance=mastodon.url, token=mastodon.token)
        mastodon.delay_next(5)                      # post created, answer 5 s late
        assert len(mastodon.posts) == 1             # nothing arrived twice

Run one as its own process, so it outlives a client that is killed and restarted:

    python -m tests.standins mastodon --port 0 --state state.json

prints the base URL as the first line of stdout (a JSON description second) and rewrites
state.json after every request. ``tests.standins.process.spawn`` does this from a test;
``tests.standins.fixtures`` has pytest fixtures for a conftest to import.
"""

from __future__ import annotations

from tests.standins.base import StandIn
from tests.standins.bluesky import Bluesky
from tests.standins.discord import Discord
from tests.standins.facebook import Facebook
from tests.standins.linkedin import LinkedIn
from tests.standins.mastodon import Mastodon
from tests.standins.matrix import Matrix
from tests.standins.telegram import Telegram
from tests.standins.threads import Threads
from tests.standins.webhook import Webhook, sign
from tests.standins.wire import Fault, Received, Reply, Request
from tests.standins.x import X

PLATFORMS: dict[str, type[StandIn]] = {
    cls.platform: cls for cls in (Mastodon, Bluesky, Telegram, Discord, Webhook)
}
PLATFORMS.update({cls.platform: cls for cls in (X, Facebook, Threads, LinkedIn)})
PLATFORMS[Matrix.platform] = Matrix

__all__ = [
    "PLATFORMS",
    "Bluesky",
    "Discord",
    "Fault",
    "Mastodon",
    "Matrix",
    "Received",
    "Reply",
    "Request",
    "StandIn",
    "Telegram",
    "Webhook",
    "sign",
]
