"""What the real servers share: where they are installed, free ports, readiness, shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = Path("/opt/solidarity-test-servers")


class ServerNotInstalled(RuntimeError):
    """The server's install is not there; the message names the command that installs it."""


class ServerFailed(RuntimeError):
    """The server did not start, or stopped; the message carries the end of its log."""


def servers_root() -> Path:
    """Where .ci/install-* put the servers: $SOLIDARITY_TEST_SERVERS or the default."""
    return Path(os.environ.get("SOLIDARITY_TEST_SERVERS") or DEFAULT_ROOT)


def in_ci() -> bool:
    """True under CI (CI=true), where a missing server is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip (outside CI) or fail (in CI) the current test because a server is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the real-server tests must run)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_until_ready(
    name: str,
    process: subprocess.Popen[bytes],
    ready: Callable[[httpx.Client], bool],
    log: Path,
    timeout: float,
) -> float:
    """Poll ``ready`` until it holds; return the seconds it took. Raise ServerFailed on exit or timeout."""
    started = time.monotonic()
    deadline = started + timeout
    with httpx.Client(timeout=2) as client:
        while True:
            if process.poll() is not None:
                raise ServerFailed(
                    f"{name} exited with status {process.returncode} while starting; "
                    f"the end of {log}:\n{log_tail(log)}"
                )
            try:
                if ready(client):
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                stop(process)
                raise ServerFailed(
                    f"{name} was not ready after {timeout:.0f} s; the end of {log}:\n{log_tail(log)}"
                )
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> int:
    """Stop a server started in its own session: SIGTERM, then SIGKILL; return its status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class ServerProcess:
    """A test server run as its own process, with a throwaway data folder.

    A subclass starts it (``start`` sets ``process`` and ``data``); stopping and
    the ``with`` form are the same for every server.
    """

    process: subprocess.Popen[bytes] | None = None
    data: Path | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process and remove its data."""
        if self.process is not None:
            stop(self.process)
            self.process = None
        if self.data is not None:
            shutil.rmtree(self.data, ignore_errors=True)
            self.data = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
