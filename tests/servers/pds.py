"""The reference Bluesky PDS, with an in-memory PLC directory, on 127.0.0.1 for end-to-end tests.

Installed by ``.ci/install-pds`` (``@atproto/pds`` 0.5.x and ``@did-plc/server`` from npm, with
the Node 22 they need); ``tests/servers/pds.mjs`` starts both in one Node process, the way
``@atproto/dev-env`` does. Each start gets fresh ports, a temporary data folder and fresh
secrets: ``PDS_DEV_MODE=true``, ``PDS_HOSTNAME=localhost``, invites off, handles under
``.test``, the PLC URL on 127.0.0.1, no AppView, no crawlers, no rate limits. With no AppView,
read what was written through ``com.atproto.repo.*`` (getRecord, listRecords).

    with Pds() as server:
        alice = server.create_account("alice")           # handle alice.test
        app_password = server.create_app_password(alice)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import httpx

from tests.servers.common import (
    ServerFailed,
    ServerNotInstalled,
    ServerProcess,
    free_port,
    servers_root,
    wait_until_ready,
)

INSTALL = ".ci/install-pds"
SCRIPT = Path(__file__).with_name("pds.mjs")
HANDLE_DOMAIN = ".test"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class BlueskyAccount:
    """An account on the PDS, with the session createAccount gave it."""

    did: str
    handle: str
    email: str
    password: str
    access_jwt: str
    refresh_jwt: str


def install_dir() -> Path:
    """Where .ci/install-pds puts Node 22, the PDS and the PLC directory."""
    return servers_root() / "pds"


def installed() -> tuple[Path, Path]:
    """(node, app folder); raise ServerNotInstalled, naming the command, when missing."""
    node = install_dir() / "node" / "bin" / "node"
    app = install_dir() / "app"
    needed = [
        node,
        app / "node_modules" / "@atproto" / "pds",
        app / "node_modules" / "@did-plc" / "server",
        install_dir() / ".installed",
    ]
    if not all(path.exists() for path in needed):
        raise ServerNotInstalled(
            f"the Bluesky PDS is not installed at {install_dir()}: run `{INSTALL}` "
            "(about 2-3 minutes from npm; $SOLIDARITY_TEST_SERVERS moves it)"
        )
    return node, app


class Pds(ServerProcess):
    """One Node process serving a PLC directory and the PDS, with data in a temporary folder."""

    def __init__(self) -> None:
        self.node, self.app = installed()
        self.port = 0
        self.plc_port = 0
        self.url = ""
        self.plc_url = ""
        self.admin_password = secrets.token_urlsafe(16)
        self.data: Path | None = None
        self.log = Path(os.devnull)
        self.start_seconds = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._accounts = 0

    # --- life cycle ---------------------------------------------------------------------------

    def environment(self, data: Path) -> dict[str, str]:
        """The PDS_* settings for one run (see @atproto/pds's config/env.ts)."""
        return {
            "PATH": f"{self.node.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(data),
            "NODE_ENV": "development",
            "SOLIDARITY_PLC_PORT": str(self.plc_port),
            "PDS_PORT": str(self.port),
            "PDS_HOSTNAME": "localhost",
            "PDS_DEV_MODE": "true",
            "PDS_DID_PLC_URL": self.plc_url,
            "PDS_SERVICE_HANDLE_DOMAINS": HANDLE_DOMAIN,
            "PDS_INVITE_REQUIRED": "false",
            "PDS_RATE_LIMITS_ENABLED": "false",
            "PDS_DISABLE_SSRF_PROTECTION": "true",
            "PDS_DATA_DIRECTORY": str(data / "data"),
            "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
            "PDS_BLOBSTORE_DISK_TMP_LOCATION": str(data / "blobs-tmp"),
            "PDS_JWT_SECRET": secrets.token_hex(16),
            "PDS_ADMIN_PASSWORD": self.admin_password,
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
            "PDS_CRAWLERS": "",
            "LOG_ENABLED": "false",
        }

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start the PLC directory and the PDS; wait until the PDS answers its health check."""
        self.data = Path(tempfile.mkdtemp(prefix="pds-"))
        for folder in ("data", "blobs", "blobs-tmp"):
            (self.data / folder).mkdir()
        self.port, self.plc_port = free_port(), free_port()
        while self.plc_port == self.port:
            self.plc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plc_url = f"http://127.0.0.1:{self.plc_port}"
        self.log = self.data / "pds.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(self.node), str(SCRIPT)],
                cwd=self.app,
                env=self.environment(self.data),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.start_seconds = wait_until_ready(
                "the PDS", self.process, self._ready, self.log, timeout
            )
        except ServerFailed:
            self.stop()
            raise
        return self

    def _ready(self, client: httpx.Client) -> bool:
        if client.get(f"{self.url}/xrpc/_health").status_code != 200:
            return False
        return client.get(f"{self.plc_url}/_health").status_code == 200

    # --- accounts -----------------------------------------------------------------------------

    def create_account(
        self, name: str | None = None, password: str | None = None
    ) -> BlueskyAccount:
        """Create an account with handle NAME.test (its DID goes to the local PLC directory)."""
        self._accounts += 1
        name = name or f"user{self._accounts}"
        handle = name if name.endswith(HANDLE_DOMAIN) else f"{name}{HANDLE_DOMAIN}"
        password = password or secrets.token_urlsafe(12)
        email = f"{handle.split('.')[0]}@example.test"
        reply = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "email": email, "password": password},
            timeout=30,
        )
        if reply.status_code != 200:
            raise ServerFailed(f"createAccount {handle}: {reply.status_code} {reply.text}")
        body = reply.json()
        return BlueskyAccount(
            body["did"], body["handle"], email, password, body["accessJwt"], body["refreshJwt"]
        )

    def create_app_password(self, account: BlueskyAccount, name: str | None = None) -> str:
        """Create an app password for the account (as a person does in Settings); return it."""
        reply = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAppPassword",
            json={"name": name or f"solidarity-{secrets.token_hex(4)}"},
            headers={"Authorization": f"Bearer {account.access_jwt}"},
            timeout=30,
        )
        if reply.status_code != 200:
            raise ServerFailed(
                f"createAppPassword {account.handle}: {reply.status_code} {reply.text}"
            )
        return str(reply.json()["password"])
