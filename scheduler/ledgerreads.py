"""Reading the send log: one row, rows at an instant, rows in flight, history.

:class:`scheduler.ledger.Ledger` reads through these; ``ledgerpages`` pages a
long history and ``statusrows`` reads what ``status`` shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from scheduler.errors import LedgerError, cause
from scheduler.ledgerschema import IN_FLIGHT, TABLE, Entry, entry_of


class Reads:
    """The ledger's reads (a mixin of Ledger, which has the engine)."""

    engine: Engine

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except OperationalError as exc:
            raise LedgerError(f"the ledger could not be read: {cause(exc)}") from None

    # -- reading ----------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """Return the row of an occurrence key, if any."""
        with self._read() as connection:
            row = connection.execute(select(TABLE).where(TABLE.c.key == key)).first()
        return entry_of(row) if row else None

    def existing(self, keys: Sequence[str]) -> set[str]:
        """Return which of these occurrence keys already have a row."""
        found: set[str] = set()
        with self._read() as connection:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                found.update(connection.scalars(select(TABLE.c.key).where(TABLE.c.key.in_(chunk))))
        return found

    def at(self, account: str, scheduled_for: datetime) -> list[Entry]:
        """Return the rows of one account at one instant (every campaign, post and person)."""
        c = TABLE.c
        query = select(TABLE).where(c.scheduled_for == scheduled_for, c.account == account)
        with self._read() as connection:
            return [entry_of(r) for r in connection.execute(query)]

    def in_flight(self) -> list[Entry]:
        """Return every row still claimed, sending or retrying, oldest first."""
        query = (
            select(TABLE)
            .where(TABLE.c.status.in_(list(IN_FLIGHT)))
            .order_by(TABLE.c.scheduled_for, TABLE.c.id)
        )
        with self._read() as connection:
            return [entry_of(r) for r in connection.execute(query)]

    def history(
        self,
        *,
        campaign: str | None = None,
        since: datetime | None = None,
        statuses: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Entry]:
        """Return rows, oldest scheduled first (newest ``limit`` rows when limited)."""
        c = TABLE.c
        query = select(TABLE)
        if campaign is not None:
            query = query.where(c.campaign == campaign)
        if since is not None:
            query = query.where(c.scheduled_for >= since)
        if statuses:
            query = query.where(c.status.in_(list(statuses)))
        query = query.order_by(c.scheduled_for.desc(), c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as connection:
            rows = [entry_of(r) for r in connection.execute(query)]
        return rows[::-1]
