"""Turns on an account shared by every daemon on one ledger: its pace and its platform's limits.

Each daemon paces its own lanes in memory (:mod:`scheduler.lanes`); this makes
the same hold across daemons. An account with a ``pace`` takes its turn with one
conditional update of its ``paces`` row (``next_at`` moves on only if it had
come), so three daemons do not post to one account three times as fast. A limit
a platform declares (``Retry-After`` or a reset header on a 429, a login limit)
is written there too, and every daemon's lane for that account waits it out. The
limits in force are read at most every half second, in one query, so an account
without a pace costs no query per post. These times are kept in the ledger's shared
clock (``Ledger.shared_time``: the database server's on PostgreSQL), so daemons
whose clocks differ a little still agree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from scheduler.ledger import PACES, Ledger

log = logging.getLogger("scheduler.daemon")

TTL = 0.5  # seconds the limits in force are kept before they are read again


class SharedPace:
    """Ask the ledger whose turn it is on an account, across every daemon on it."""

    def __init__(
        self,
        ledger: Ledger,
        owner: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.owner = owner
        self.monotonic = monotonic
        self._limits: dict[str, datetime] = {}  # account: until, in this process's clock
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def turn(self, account: str, pace: timedelta, now: datetime) -> datetime | None:
        """Take the account's turn (None: post now), or return when its turn comes.

        Fails open on a ledger error: the row's own claim still keeps each post
        to one send, and a pace is a courtesy, never a reason to drop a post.
        """
        try:
            limited = self._limits_in_force(now).get(account)
            if limited is not None and limited > now:
                return limited
            if pace <= timedelta(0):
                return None
            return self._take(account, pace, now)
        except SQLAlchemyError as exc:
            log.warning("%s: the shared pace could not be read (%s); posting", account, exc)
            return None

    def limit(self, account: str, until: datetime, why: str) -> None:
        """Make every daemon wait until ``until`` before its next post on the account."""
        c = PACES.c
        try:
            with self.ledger.engine.begin() as connection:
                ends = self.ledger.shared_time(until)
                moved = connection.execute(
                    update(PACES)
                    .where(c.account == account, c.next_at < ends)
                    .values(next_at=ends, owner=self.owner, why=why[:500])
                ).rowcount
                if not moved:
                    _insert_if_new(connection, account, ends, self.owner, why[:500])
        except SQLAlchemyError as exc:
            log.warning("%s: the platform's limit could not be shared (%s)", account, exc)
            return
        with self._lock:
            if self._limits.get(account, until) <= until:
                self._limits[account] = until

    def _take(self, account: str, pace: timedelta, now: datetime) -> datetime | None:
        c = PACES.c
        with self.ledger.engine.begin() as connection:
            start = self.ledger.shared_time(now)
            taken = connection.execute(
                update(PACES)
                .where(c.account == account, c.next_at <= start)
                .values(next_at=start + pace, owner=self.owner, why=None)
            ).rowcount
            if taken or _insert_if_new(connection, account, start + pace, self.owner, None):
                return None
            found: datetime | None = connection.execute(
                select(c.next_at).where(c.account == account)
            ).scalar()
        if found is None or found <= start:  # moved on meanwhile: ask again in a moment
            return now + timedelta(milliseconds=50)
        return now + (found - start)

    def _limits_in_force(self, now: datetime) -> dict[str, datetime]:
        with self._lock:
            fresh = self._read_at is not None and self.monotonic() - self._read_at < TTL
            if fresh:
                return self._limits
            c = PACES.c
            with self.ledger.engine.connect() as connection:
                start = self.ledger.shared_time(now)
                rows = connection.execute(select(c.account, c.next_at).where(c.next_at > start))
                self._limits = {account: now + (at - start) for account, at in rows}
            self._read_at = self.monotonic()
            return self._limits


def _insert_if_new(
    connection: Connection, account: str, at: datetime, owner: str, why: str | None
) -> bool:
    """Insert an account's first row; False if another daemon inserted it first."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(PACES)
        .values(account=account, next_at=at, owner=owner, why=why)
        .on_conflict_do_nothing(index_elements=[PACES.c.account])
        .returning(PACES.c.account)
    )
    return connection.execute(statement).first() is not None  # no row back: it was there
