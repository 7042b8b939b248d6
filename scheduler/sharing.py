"""What a daemon shares with the other daemons on its ledger: their orphans, and accounts' turns.

Several daemons on one PostgreSQL plan every campaign; whoever claims an
occurrence first sends it (the ledger's unique key). This is the rest: rows a
dead daemon left in flight are adopted by a live one (:mod:`scheduler.owners`),
and an account's pace and its platform's limits hold across daemons
(:mod:`scheduler.paces`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from scheduler.clockwork import Clockwork
from scheduler.errors import SolidarityError
from scheduler.lanes import Lanes
from scheduler.ledger import IN_FLIGHT, Entry, Ledger
from scheduler.owners import adopt_orphans
from scheduler.paces import SharedPace

log = logging.getLogger("scheduler.daemon")


class Sharing:
    """Adopt a gone daemon's rows; take an account's turn across daemons (a Daemon mixin)."""

    ledger: Ledger
    clockwork: Clockwork
    lanes: Lanes
    owner: str
    paces: SharedPace
    orphan_scan: timedelta | None
    _retry_at: Callable[[Entry], None]  # Turns': queue a row again at its next attempt

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
