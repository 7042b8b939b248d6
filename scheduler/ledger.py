"""The send log: the single source of truth of what was sent, and where its SQL is written.

Beside it, on the same engine: ``holds`` (the holds table) and ``manual`` (what a
person settles by hand, and the guards of ``send``).

One row per occurrence and account, unique on the occurrence's key. A row is
claimed (inserted) before any request goes out, so two processes can never both
send the same occurrence: the second insert fails on the unique key. Times are
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

import functools
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    TextualSelect,
    TypeDecorator,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from scheduler.errors import LedgerError
from scheduler.redact import redact_optional

log = logging.getLogger(__name__)

Status = Literal[
    "claimed", "sending", "retrying", "sent", "failed", "missed", "skipped", "uncertain", "held"
]
IN_FLIGHT: tuple[Status, ...] = ("claimed", "sending", "retrying")
FINAL: tuple[Status, ...] = ("sent", "failed", "missed", "skipped", "uncertain", "held")


class UTCDateTime(TypeDecorator[datetime]):
    """Store naive UTC, return aware UTC, whatever the database does with zones."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores aware datetimes only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the ledger's tables."""


class Delivery(Base):
    """One occurrence on one account, and what became of it."""

    __tablename__ = "deliveries"
    # what `send` asks before posting by hand: did this post go to this account lately?
    __table_args__ = (
        Index("ix_deliveries_recent", "campaign", "post", "account", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    campaign: Mapped[str] = mapped_column(String(200), index=True)
    post: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(40))
    person: Mapped[str | None] = mapped_column(String(200))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    parts: Mapped[list[str] | None] = mapped_column(JSON)
    remote_id: Mapped[str | None] = mapped_column(String(512))
    remote_url: Mapped[str | None] = mapped_column(Text)
    remote_ids: Mapped[list[str] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


TABLE: Table = Delivery.__table__  # type: ignore[assignment]  # it is a Table


@dataclass(frozen=True)
class Entry:
    """A ledger row as the rest of the program sees it."""

    id: int
    key: str
    campaign: str
    post: str
    account: str
    platform: str
    person: str | None
    scheduled_for: datetime
    status: str
    parts: tuple[str, ...]
    remote_id: str | None
    remote_url: str | None
    attempts: int
    error: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    owner: str | None = None
    next_attempt_at: datetime | None = None
    remote_ids: tuple[str, ...] = ()  # once sent, every part's id; before, an adapter's marks

    @property
    def text(self) -> str:
        """Return the whole text sent (a thread's parts separated by blank lines)."""
        return "\n\n".join(self.parts)


def _entry(row: Any) -> Entry:
    """Build an Entry from a row (a Core row or an ORM object: the same attribute names)."""
    return Entry(
        row.id,
        row.key,
        row.campaign,
        row.post,
        row.account,
        row.platform,
        row.person,
        row.scheduled_for,
        row.status,
        tuple(row.parts or ()),
        row.remote_id,
        row.remote_url,
        row.attempts,
        row.error,
        row.reason,
        row.created_at,
        row.updated_at,
        row.sent_at,
        row.owner,
        row.next_attempt_at,
        tuple(row.remote_ids or ()),
    )


@dataclass(frozen=True)
class Claim:
    """What a process asks the ledger for before it sends an occurrence."""

    key: str
    campaign: str
    post: str
    account: str
    platform: str
    person: str | None
    scheduled_for: datetime


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_MIGRATING = threading.Lock()  # Alembic's command API keeps its context in module globals
_MIGRATION_LOCK = 0x736F6C6964617269  # PostgreSQL advisory lock key of migrations ("solidari")


SCHEMA_HEAD = "0002"  # the newest migration in scheduler/migrations (a test keeps them equal)


def _current(engine: Engine) -> bool:
    """Say whether the schema is at SCHEMA_HEAD, without importing Alembic (0.3 s, 10 MB)."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return list(found) == [SCHEMA_HEAD]
    except (OperationalError, ProgrammingError):  # no table yet: a new ledger
        return False


def _migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic, versions in scheduler/migrations)."""
    if _current(engine):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(resources.files("scheduler") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
    with _MIGRATING, engine.begin() as connection:
        # daemons started at once on an empty database: one migrates under a lock held
        # until its commit; the others wait, then find the schema at head (Alembic re-reads it)
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock; busy_timeout waits
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Ledger:
    """The send log on one database (SQLite by default, any SQLAlchemy URL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # one writer per process, in turn: SQLite has one writer anyway (and its busy
        # handler sleeps up to 100 ms between tries), and updates that wait for the
        # lock are committed together (see _set)
        self._writing = threading.Lock()
        self._writer: Connection | None = None
        self._queue: list[_Update] = []  # updates waiting for the write lock (group commit)
        self._queue_lock = threading.Lock()
        self._updates = _Updates(engine.dialect)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Ledger:
        """Open (and migrate) the ledger at a SQLAlchemy URL; raise LedgerError with the cause."""
        try:
            engine = create_engine(url, future=True)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            if migrate:
                _migrate(engine)
        except Exception as exc:
            # any cause (a driver not installed, a read-only file, Alembic's CommandError on
            # a schema newer than this version) is the user's to read, never a traceback
            raise LedgerError(f"cannot open the ledger {_masked(url)}: {_cause(exc)}") from None
        return cls(engine)

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
        except (OperationalError, self._updates.operational_error) as exc:
            raise LedgerError(f"the ledger could not be written: {_cause(exc)}") from None

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

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except OperationalError as exc:
            raise LedgerError(f"the ledger could not be read: {_cause(exc)}") from None

    # -- writing ----------------------------------------------------------

    def claim(
        self,
        claim: Claim,
        now: datetime,
        owner: str,
        status: Status = "claimed",
        reason: str | None = None,
    ) -> Entry | None:
        """Insert the occurrence's row; return None if any process has claimed it before."""
        try:
            with self._write() as connection:
                row = connection.execute(
                    insert(TABLE).returning(*TABLE.c), _row(claim, now, owner, status, reason)
                ).one()
                return _entry(row)
        except IntegrityError:
            return None

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
        row = _row(claim, now, owner, "sending")
        row["attempts"] = 1
        row["parts"] = list(parts)
        return self._submit(_Update((), row, insert=True))

    def sending(self, entry_id: int, parts: Sequence[str], now: datetime) -> Entry:
        """Mark that a request is about to go out with exactly these parts."""
        return self._set(entry_id, now, status="sending", parts=list(parts), attempts=INCREMENT)

    def sent(
        self, entry_id: int, remote_ids: Sequence[str], remote_url: str | None, now: datetime
    ) -> Entry:
        """Mark an occurrence sent, with the platform's id(s) and public URL."""
        return self._set(
            entry_id,
            now,
            status="sent",
            remote_id=remote_ids[0] if remote_ids else None,
            remote_ids=list(remote_ids),
            remote_url=remote_url,
            sent_at=now,
            error=None,
            next_attempt_at=None,
        )

    def checkpoint(self, entry_id: int, marks: Sequence[str], now: datetime) -> Entry:
        """Keep an adapter's marks in a row being sent, so that a retry resumes from them."""
        return self._set(entry_id, now, remote_ids=list(marks))

    def failed(self, entry_id: int, error: str, now: datetime) -> Entry:
        """Mark an occurrence failed for good, with the platform's reason."""
        return self._set(entry_id, now, status="failed", error=error, next_attempt_at=None)

    def retrying(self, entry_id: int, error: str, at: datetime, now: datetime) -> Entry:
        """Mark an occurrence to be tried again at ``at``."""
        return self._set(entry_id, now, status="retrying", error=error, next_attempt_at=at)

    def verify_later(self, entry_id: int, error: str, at: datetime, now: datetime) -> Entry:
        """Keep a row ``sending`` (it may have been created) and read it back at ``at``."""
        return self._set(entry_id, now, status="sending", error=error, next_attempt_at=at)

    def settle(self, entry_id: int, status: Status, reason: str, now: datetime) -> Entry:
        """End an unsent row as ``skipped``, ``missed`` or ``held`` (or ``failed``) with its reason."""
        values: dict[str, Any] = {"status": status, "next_attempt_at": None}
        values["error" if status == "failed" else "reason"] = reason
        return self._set(entry_id, now, **values)

    def adopt(self, entry_id: int, owner: str, now: datetime) -> Entry:
        """Take over a row a stopped process left in flight."""
        return self._set(entry_id, now, owner=owner)

    def uncertain(self, entry_id: int, error: str, now: datetime) -> Entry:
        """Mark an occurrence whose outcome is unknown; it is never sent again by itself."""
        return self._set(entry_id, now, status="uncertain", error=error, next_attempt_at=None)

    def _set(self, entry_id: int, now: datetime, **values: Any) -> Entry:
        """Update one row and return it as it is now.

        Updates asked for at the same moment by several threads are committed
        together (group commit): whichever thread gets the write lock first runs
        every update waiting by then in one transaction. Each caller still gets
        its own row back only once it is committed.
        """
        params = {k: v for k, v in values.items() if k != "attempts"}
        for name in _TEXTS.intersection(params):  # a platform's words may quote a secret
            params[name] = _storable(redact_optional(params[name]))
        found = self._submit(
            _Update(tuple(sorted(values)), {**params, "updated_at": now, "id": entry_id})
        )
        if found is None:
            raise LedgerError(f"ledger row {entry_id} has disappeared")
        return found

    def _submit(self, update: _Update) -> Entry | None:
        """Queue a write for the next group commit, take part in it, return its row."""
        with self._queue_lock:
            self._queue.append(update)
        with self._writing:
            if not update.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if update.error is not None:
            raise update.error
        return update.row

    def _commit(self, batch: list[_Update]) -> None:
        """Run waiting updates in one transaction (the write lock is held).

        Nobody learns their row until the transaction is committed: if one update
        fails, the whole batch is rolled back and every caller gets an error.
        """
        rows: list[Entry | None] = []
        try:
            with self._begin() as connection:
                cursor = connection.connection.cursor()
                try:
                    for update in batch:
                        if update.insert:
                            rows.append(self._updates.insert(cursor, update.params))
                        else:
                            rows.append(self._updates.run(cursor, update.names, update.params))
                finally:
                    cursor.close()
        except Exception as exc:
            error = LedgerError(f"the ledger could not be written: {_cause(exc)}")
            driver = isinstance(exc, (OperationalError, self._updates.driver_error))
            for i, update in enumerate(batch):
                # the update that failed gets its own error (a bug keeps its traceback)
                update.error = exc if i == len(rows) and not driver else error
        else:
            for update, row in zip(batch, rows, strict=True):
                update.row = row
        finally:
            for update in batch:
                update.done = True

    # -- reading ----------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """Return the row of an occurrence key, if any."""
        with self._read() as connection:
            row = connection.execute(select(TABLE).where(TABLE.c.key == key)).first()
        return _entry(row) if row else None

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
            return [_entry(r) for r in connection.execute(query)]

    def in_flight(self) -> list[Entry]:
        """Return every row still claimed, sending or retrying, oldest first."""
        query = (
            select(TABLE)
            .where(TABLE.c.status.in_(list(IN_FLIGHT)))
            .order_by(TABLE.c.scheduled_for, TABLE.c.id)
        )
        with self._read() as connection:
            return [_entry(r) for r in connection.execute(query)]

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
            rows = [_entry(r) for r in connection.execute(query)]
        return rows[::-1]


@dataclass
class _Update:
    """One row update waiting to be committed, and then its outcome."""

    names: tuple[str, ...]  # the columns an update sets
    params: dict[str, Any]
    insert: bool = False  # a new row (params as _row gives them), unless its key is taken
    row: Entry | None = None
    error: Exception | None = None
    done: bool = False


INCREMENT = object()  # as a value of ``attempts``: one more than it was
_TEXTS = frozenset({"error", "reason"})  # the columns masked before they are stored


class _Updates:
    """Run the row inserts and updates of deliveries on the driver's cursor.

    A delivery writes its row twice, and in a burst of a thousand deliveries
    SQLAlchemy's execution path (context, compiled parameters, result proxy) cost
    more CPU than SQLite itself: about 0.2 ms a write. The statement is compiled
    by SQLAlchemy for the dialect once per set of columns, and values go through
    the columns' own type conversions (UTC datetimes, JSON), so what is stored is
    exactly what SQLAlchemy would store.
    """

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self.driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self.operational_error: type[Exception] = dialect.loaded_dbapi.OperationalError
        impl = {c.name: c.type.dialect_impl(dialect) for c in TABLE.c}
        self._bind = {n: t.bind_processor(dialect) for n, t in impl.items()}
        self._result = [(c.name, impl[c.name].result_processor(dialect, None)) for c in TABLE.c]
        self._compiled: dict[tuple[str, ...], tuple[str, list[str] | None]] = {}
        self._inserts: dict[tuple[str, ...], tuple[str, list[str] | None]] = {}

    def _insert_statement(self, columns: tuple[str, ...]) -> tuple[str, list[str] | None]:
        """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id`` for these columns."""
        found = self._inserts.get(columns)
        if found is None:
            from sqlalchemy.dialects import postgresql, sqlite

            upsert: Any = postgresql.insert if self.dialect.name == "postgresql" else sqlite.insert
            statement = (
                upsert(TABLE)
                .on_conflict_do_nothing(index_elements=[TABLE.c.key])
                .returning(TABLE.c.id)
                .compile(dialect=self.dialect, column_keys=list(columns))
            )
            found = self._inserts[columns] = (statement.string, statement.positiontup)
        return found

    def insert(self, cursor: Any, row: dict[str, Any]) -> Entry | None:
        """Insert a new row (as ``_row`` gives it) and return it as a read would; None if taken."""
        sql, order = self._insert_statement(tuple(row))
        values = self._bound(row)
        cursor.execute(sql, [values[n] for n in order] if order is not None else values)
        found = cursor.fetchone()
        if found is None:  # the key was claimed before
            return None
        entry_id = found[0]
        return Entry(
            entry_id,
            row["key"],
            row["campaign"],
            row["post"],
            row["account"],
            row["platform"],
            row["person"],
            row["scheduled_for"].astimezone(UTC),
            row["status"],
            tuple(row.get("parts") or ()),
            None,
            None,
            row["attempts"],
            None,
            row["reason"],
            row["created_at"].astimezone(UTC),
            row["updated_at"].astimezone(UTC),
            None,
            row["owner"],
            None,
        )

    def _bound(self, params: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in params.items():
            convert = self._bind[name]
            values[name] = value if convert is None else convert(value)
        return values

    def run(self, cursor: Any, names: tuple[str, ...], params: dict[str, Any]) -> Entry | None:
        """Update one row (the transaction is the caller's) and return it, or None if gone."""
        compiled = self._compiled.get(names)
        if compiled is None:
            statement = _update_statement(names).compile(dialect=self.dialect)
            order = statement.positiontup  # None for named parameter styles
            compiled = self._compiled[names] = (statement.string, order)
        sql, order = compiled
        values = self._bound(params)
        cursor.execute(sql, [values[n] for n in order] if order is not None else values)
        row = cursor.fetchone()
        if row is None:
            return None
        found = _Row()
        for (name, convert), value in zip(self._result, row, strict=True):
            setattr(found, name, value if convert is None or value is None else convert(value))
        return _entry(found)


class _Row:
    """A row's values by column name, as ``_entry`` reads them."""


@functools.cache
def _update_statement(names: tuple[str, ...]) -> TextualSelect:
    """Return ``UPDATE ... RETURNING`` for these columns, built once per set of columns."""
    c = TABLE.c
    sets = [
        "attempts = attempts + 1" if name == "attempts" else f"{name} = :{name}"
        for name in (*names, "updated_at")
    ]
    binds = [bindparam(n, type_=c[n].type) for n in (*names, "updated_at") if n != "attempts"]
    sql = (
        f"UPDATE {TABLE.name} SET {', '.join(sets)} WHERE id = :id "
        f"RETURNING {', '.join(col.name for col in c)}"
    )
    return text(sql).bindparams(*binds, bindparam("id", type_=c.id.type)).columns(*c)


def _row(
    claim: Claim, now: datetime, owner: str, status: Status, reason: str | None = None
) -> dict[str, Any]:
    return {
        "key": claim.key,
        "campaign": claim.campaign,
        "post": claim.post,
        "account": claim.account,
        "platform": claim.platform,
        "person": claim.person,
        "scheduled_for": claim.scheduled_for,
        "status": status,
        "attempts": 0,
        "owner": owner,
        "reason": _storable(redact_optional(reason)),
        "created_at": now,
        "updated_at": now,
    }


def _storable(value: str | None) -> str | None:
    """Replace NUL, which PostgreSQL's text cannot hold (a hostile answer may quote one)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _masked(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it
        return "(the given URL)"


def _cause(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return text[:300]
