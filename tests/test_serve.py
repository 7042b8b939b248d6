"""Serving: signals are answered at once, whatever a reload is doing."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.serve import serve


class StuckDaemon:
    """A daemon whose reload never returns (a file that takes forever to load)."""

    def __init__(self) -> None:
        self.project = type("P", (), {"campaigns": [], "accounts": {}})()
        self.next_wake: datetime | None = datetime.now(UTC)
        self.lanes = self
        self.ledger = self
        self.reloading = threading.Event()
        self.closed = False
        self.lease = None  # renews nothing: this daemon has no rows

    def start(self) -> None:
        pass

    def reload(self, why: str) -> bool:
        self.reloading.set()
        threading.Event().wait()  # forever
        return False

    def stop(self, timeout: float) -> bool:
        return True

    def queued(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


class Clockwork:
    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def test_sigterm_stops_the_daemon_while_a_reload_never_returns(tmp_path: Path) -> None:
    for name in ("campaigns", "templates"):
        (tmp_path / name).mkdir()
    (tmp_path / "accounts.yaml").write_text("{}\n")
    daemon: Any = StuckDaemon()

    def signals() -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        daemon.reloading.wait(10)  # checked below: SIGTERM goes anyway, so nothing hangs
        os.kill(os.getpid(), signal.SIGTERM)

    started = time.monotonic()
    threading.Timer(0.5, signals).start()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        serve(
            daemon,
            Clockwork(),  # type: ignore[arg-type]
            (tmp_path / "campaigns", tmp_path / "templates", tmp_path / "accounts.yaml"),
            stop_timeout=1,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert daemon.reloading.is_set() and daemon.closed
    assert time.monotonic() - started < 8
