"""What waits on a hold: until the hold is lifted, or until its grace or retry window ends.

Half of :class:`scheduler.turns.Turns`: an occurrence (or a row) a hold stops
waits here, keyed by its occurrence key; of a repeating series only the newest
waits. While anything waits, the ledger's holds are read every second, and a
change lets everything waiting be decided again.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import NamedTuple

from scheduler.clockwork import Clockwork
from scheduler.holdbook import HoldBook
from scheduler.lanes import Lanes
from scheduler.ledger import Claim, Entry, Ledger
from scheduler.locate import Located, repeats
from scheduler.project import Project

log = logging.getLogger("scheduler.daemon")

HOLD_POLL = timedelta(seconds=1)  # while something waits on a hold: look for its lifting


class Pending(NamedTuple):
    """A due occurrence waiting in this process, not yet claimed, with the files it came from."""

    claim: Claim
    project: Project
    located: Located


class HoldWaits:
    """Keep occurrences and rows waiting on holds; decide again when holds change."""

    ledger: Ledger
    clockwork: Clockwork
    lanes: Lanes
    book: HoldBook
    wait_for_holds: bool
    _busy_lock: threading.Lock
    _pending: dict[str, Pending]
    _held: dict[str, tuple[str, datetime]]  # waiting on a hold: account, until
    _series: dict[tuple[str, str, str, str | None], str]  # held first sends, by series
    left_held: list[tuple[str, str]]  # held, not waited for (--once): key, why
    _holds_seen: int  # the hold book's changes when what waits was last decided

    def _final(self, entry: Entry | None, duration: float = 0.0) -> None:
        raise NotImplementedError  # Turns records, logs and alerts a row that ended

    def _hold_wait(
        self, key: str, account: str, reason: str, until: datetime, pending: Pending | None = None
    ) -> None:
        """Keep an occurrence waiting on a hold until it is lifted, or until ``until``."""
        if not self.wait_for_holds:  # the next run decides again
            self._pending.pop(key, None)
            self.left_held.append((key, reason))
            log.info("%s %s: %s; not sent by this run", key, account, reason)
            return
        now = self.clockwork.now()
        with self._busy_lock:
            if pending is not None:  # of a series, only the newest waits
                occ = pending.located[2]
                series = (occ.campaign, occ.post, occ.account, occ.person)
                older = self._series.get(series)
                if older is not None and older != key and repeats(pending.located[1]):
                    self._supersede(older, occ.scheduled_for, now)
                self._series[series] = key
            first = not self._held
            self._held[key] = (account, until)
        self.clockwork.call_at(until, lambda: self._unhold(key), f"held:{key}")
        if first:
            self.clockwork.call_at(now + HOLD_POLL, self._poll_holds, "holds")

    def _supersede(self, key: str, newer: datetime, now: datetime) -> None:
        """End a held first send that a newer occurrence of its series replaces (lock held)."""
        pending = self._pending.pop(key, None)
        self._held.pop(key, None)
        self.clockwork.cancel(f"held:{key}")
        if pending is not None:
            reason = f"superseded by the occurrence of {newer:%Y-%m-%d %H:%M %Z}"
            self._final(self.ledger.record(pending.claim, "missed", reason, now))

    def _unhold(self, key: str) -> None:
        """Decide again about one held occurrence (its grace or retry window is over)."""
        with self._busy_lock:
            found = self._held.pop(key, None)
        if found is not None:
            self.lanes.put(found[0], key)

    def _poll_holds(self) -> None:
        """While something waits on a hold, read the ledger's holds; a lifted one lets it go.

        Any request may read a change first: what counts is whether the holds
        changed since what waits was last decided, not whether this read saw it.
        """
        self.book.refresh()
        if self.book.changes != self._holds_seen:
            self.recheck_held()
        with self._busy_lock:
            waiting = bool(self._held)
        if waiting:
            self.clockwork.call_at(self.clockwork.now() + HOLD_POLL, self._poll_holds, "holds")

    def recheck_held(self) -> None:
        """Decide again about everything waiting on a hold (holds changed)."""
        self._holds_seen = self.book.changes
        with self._busy_lock:
            held, self._held, self._series = self._held, {}, {}
        for key, (account, _until) in held.items():
            self.clockwork.cancel(f"held:{key}")
            self.lanes.put(account, key)
