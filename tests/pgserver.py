"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temp folder, a free port.

``initdb`` and ``pg_ctl`` run as the ``postgres`` user when the tests run as root
(PostgreSQL refuses to run as root), else as whoever runs the tests. The server
listens on 127.0.0.1 only, on a free port, with its socket in the same throwaway
folder, and with fsync off: nothing it holds outlives the test session.

``.ci/install-postgres`` installs the binaries (``apt-get install -y postgresql``).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "postgres"  # the OS user that owns the data folder, and the database superuser
START_TIMEOUT = 30.0
SETTINGS = (
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
    "listen_addresses=127.0.0.1",
    "max_connections=300",  # every test opens a few ledgers, each with its own pool
)


class PgUnavailable(Exception):
    """Raised when no PostgreSQL server can be run here (binaries or user missing)."""


def _version(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_bindir() -> Path:
    """Return the folder of ``initdb`` and ``pg_ctl`` (the newest Debian version first)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for found in candidates:
        if os.access(Path(found, "initdb"), os.X_OK) and os.access(Path(found, "pg_ctl"), os.X_OK):
            return Path(found)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    raise PgUnavailable(
        "PostgreSQL's initdb and pg_ctl were not found (under /usr/lib/postgresql/*/bin or on "
        "PATH); `bash .ci/install-postgres` installs them (apt-get install -y postgresql)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL server in a temp folder; ``database()`` gives a new empty database."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401 - the driver the ledger's postgresql+psycopg URLs use
        except ImportError:
            raise PgUnavailable(
                "psycopg is not installed (pip install 'psycopg[binary]')"
            ) from None
        self.bindir = find_bindir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._user = pwd.getpwnam(USER)
            except KeyError:
                raise PgUnavailable(
                    f"the tests run as root and there is no {USER!r} user to run PostgreSQL as"
                ) from None
            if shutil.which("runuser") is None:
                raise PgUnavailable("the tests run as root and runuser is missing")
        self.root: Path | None = None
        self.port = 0
        self._names = itertools.count(1)

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        assert self.root is not None
        return self.root / "run"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run one of PostgreSQL's programs as the postgres user (root) or as ourselves."""
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", USER, "--", *command]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        env.pop("PGDATA", None)
        return subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )

    def _check(self, done: subprocess.CompletedProcess[str], what: str) -> None:
        if done.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(
                f"{what} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}"
            )

    def start(self) -> None:
        """Create the cluster in a new temp folder and start it; return once it accepts."""
        # /tmp: a folder the postgres user can reach (a root's TMPDIR may not be)
        base = "/tmp" if self.as_root and os.path.isdir("/tmp") else None
        self.root = Path(tempfile.mkdtemp(prefix="solidarity-pg-", dir=base))
        self.sockets.mkdir()
        if self.as_root:
            for path in (self.root, self.sockets):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self._check(done, "initdb")
        for attempt in range(3):  # the free port may be taken between finding and binding it
            self.port = _free_port()
            options = " ".join(
                [*(f"-c {s}" for s in SETTINGS), f"-p {self.port}", f"-k {self.sockets}"]
            )
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.logfile),
                "-o",
                options,
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
                timeout=START_TIMEOUT + 10,
            )
            if done.returncode == 0:
                break
            if attempt == 2:
                self._check(done, "pg_ctl start")
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def dsn(self, dbname: str) -> str:
        """Return a libpq connection string (psycopg) to a database of this server."""
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """Return the SQLAlchemy URL of a database of this server."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    def database(self, prefix: str = "t") -> str:
        """Create a new, empty database and return its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as connection:
            # FILE_COPY (15 and later): no WAL of the template's blocks; faster with fsync off
            strategy = " STRATEGY FILE_COPY" if connection.info.server_version >= 150000 else ""
            connection.execute(f'CREATE DATABASE "{name}"{strategy}')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


if __name__ == "__main__":  # a quick check by hand: python -m tests.pgserver
    server = PgServer()
    began = time.monotonic()
    server.start()
    print(f"started in {time.monotonic() - began:.2f}s on port {server.port}")
    began = time.monotonic()
    print(server.database(), f"created in {time.monotonic() - began:.3f}s")
    server.stop()
