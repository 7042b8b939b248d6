"""What a daemon shares with the other daemons on its ledger: their orphans, and accounts' turns.

Several daemons on one PostgreSQL plan every campaign; whoever claims an
occurrence first sends it (the ledger's unique key). This is the rest: rows a
dead daemon left in flight are adopted by a live one (:mod:`scheduler.owners`),
and an account's pace and its platform's limits hold across daemons
(:mod:`scheduler.paces`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from scheduler.clockwork import Clockwork
from scheduler.errors import SolidarityError
from scheduler.lanes import Lanes
from scheduler.ledger import IN_FLIGHT, Entry, Ledger
from scheduler.owners import adopt_orphans
from scheduler.paces import SharedPace
from scheduler.silence import Silence

if TYPE_CHECKING:
    from scheduler.turns import Pending

log = logging.getLogger("scheduler.daemon")

AFFINITY = timedelta(seconds=5)  # how long an account another daemon is sending is left to it


class Sharing:
    """Adopt a gone daemon's rows; take an account's turn across daemons (a Daemon mixin)."""

    ledger: Ledger
    clockwork: Clockwork
    lanes: Lanes
    owner: str
    paces: SharedPace
    orphan_scan: timedelta | None
    silence: Silence
    _retry_at: Callable[[Entry], None]  # Turns': queue a row again at its next attempt
    _pending: dict[str, Pending]

    def _init_sharing(self) -> None:
        self._elsewhere: dict[str, datetime] = {}  # accounts another daemon is sending, until
        self._deferred: dict[str, list[str]] = {}  # their keys this daemon waits on meanwhile
        self._sharing_lock = threading.Lock()

    def _taken_elsewhere(self, account: str, row: Entry) -> None:
        """Another daemon claimed a key of this account: let it have the account's burst.

        Daemons sharing a ledger each plan every occurrence; two sending one account's
        burst would collide on every key (each collision a render and a failed claim).
        This daemon leaves the account's other keys to the other for ``AFFINITY``,
        then claims whichever are still without a row (its owner may have died).
        """
        if row.status == "sent" or row.status in IN_FLIGHT:
            self.silence.sent(account, row.sent_at or self.clockwork.now())  # it posts
        if self.ledger.engine.dialect.name != "postgresql":
            return
        with self._sharing_lock:
            if account in self._elsewhere:
                return
            until = self._elsewhere[account] = self.clockwork.now() + AFFINITY
        self.clockwork.call_at(until, lambda: self._recheck(account), f"elsewhere:{account}")

    def _defer(self, pending: Pending) -> bool:
        """Keep an occurrence of an account another daemon is sending until the recheck."""
        account = pending.claim.account
        with self._sharing_lock:
            if account not in self._elsewhere:
                return False
            self._pending[pending.claim.key] = pending
            self._deferred.setdefault(account, []).append(pending.claim.key)
            return True

    def _recheck(self, account: str) -> None:
        """Send the keys left to another daemon that it has not claimed; forget the others."""
        with self._sharing_lock:
            self._elsewhere.pop(account, None)
            keys = self._deferred.pop(account, [])
        try:
            taken = self.ledger.existing(keys) if keys else set()
        except SolidarityError as exc:
            log.warning(
                "%s: which keys another daemon claimed could not be read (%s)", account, exc
            )
            taken = set()
        for key in keys:
            if key in taken:  # the other daemon's row: its to settle
                self._pending.pop(key, None)
                self.silence.sent(account, self.clockwork.now())
            else:
                self.lanes.put(account, key)

    def adopt_orphans(self) -> None:
        """Take over the rows in flight of processes that are gone, and queue them.

        At start, then every ``orphan_scan`` (the long-running daemon): a daemon
        killed at any instant has its rows settled by another within a minute.
        """
        now = self.clockwork.now()
        try:
            for entry in adopt_orphans(self.ledger, self.owner, now):
                if entry.next_attempt_at is not None and entry.next_attempt_at > now:
                    self._retry_at(entry)
                else:
                    self.lanes.put(entry.account, entry.key)
        except SolidarityError as exc:
            log.error("looking for rows of stopped processes failed: %s", exc)
        except Exception:  # a bug, or the database's own error: never stop looking
            log.exception("looking for rows of stopped processes failed unexpectedly")
        finally:
            if self.orphan_scan is not None:
                self.clockwork.call_at(now + self.orphan_scan, self.adopt_orphans, "orphans")

    def _shared_turn(
        self, account: str, key: str, pace: timedelta, now: datetime
    ) -> datetime | None:
        """Say when the account's turn across daemons comes (None: now) for the key about to go."""
        if pace > timedelta(0):  # a key another process already settled or holds takes no turn
            try:
                row = self.ledger.get(key)
            except SolidarityError:  # the turn is taken as if it had no row: the claim decides
                row = None
            if row is not None and (row.status not in IN_FLIGHT or row.owner != self.owner):
                return None
        return self.paces.turn(account, pace, now)
