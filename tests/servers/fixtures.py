"""Session-scoped pytest fixtures for the real servers; a test module imports the ones it needs:

    from tests.servers.fixtures import pds, synapse  # noqa: F401 - pytest fixtures

Each server starts once per test session, on free ports of 127.0.0.1, and stops at its end.
When a server is not installed, a test that needs it is skipped with the command that installs
it; in CI (CI=true) it fails instead, since there these tests must run. A server that is
installed but does not start is an error, with the end of its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.servers.common import ServerNotInstalled, unavailable
from tests.servers.pds import Pds
from tests.servers.synapse import Synapse

S = TypeVar("S")


def installed(server: Callable[[], S]) -> S:
    """The server, not yet started; skip or fail (in CI) when it is not installed."""
    try:
        return server()
    except ServerNotInstalled as missing:
        reason = str(missing)
    unavailable(reason)


@pytest.fixture(scope="session")
def synapse() -> Iterator[Synapse]:
    """Yield a started Synapse: .url, .register(localpart) -> user with token, .create_room()."""
    with installed(Synapse) as server:
        yield server


@pytest.fixture(scope="session")
def pds() -> Iterator[Pds]:
    """Yield a started PDS: .url, .create_account(name) -> NAME.test, .create_app_password()."""
    with installed(Pds) as server:
        yield server
