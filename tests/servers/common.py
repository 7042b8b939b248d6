"""What the real servers share: where they are installed, free ports, readiness, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

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
