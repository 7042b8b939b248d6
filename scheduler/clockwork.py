"""Time for the daemon: a clock and timers, real (APScheduler) or run by the caller (tests, --once)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)


class Clockwork(Protocol):
    """Tells the time and calls functions at times of that clock."""

    def now(self) -> datetime: ...

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        """Call ``fn`` at ``when``; a later call with the same key replaces this one."""

    def cancel(self, key: str) -> None:
        """Forget the call registered under ``key``, if any."""


class ManualClockwork:
    """Timers run by the caller, on an injected clock.

    Tests advance a fake clock (with a fake ``sleep``); ``run --once`` uses the
    real clock and really sleeps until the next timer, within a deadline.
    """

    def __init__(
        self, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._heap: list[tuple[datetime, int, Callable[[], None]]] = []
        self._keys: dict[str, int] = {}
        self._live: set[int] = set()
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self.clock()

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        with self._lock:
            seq = next(self._seq)
            if key is not None:
                self._live.discard(self._keys.get(key, -1))
                self._keys[key] = seq
            self._live.add(seq)
            heapq.heappush(self._heap, (when, seq, fn))

    def cancel(self, key: str) -> None:
        with self._lock:
            self._live.discard(self._keys.pop(key, -1))

    def next_at(self) -> datetime | None:
        """Return when the earliest pending call is due."""
        with self._lock:
            self._prune()
            return self._heap[0][0] if self._heap else None

    def _prune(self) -> None:
        """Drop cancelled or replaced calls from the top of the heap (the lock is held)."""
        while self._heap and self._heap[0][1] not in self._live:
            heapq.heappop(self._heap)

    def run_due(self) -> int:
        """Run every call due by now (including ones those calls add); return how many."""
        ran = 0
        while True:
            with self._lock:
                self._prune()
                if not self._heap or self._heap[0][0] > self.clock():
                    return ran
                _, seq, fn = heapq.heappop(self._heap)
                self._live.discard(seq)
            fn()
            ran += 1

    def run_until(self, deadline: datetime, stop: Callable[[], bool] = lambda: False) -> None:
        """Run calls as they fall due, sleeping between them, until none is due by ``deadline``."""
        while True:
            self.run_due()
            upcoming = self.next_at()
            if upcoming is None or upcoming > deadline or stop():
                return
            self.sleep(max(0.0, (upcoming - self.clock()).total_seconds()))


class SchedulerClockwork:
    """APScheduler 3 wakes the daemon: each call is a one-off job at a real-time instant.

    A call registered under a key while that key's job runs (a job that puts
    itself off: ``wake``, ``orphans``, a retry a minute on) must never be lost.
    APScheduler alone would lose it: a job due while its own id runs is skipped
    (``max_instances``) and, being a one-off, removed. So APScheduler may start
    any number of a key's jobs, and this class runs one at a time per key: a
    call due while its key's runs waits for it, then runs at once. Only the
    latest call registered under a key runs, and none once it is cancelled.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.clock = clock
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(4)},
            # late is never too late; a key's calls are one at a time (see _run), not here
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 2**31},
        )
        self._anonymous = itertools.count()
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._latest: dict[str, int] = {}  # each key's call to run (its number), if any
        self._running: set[str] = set()
        self._waiting: dict[str, tuple[int, Callable[[], None]]] = {}  # due while its key ran

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    def now(self) -> datetime:
        return self.clock()

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        key = key or f"call-{next(self._anonymous)}"
        with self._lock:
            seq = self._latest[key] = next(self._seq)
        # the injected clock may be offset from the real one (--now): keep the distance
        run_date = datetime.now(UTC) + (when - self.clock())
        self.scheduler.add_job(
            self._run,
            "date",
            args=(key, seq, fn),
            run_date=run_date,
            id=key,
            replace_existing=True,
        )

    def cancel(self, key: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        with self._lock:
            self._latest.pop(key, None)
            self._waiting.pop(key, None)
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(key)

    def _run(self, key: str, seq: int, fn: Callable[[], None]) -> None:
        """Run a key's call if it is still its latest; after the key's running one, if any."""
        with self._lock:
            if self._latest.get(key) != seq:
                return  # replaced or cancelled since
            if key in self._running:
                self._waiting[key] = (seq, fn)  # the running one runs it when it returns
                return
            del self._latest[key]
            self._running.add(key)
        while True:
            try:
                fn()
            except Exception:  # one timer's bug must not keep the key's next call waiting
                log.exception("the timer %s failed", key)
            with self._lock:
                seq, fn = self._waiting.pop(key, (-1, fn))
                if self._latest.get(key) != seq:
                    self._running.discard(key)
                    return
                del self._latest[key]
