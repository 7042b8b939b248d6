"""Synapse, the reference Matrix homeserver, on a free port of 127.0.0.1 for end-to-end tests.

Installed by ``.ci/install-synapse`` into its own virtual environment (so its pins never touch
ours). Each start writes a fresh config into a temporary folder: ``server_name: localhost``,
one HTTP listener on 127.0.0.1 (client API, admin API and media repository), SQLite, a
``registration_shared_secret``, no federation, no outside key servers, no stats, and every
``rc_*`` rate limit raised far above the defaults (0.2 messages/s would throttle the tests).

    with Synapse() as server:
        alice = server.register("alice")                # register_new_matrix_user, then login
        room = server.create_room(alice.access_token, alias="news")
        # room.room_id "!...:localhost", room.alias "#news:localhost"
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from tests.servers.common import (
    ServerFailed,
    ServerNotInstalled,
    ServerProcess,
    free_port,
    log_tail,
    servers_root,
    wait_until_ready,
)

INSTALL = ".ci/install-synapse"
SERVER_NAME = "localhost"
START_TIMEOUT = 60.0

# Far above anything a test does; the defaults (rc_message 0.2/s, burst 10) would throttle it.
_PLENTY = {"per_second": 10_000, "burst_count": 10_000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _PLENTY,
    "rc_registration": _PLENTY,
    "rc_registration_token_validity": _PLENTY,
    "rc_login": {"address": _PLENTY, "account": _PLENTY, "failed_attempts": _PLENTY},
    "rc_admin_redaction": _PLENTY,
    "rc_joins": {"local": _PLENTY, "remote": _PLENTY},
    "rc_joins_per_room": _PLENTY,
    "rc_3pid_validation": _PLENTY,
    "rc_invites": {"per_room": _PLENTY, "per_user": _PLENTY, "per_issuer": _PLENTY},
    "rc_third_party_invite": _PLENTY,
    "rc_media_create": _PLENTY,
    "rc_federation": {"window_size": 1000, "sleep_limit": 10_000, "reject_limit": 10_000},
    "rc_presence": {"per_user": _PLENTY},
    "rc_delayed_event_mgmt": _PLENTY,
    "rc_reports": _PLENTY,
    "rc_room_creation": _PLENTY,
    "rc_key_requests": _PLENTY,
}


@dataclass(frozen=True)
class MatrixUser:
    """A registered, logged-in user."""

    user_id: str
    password: str
    access_token: str
    device_id: str


@dataclass(frozen=True)
class MatrixRoom:
    """A room and, when one was asked for, its canonical alias."""

    room_id: str
    alias: str | None


def install_dir() -> Path:
    """Where .ci/install-synapse puts Synapse."""
    return servers_root() / "synapse"


def installed() -> Path:
    """The install's venv; raise ServerNotInstalled, naming the command, when it is missing."""
    venv = install_dir() / "venv"
    needed = [venv / "bin" / "python", venv / "bin" / "register_new_matrix_user"]
    if not all(path.exists() for path in needed) or not (install_dir() / ".installed").exists():
        raise ServerNotInstalled(
            f"Synapse is not installed at {install_dir()}: run `{INSTALL}` "
            "(about 25 s from PyPI; $SOLIDARITY_TEST_SERVERS moves it)"
        )
    return venv


def signing_key() -> str:
    """A fresh ed25519 signing key in Synapse's file format: 'ed25519 VERSION SEED'."""
    seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"ed25519 a_{secrets.token_hex(2)} {seed}\n"


def homeserver_config(data: Path, port: int, shared_secret: str) -> dict[str, Any]:
    """The homeserver.yaml for one run (JSON is YAML), with everything under ``data``."""
    return {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(data / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
        "log_config": str(data / "log.config"),
        "media_store_path": str(data / "media_store"),
        "signing_key_path": str(data / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "report_stats": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "max_upload_size": "50M",
        **RATE_LIMITS,
    }


def log_config(log: Path) -> dict[str, Any]:
    """Python logging config: warnings and worse to one file (INFO is too chatty for tests)."""
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "plain"}
        },
        "loggers": {"synapse.access": {"level": "WARNING"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


class Synapse(ServerProcess):
    """One Synapse process with its own config and data in a temporary folder."""

    def __init__(self) -> None:
        self.venv = installed()
        self.port = 0
        self.url = ""
        self.server_name = SERVER_NAME
        self.shared_secret = secrets.token_urlsafe(24)
        self.data: Path | None = None
        self.log = Path(os.devnull)
        self.start_seconds = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._users = 0

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Write a config, start Synapse and wait until its client API answers."""
        self.data = Path(tempfile.mkdtemp(prefix="synapse-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.data / "homeserver.log"
        config = self.data / "homeserver.yaml"
        config.write_text(
            json.dumps(homeserver_config(self.data, self.port, self.shared_secret), indent=1),
            encoding="utf-8",
        )
        (self.data / "log.config").write_text(json.dumps(log_config(self.log)), encoding="utf-8")
        (self.data / "signing.key").write_text(signing_key(), encoding="utf-8")
        (self.data / "media_store").mkdir()
        with (self.data / "stdout.log").open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(self.venv / "bin" / "python"),
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(config),
                ],
                cwd=self.data,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.start_seconds = wait_until_ready(
                "Synapse", self.process, self._ready, self.data / "stdout.log", timeout
            )
        except ServerFailed as failed:
            message = f"{failed}\nthe end of {self.log}:\n{log_tail(self.log)}"
            self.stop()
            raise ServerFailed(message) from None
        return self

    def _ready(self, client: httpx.Client) -> bool:
        return client.get(f"{self.url}/_matrix/client/versions").status_code == 200

    # --- users and rooms ----------------------------------------------------------------------

    def register(
        self, localpart: str | None = None, password: str | None = None, admin: bool = False
    ) -> MatrixUser:
        """Register a user with register_new_matrix_user (shared secret), then log in."""
        self._users += 1
        localpart = localpart or f"user{self._users}"
        password = password or secrets.token_urlsafe(12)
        done = subprocess.run(
            [
                str(self.venv / "bin" / "register_new_matrix_user"),
                "--user",
                localpart,
                f"--password={password}",  # as one argument: a password may start with "-"
                "--admin" if admin else "--no-admin",
                f"--shared-secret={self.shared_secret}",
                self.url,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise ServerFailed(
                f"register_new_matrix_user {localpart} failed ({done.returncode}): "
                f"{done.stdout.strip()} {done.stderr.strip()}"
            )
        return self.login(localpart, password)

    def login(self, localpart: str, password: str) -> MatrixUser:
        """Log in with a password; return the user with a fresh access token."""
        reply = httpx.post(
            f"{self.url}/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
            },
            timeout=30,
        )
        reply.raise_for_status()
        body = reply.json()
        return MatrixUser(body["user_id"], password, body["access_token"], body["device_id"])

    def create_room(
        self, access_token: str, alias: str | None = None, name: str | None = None
    ) -> MatrixRoom:
        """Create a public room; ``alias`` is the localpart of its alias (#alias:localhost)."""
        body: dict[str, Any] = {"preset": "public_chat", "visibility": "private"}
        if alias is not None:
            body["room_alias_name"] = alias
        if name is not None:
            body["name"] = name
        reply = httpx.post(
            f"{self.url}/_matrix/client/v3/createRoom",
            json=body,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=30,
        )
        reply.raise_for_status()
        room_id = reply.json()["room_id"]
        return MatrixRoom(room_id, f"#{alias}:{self.server_name}" if alias is not None else None)
