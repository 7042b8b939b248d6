"""The send log: the single source of truth of what was sent, and where its SQL is written.

Beside it: ``ledgerschema`` (tables), ``ledgerwrites`` (statements), ``holds``, ``manual``.
One row per occurrence and account, unique on the occurrence's key. A row is
claimed (inserted) before any request goes out, so two processes can never both
send the same occurrence: the second insert finds the key taken. A row in flight
carries its owner and a lease the owner renews (:class:`scheduler.owners.Lease`);
every later change is conditional on the status and owner the changer read, so
two processes never both move a row forward (:class:`RowTakenError`). Times are
stored in UTC; commands show them in the campaign's zone. An error or a reason
is masked (:mod:`scheduler.redact`) before it is stored: a platform's words may
quote the request, and with it a token.

Statuses::

    claimed    taken by a process; no request has gone out yet
    sending    a request is on its way; a crash here leaves the outcome unknown
    retrying   a retryable error; next_attempt_at says when
    sent       the platform created the post (remote_id, remote_url)
    failed     a permanent error, in the platform's words
    missed     fell due while no daemon ran, past its grace
    skipped    paused, released or ended by the time it was due
    uncertain  the outcome is unknown; a human (or a read-back) must settle it
    held       due while a hold or a file problem stopped it, past its grace
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scheduler import ledgermigrate, redact
from scheduler.errors import LedgerError, RowTakenError, cause
from scheduler.ledgermigrate import SCHEMA_HEAD, sqlite_pragmas
from scheduler.ledgerreads import Reads
from scheduler.ledgerschema import (
    FINAL,
    IN_FLIGHT,
    PACES,
    TABLE,
    Base,
    Claim,
    Delivery,
    Entry,
    Status,
    UTCDateTime,
    entry_of,
)
from scheduler.ledgerwrites import (
    INCREMENT,
    LEASE,
    RETRY_PAUSES,
    TEXTS,
    Write,
    new_row,
    program_error,
    storable,
    transient,
)
from scheduler.redact import redact_optional

__all__ = [
    "FINAL",
    "IN_FLIGHT",
    "LEASE",
    "PACES",
    "SCHEMA_HEAD",
    "TABLE",
    "Base",
    "Claim",
    "Delivery",
    "Entry",
    "Ledger",
    "Status",
    "UTCDateTime",
    "entry_of",
]

log = logging.getLogger(__name__)


class Ledger(Reads):
    """The send log on one database (SQLite by default, any SQLAlchemy URL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # one writer per process, in turn: SQLite has one writer anyway (and its busy
        # handler sleeps up to 100 ms between tries), and updates that wait for the
        # lock are committed together (see _submit)
        self._writing = threading.Lock()
        self._writer: Connection | None = None
        self.skew = timedelta(0)  # this machine's clock minus the database server's (measured)
        self._queue: list[Write] = []  # updates waiting for the write lock (group commit)
        self._queue_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, apart: bool = False) -> Ledger:
        """Open (and migrate) the ledger at a SQLAlchemy URL; raise LedgerError with the cause.

        ``apart``: a migration, when one is needed, runs in a child process (the
        commands do this, so that the daemon never keeps Alembic in memory).
        """
        try:
            engine = create_engine(url, future=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", sqlite_pragmas)
            found = cls(engine)
            if migrate and apart:
                ledgermigrate.migrate_apart(engine, url)
            elif migrate:
                ledgermigrate.migrate(engine)
        except Exception as exc:
            # any cause (a driver not installed, a read-only file, Alembic's CommandError on
            # a schema newer than this version) is the user's to read, never a traceback
            raise LedgerError(
                f"cannot open the ledger {redact.masked_url(url)}: {cause(exc)}"
            ) from None
        return found

    def close(self) -> None:
        """Release the database connections."""
        with self._writing:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """Run one write transaction (one commit), raising LedgerError when it fails."""
        try:
            with self._writing, self._begin() as connection:
                yield connection
        except DBAPIError as exc:
            raise LedgerError(f"the ledger could not be written: {cause(exc)}") from None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """Begin a write transaction; the caller holds the write lock.

        On SQLite one connection does every write of this process, in turn: no
        pool checkout per write, and SQLite never has two writers to arbitrate.
        """
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as connection:
                yield connection
            return
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = self.engine.connect()
        with self._writer.begin():
            yield self._writer

    # -- claiming ---------------------------------------------------------

    def claim(
        self,
        claim: Claim,
        now: datetime,
        owner: str,
        status: Status = "claimed",
        reason: str | None = None,
    ) -> Entry | None:
        """Insert the occurrence's row; return None if any process has claimed it before."""
        row = new_row(claim, now, owner, status, reason, self.shared_time(now))
        return self._submit(Write(row, insert=True))

    def record(self, claim: Claim, status: Status, reason: str, now: datetime) -> Entry | None:
        """Record an occurrence that will not be sent (missed, skipped, held) with its reason."""
        return self.claim(claim, now, owner="", status=status, reason=reason)

    def claim_sending(
        self, claim: Claim, parts: Sequence[str], now: datetime, owner: str
    ) -> Entry | None:
        """Claim an occurrence right before its request goes out: one row, already ``sending``.

        The same as ``claim`` then ``sending``, in one write; None if any process
        has claimed the occurrence before (nothing must then be sent).
        """
        row = new_row(claim, now, owner, "sending", None, self.shared_time(now))
        row["attempts"] = 1
        row["parts"] = list(parts)
        return self._submit(Write(row, insert=True))

    # -- moving a row on (each conditional on the row as the caller read it) ------

    def sending(self, entry: Entry, parts: Sequence[str], now: datetime) -> Entry:
        """Mark that a request is about to go out with exactly these parts."""
        return self._set(entry, now, status="sending", parts=list(parts), attempts=INCREMENT)

    def sent(
        self, entry: Entry, remote_ids: Sequence[str], remote_url: str | None, now: datetime
    ) -> Entry:
        """Mark an occurrence sent, with the platform's id(s) and public URL."""
        return self._set(
            entry,
            now,
            status="sent",
            remote_id=remote_ids[0] if remote_ids else None,
            remote_ids=list(remote_ids),
            remote_url=remote_url,
            sent_at=now,
            error=None,
            next_attempt_at=None,
        )

    def checkpoint(self, entry: Entry, marks: Sequence[str], now: datetime) -> Entry:
        """Keep an adapter's marks in a row being sent, so that a retry resumes from them."""
        return self._set(entry, now, remote_ids=list(marks))

    def failed(self, entry: Entry, error: str, now: datetime) -> Entry:
        """Mark an occurrence failed for good, with the platform's reason."""
        return self._set(entry, now, status="failed", error=error, next_attempt_at=None)

    def retrying(self, entry: Entry, error: str, at: datetime, now: datetime) -> Entry:
        """Mark an occurrence to be tried again at ``at``."""
        return self._set(entry, now, status="retrying", error=error, next_attempt_at=at)

    def verify_later(self, entry: Entry, error: str, at: datetime, now: datetime) -> Entry:
        """Keep a row ``sending`` (it may have been created) and read it back at ``at``."""
        return self._set(entry, now, status="sending", error=error, next_attempt_at=at)

    def settle(self, entry: Entry, status: Status, reason: str, now: datetime) -> Entry:
        """End an unsent row as ``skipped``, ``missed`` or ``held`` (or ``failed``) with its reason."""
        values: dict[str, Any] = {"status": status, "next_attempt_at": None}
        values["error" if status == "failed" else "reason"] = reason
        return self._set(entry, now, **values)

    def uncertain(self, entry: Entry, error: str, now: datetime) -> Entry:
        """Mark an occurrence whose outcome is unknown; it is never sent again by itself."""
        return self._set(entry, now, status="uncertain", error=error, next_attempt_at=None)

    def adopt(self, entry: Entry, owner: str, now: datetime) -> Entry | None:
        """Take over a row whose owner is gone; None if another process moved it first."""
        try:  # its lease too must be as read: a renewal since means its owner lives
            return self._set(entry, now, lease_as_read=True, owner=owner)
        except RowTakenError:
            return None

    # -- leases -----------------------------------------------------------

    def renew(self, owner: str, now: datetime) -> int:
        """Extend the lease of every row this owner has in flight; return how many."""
        return self._leases(owner, now, LEASE)

    def release(self, owner: str, now: datetime) -> int:
        """End the leases of an owner that stops with nothing on the wire: others take over now."""
        return self._leases(owner, now, timedelta(0))

    def shared_time(self, local: datetime) -> datetime:
        """Return ``local`` in the clock the ledger's shared times are kept in (leases, turns).

        That is the database server's clock on PostgreSQL, which daemons on several
        machines share: this machine's clock corrected by its measured ``skew``.
        A SQLite ledger is one machine's: its clock as it is.
        """
        return local - self.skew

    def measure_skew(self, clock: Callable[[], datetime]) -> timedelta:
        """Measure how far ``clock`` is ahead of the database server's (PostgreSQL), and keep it.

        A daemon measures its own clock when it starts and at each lease renewal.
        """
        if self.engine.dialect.name != "postgresql":
            return self.skew
        with self._read() as connection:
            before = clock()
            found = connection.execute(select(func.timezone("UTC", func.clock_timestamp())))
            server: datetime = found.scalar_one().replace(tzinfo=UTC)
            after = clock()
        self.skew = before + (after - before) / 2 - server
        return self.skew

    def _leases(self, owner: str, now: datetime, length: timedelta) -> int:
        c = TABLE.c
        statement = (
            update(TABLE)
            .where(c.owner == owner, c.status.in_(list(IN_FLIGHT)))
            .values(lease_until=self.shared_time(now) + length)
        )
        with self._write() as connection:
            return int(connection.execute(statement).rowcount)

    # -- writing, in group commits -------------------------------------------

    def _set(
        self, entry: Entry, now: datetime, *, lease_as_read: bool = False, **values: Any
    ) -> Entry:
        """Update one row if it is still as ``entry`` says (status, owner); return it as it is now.

        Updates asked for at once by several threads are committed together (group
        commit): whichever thread gets the write lock runs every update waiting by
        then in one transaction. A row another process moved on raises
        :class:`RowTakenError`, and nothing of it is changed.
        """
        for name in TEXTS.intersection(values):  # a platform's words may quote a secret
            values[name] = storable(redact_optional(values[name]))
        status = values.get("status", entry.status)
        owner = values.get("owner", entry.owner)
        leased = status in IN_FLIGHT and owner
        values["lease_until"] = self.shared_time(now) + LEASE if leased else None
        values["updated_at"] = now
        where = (entry.id, entry.status, entry.owner)
        lease = (entry.lease_until,) if lease_as_read else None
        found = self._submit(Write(values, where=where, lease=lease, key=entry.key))
        if found is None:
            current = self.get(entry.key)
            now_is = (
                "gone"
                if current is None
                else f"{current.status}, owned by {current.owner or 'nobody'}"
            )
            raise RowTakenError(
                f"{entry.key} {entry.account}: the row moved on in another process (now {now_is}); "
                "this process leaves it alone"
            )
        return found

    def _submit(self, update: Write) -> Entry | None:
        """Write a row in a commit of its own (PostgreSQL) or the next group commit (SQLite).

        On PostgreSQL each write is its own one-statement transaction: daemons
        sharing a database never deadlock on each other's batches. A transient
        failure (a deadlock, a lost connection, a locked file) is tried again a
        few times, so that what a platform did (``sent`` above all) is recorded.
        """
        retried = False
        for pause in (*RETRY_PAUSES, None):
            update.done, update.error, update.cause, update.row = False, None, None, None
            if self.engine.dialect.name == "postgresql":
                self._commit([update])
            else:
                with self._queue_lock:
                    self._queue.append(update)
                with self._writing:
                    if not update.done:
                        with self._queue_lock:
                            batch, self._queue = self._queue, []
                        self._commit(batch)
            if update.error is None or pause is None or not transient(update.cause):
                break
            log.warning("the ledger could not be written (%s); trying again", update.error)
            retried = True
            time.sleep(pause)
        if update.error is not None:
            raise update.error
        if update.row is None and retried:  # its first try may have committed, unanswered
            return self._recovered(update)
        return update.row

    def _recovered(self, update: Write) -> Entry | None:
        """Return the row an unanswered try of this write committed, if it did."""
        row = self.get(update.key)
        was = update.where or (0, None, None)
        wanted = update.values.get("status", was[1]), update.values.get("owner", was[2])
        return row if row is not None and (row.status, row.owner) == wanted else None

    def _commit(self, batch: list[Write]) -> None:
        """Run waiting updates in one transaction (the write lock is held).

        Nobody learns their row before the commit: if one update fails, the batch
        is rolled back and every caller gets an error. A row that moved on (no row
        matched) is no error of the others.
        """
        rows: list[Entry | None] = []
        try:
            with self._begin() as connection:
                for update in batch:
                    statement, params = update.statement(connection.dialect.name)
                    found = connection.execute(statement, params).first()
                    rows.append(None if found is None else entry_of(found))
        except Exception as exc:
            error = LedgerError(f"the ledger could not be written: {cause(exc)}")
            bug = program_error(exc)
            for i, update in enumerate(batch):
                # the update that failed gets its own error (a bug keeps its traceback)
                update.error = bug if i == len(rows) and bug is not None else error
                update.cause = exc
        else:
            for update, row in zip(batch, rows, strict=True):
                update.row = row
        finally:
            for update in batch:
                update.done = True
