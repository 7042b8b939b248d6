"""Serving the daemon: the single-daemon lock, signals, and watching the user's files."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.errors import SolidarityError

if TYPE_CHECKING:
    from scheduler.clockwork import SchedulerClockwork
    from scheduler.daemon import Daemon

log = logging.getLogger("scheduler.daemon")

STOP_TIMEOUT = 10.0  # seconds in-flight requests get to finish on SIGTERM


@contextlib.contextmanager
def ledger_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock beside a SQLite ledger file, or refuse with who holds it.

    Several daemons are for PostgreSQL; on SQLite a second one is refused.
    """
    import fcntl

    from scheduler.config import sqlite_file

    found = sqlite_file(url)
    if found is None:
        yield
        return
    database = str(found)
    # the file's real path: a symlink, a relative path or a URI form reach the same lock
    path = Path(f"{database}.lock")
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SolidarityError(
                f"another solidarity daemon ({holder}) is running on the ledger {database}; "
                "stop it first (several daemons need a PostgreSQL ledger)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _watched(settings_paths: tuple[Path, Path, Path]) -> tuple[list[Path], list[Path], set[Path]]:
    """Return the folders to watch recursively, those to watch flat, and the loose files."""
    campaigns, templates, accounts = (p.resolve() for p in settings_paths)
    deep = [p for p in (campaigns, templates) if p.is_dir()]
    files = {accounts, Path(".env").resolve()}
    flat = sorted({f.parent for f in files if f.parent.is_dir()} - set(deep))
    return deep, flat, files


def _watch(
    deep: list[Path],
    flat: list[Path],
    files: set[Path],
    stop: threading.Event,
    changed: Callable[[str], None],
) -> list[threading.Thread]:
    """Watch the user's files (inotify through watchfiles); call ``changed`` with a path."""
    from watchfiles import watch

    def worth(path: str) -> bool:
        p = Path(path)
        if p in files:
            return True
        if p.name.startswith(".") or p.name.endswith("~"):
            return False
        return any(p.is_relative_to(d) for d in deep)

    def loop(paths: list[Path], recursive: bool) -> None:
        try:
            for changes in watch(
                *paths,
                stop_event=stop,
                recursive=recursive,
                debounce=400,
                watch_filter=lambda _change, path: worth(path),
                raise_interrupt=False,
            ):
                changed(sorted(path for _, path in changes)[0])
        except Exception as exc:  # the watcher died (a folder removed): SIGHUP still works
            log.warning("watching files stopped: %s; send SIGHUP to reload", exc)

    threads = []
    for paths, recursive in ((deep, True), (flat, False)):
        if paths:
            thread = threading.Thread(
                target=loop, args=(paths, recursive), name="watch", daemon=True
            )
            thread.start()
            threads.append(thread)
    return threads


class _Reloader:
    """Reload the files on a thread of its own, one load at a time, the latest request last.

    Requests that arrive during a load are folded into one more load after it.
    Stopping does not wait for a load in progress (the thread is a daemon thread).
    """

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._lock = threading.Condition()
        self._asked: list[str] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="reload", daemon=True)
        self._thread.start()

    def ask(self, why: str) -> None:
        with self._lock:
            self._asked.append(why)
            self._lock.notify()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._asked or self._stopping)
                if self._stopping:
                    return
                asked, self._asked = self._asked, []
            why = asked[-1] if len(asked) == 1 else f"{asked[0]} and more"
            try:
                self.daemon.reload(why)
            except Exception:  # a bug: report it, keep the version in force, keep running
                log.exception("reloading failed unexpectedly; the version in force stays")


def serve(
    daemon: Daemon,
    clockwork: SchedulerClockwork,
    paths: tuple[Path, Path, Path],
    stop_timeout: float = STOP_TIMEOUT,
) -> None:
    """Run until SIGTERM or SIGINT; reload on SIGHUP and when a watched file changes."""
    import signal

    wakeup = threading.Event()
    requests: deque[str] = deque()

    def ask(what: str) -> None:
        requests.append(what)
        wakeup.set()

    def on_signal(signum: int, _frame: object) -> None:
        ask("stop" if signum in (signal.SIGTERM, signal.SIGINT) else "SIGHUP")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    stop_watching = threading.Event()
    deep, flat, files = _watched(paths)
    _watch(deep, flat, files, stop_watching, lambda path: ask(f"{path} changed"))
    started = time.monotonic()
    daemon.start()
    clockwork.start()
    gc.freeze()  # what start-up built lives as long as the process: keep it out of collections
    log.info(
        "ready in %.2fs: %d campaign(s), %d account(s); next wake %s",
        time.monotonic() - started,
        len(daemon.project.campaigns),
        len(daemon.project.accounts),
        f"{daemon.next_wake:%Y-%m-%d %H:%M:%S %Z}" if daemon.next_wake else "-",
    )
    reloads = _Reloader(daemon)
    while True:
        # a short wait: a signal that reached another thread is handled by this one only
        # when it runs Python again, so SIGTERM is obeyed within half a second, always
        wakeup.wait(0.5)
        wakeup.clear()
        asked = []
        while requests:
            asked.append(requests.popleft())
        if "stop" in asked:
            break
        if asked:  # off this thread: a slow load never keeps a signal waiting
            reloads.ask(asked[-1] if len(asked) == 1 else f"{asked[0]} and more")
    reloads.stop()
    log.info("stopping: no new work; waiting up to %.0fs for requests in flight", stop_timeout)
    stop_watching.set()
    clockwork.shutdown()
    clean = daemon.lanes.stop(stop_timeout)
    if not clean:
        log.warning(
            "requests still in flight after %.0fs; the next start settles them", stop_timeout
        )
    if daemon.lease is not None:  # nothing on the wire: other daemons may take over at once
        daemon.lease.stop(release=clean)
    left = daemon.lanes.queued()
    if left:
        log.info("%d occurrence(s) not sent yet; the next start sends them within grace", left)
    daemon.ledger.close()
    log.info("stopped")
