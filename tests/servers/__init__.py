"""Real, unmodified servers for end-to-end tests, started on free ports of 127.0.0.1.

- ``tests.servers.synapse``: Synapse, the reference Matrix homeserver (its own venv).
- ``tests.servers.pds``: the reference Bluesky PDS with an in-memory PLC directory (Node 22).

They are installed outside the repository by ``.ci/install-synapse`` and ``.ci/install-pds``
(under ``$SOLIDARITY_TEST_SERVERS``, by default /opt/solidarity-test-servers) and started per
test session by the fixtures in ``tests.servers.fixtures``:

    from tests.servers.fixtures import pds, synapse  # noqa: F401

Outside CI a test that needs a server that is not installed is skipped, naming the command that
installs it; in CI (``CI=true``) it fails instead.
"""
