"""Time for the daemon: a clock and timers, real (APScheduler) or run by the caller (tests, --once)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


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
    """APScheduler 3 wakes the daemon: each call is a one-off job at a real-time instant."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.clock = clock
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._anonymous = itertools.count()

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    def now(self) -> datetime:
        return self.clock()

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        # the injected clock may be offset from the real one (--now): keep the distance
        run_date = datetime.now(UTC) + (when - self.clock())
        self.scheduler.add_job(
            fn,
            "date",
            run_date=run_date,
            id=key or f"call-{next(self._anonymous)}",
            replace_existing=True,
        )

    def cancel(self, key: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(key)
