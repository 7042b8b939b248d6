"""Per-account lanes: one post at a time per account, at its pace, over a few worker threads."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from scheduler.clockwork import Clockwork

log = logging.getLogger("scheduler.daemon")


class Lanes:
    """One queue per account over a few workers: one post at a time per account, paced.

    A lane whose account must wait for its pace hands the wait to the clockwork
    and frees its worker, so a slow account never holds up the others. With
    ``workers=0`` everything runs in the caller's thread (tests, ``run --once``).
    """

    def __init__(
        self,
        run: Callable[[str, str], None],
        clockwork: Clockwork,
        pace: Callable[[str], timedelta],
        workers: int,
        shared: Callable[[str, str, timedelta, datetime], datetime | None] | None = None,
    ) -> None:
        self._run = run
        self._clock = clockwork
        self._pace = pace
        self._shared = shared  # the turn across daemons (scheduler.paces); None: this process only
        self._workers = workers
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queues: dict[str, deque[str]] = {}
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._last: dict[str, datetime] = {}
        self._running = 0
        self._stopping = False
        self._ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending: deque[str] = deque()
        self._pumping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"lane-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, account: str, key: str) -> None:
        """Queue an occurrence key on its account's lane (once, however often it is put)."""
        with self._lock:
            if self._stopping or key in self._queued:
                return
            self._queues.setdefault(account, deque()).append(key)
            self._queued.add(key)
            if account in self._active:
                return
            self._active.add(account)
        self._wake(account)

    def queued(self) -> int:
        """Return how many keys wait in lanes (not counting the ones being sent)."""
        with self._lock:
            return len(self._queued)

    def idle(self) -> bool:
        """Say whether nothing is being sent and nothing waits in a lane."""
        with self._lock:
            return self._running == 0 and not self._queued

    def stop(self, timeout: float) -> bool:
        """Start nothing new; wait up to ``timeout`` s for what is being sent; True if it all ended."""
        with self._lock:
            self._stopping = True
            for _ in self._threads:
                self._ready.put(None)
            return self._changed.wait_for(lambda: self._running == 0, timeout)

    def _wake(self, account: str) -> None:
        if self._workers:
            self._ready.put(account)
            return
        self._pending.append(account)
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._pending:
                self._turn(self._pending.popleft())
        finally:
            self._pumping = False

    def _work(self) -> None:
        while True:
            account = self._ready.get()
            if account is None:
                return
            self._turn(account)

    def _turn(self, account: str) -> None:
        """Send the next post of one account if its pace allows, then yield to other lanes."""
        with self._lock:
            lane = self._queues.get(account)
            if self._stopping or not lane:
                self._active.discard(account)
                self._changed.notify_all()
                return
            now = self._clock.now()
            last, pace = self._last.get(account), self._pace(account)
            if last is not None and pace > timedelta(0) and last + pace > now:
                self._clock.call_at(last + pace, lambda: self._wake(account), f"pace:{account}")
                return
            key = lane.popleft()
            self._queued.discard(key)
            before, self._last[account] = last, now
            self._running += 1
        comes: datetime | None = None
        try:
            comes = self._ask_shared(account, key, pace, now)
            if comes is None:
                self._run(account, key)
        except Exception:  # a bug: log it, keep the lane and the row (the next start settles it)
            log.exception("delivering %s failed unexpectedly; its row stays in flight", key)
        finally:
            with self._lock:
                self._running -= 1
                self._changed.notify_all()
        if comes is not None:  # another daemon's turn, or the platform's limit
            self._wait(account, key, before, comes)
            return
        self._wake(account)  # to the back of the line: lanes take turns

    def _ask_shared(
        self, account: str, key: str, pace: timedelta, now: datetime
    ) -> datetime | None:
        """Ask when the account's turn across daemons comes; on any failure, now (fail open)."""
        if self._shared is None:
            return None
        try:
            return self._shared(account, key, pace, now)
        except Exception:  # a pace is a courtesy: never the reason a post is dropped
            log.exception("%s: the shared turn could not be asked; posting", account)
            return None

    def _wait(self, account: str, key: str, before: datetime | None, comes: datetime) -> None:
        """Put a key back at the head of its lane until the account's shared turn comes."""
        with self._lock:
            self._queues.setdefault(account, deque()).appendleft(key)
            self._queued.add(key)
            if before is None:
                self._last.pop(account, None)
            else:
                self._last[account] = before
        self._clock.call_at(comes, lambda: self._wake(account), f"pace:{account}")
