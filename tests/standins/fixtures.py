"""Pytest fixtures for the stand-ins; a conftest imports the ones it wants:

    from tests.standins.fixtures import mastodon_standin, standin_process  # noqa: F401

Each in-process fixture yields a started stand-in and, at teardown, fails the test if
the stand-in crashed (a bug in the stand-in, answered as a 500).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.standins.base import StandIn
from tests.standins.bluesky import Bluesky
from tests.standins.discord import Discord
from tests.standins.lexicon import LEXICONS
from tests.standins.mastodon import Mastodon
from tests.standins.matrix import Matrix
from tests.standins.process import StandInProcess, spawn
from tests.standins.telegram import Telegram
from tests.standins.webhook import Webhook

S = TypeVar("S", bound=StandIn)


def serve(standin: S) -> Iterator[S]:
    """Yield a started stand-in; at the end stop it, failing if it crashed meanwhile."""
    with standin:
        yield standin
        assert not standin.errors, f"the {standin.platform} stand-in crashed:\n{standin.errors[0]}"


@pytest.fixture
def mastodon_standin() -> Iterator[Mastodon]:
    """Yield a started Mastodon stand-in (token "test-access-token")."""
    yield from serve(Mastodon())


@pytest.fixture
def bluesky_standin() -> Iterator[Bluesky]:
    """Yield a started Bluesky stand-in (test.example, "test-app-password")."""
    if not LEXICONS.is_dir():
        pytest.skip(
            f"atproto lexicons not found at {LEXICONS} (tests/conformance is part of the repository)"
        )
    yield from serve(Bluesky())


@pytest.fixture
def matrix_standin() -> Iterator[Matrix]:
    """Yield a started Matrix homeserver stand-in (its .token, .room_id and .alias)."""
    yield from serve(Matrix())


@pytest.fixture
def telegram_standin() -> Iterator[Telegram]:
    """Yield a started Telegram stand-in whose bot may post to "@test"."""
    yield from serve(Telegram())


@pytest.fixture
def discord_standin() -> Iterator[Discord]:
    """Yield a started Discord stand-in; its .webhook_url is what accounts.yaml takes."""
    yield from serve(Discord())


@pytest.fixture
def webhook_standin() -> Iterator[Webhook]:
    """Yield a started webhook receiver at /hook that checks no signature."""
    yield from serve(Webhook())


@pytest.fixture
def standin_process(tmp_path: Path) -> Iterator[Callable[..., StandInProcess]]:
    """Yield start(platform, *options) -> a stand-in process writing tmp_path/PLATFORM-N.json."""
    started: list[StandInProcess] = []

    def start(platform: str, *options: str) -> StandInProcess:
        process = spawn(platform, *options, state_file=tmp_path / f"{platform}-{len(started)}.json")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
