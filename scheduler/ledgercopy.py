"""Copy a whole ledger into an empty database: ``solidarity copy-ledger --to URL``.

The way from one daemon on SQLite to several on PostgreSQL; SQLite to SQLite
and PostgreSQL to PostgreSQL work the same. Both ledgers are opened (and so
migrated to the newest schema, which makes their schema versions equal), then
every table both have is copied column by column by name, in batches, ids kept,
in one transaction on the target: all of it or nothing. Tables and columns are
found in the databases themselves, so what a later migration adds is copied
without a change here; the types declared in ``Base.metadata`` convert the values
where a table is declared there, the databases' own types elsewhere.

It refuses, changing nothing, when the source does not exist, when source and
target are one database, when a daemon runs on a SQLite source (its lock is
held) or on any source (a row in flight whose lease has not run out, judged by
the source database's own clock: PostgreSQL's, or this machine's for SQLite),
and when the target has a row in any table. After the copy PostgreSQL's
id sequences are moved past the copied ids, so that new rows get fresh ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Table,
    and_,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeEngine

from scheduler.config import sqlite_file
from scheduler.errors import LedgerError, SolidarityError, cause
from scheduler.ledger import IN_FLIGHT, LEASE, TABLE, Base, Ledger
from scheduler.redact import masked_url

BATCH = 2000  # rows read and written at a time: flat memory for a ledger of any size
SCHEMA_TABLE = "alembic_version"  # each side's own: migrated, never copied


@dataclass(frozen=True)
class Copied:
    """What a copy did: the ledgers (masked), rows per table, and the schema version."""

    source: str
    target: str
    tables: tuple[tuple[str, int], ...]
    schema: str
    not_copied: tuple[str, ...] = ()  # tables the source has and the target has not

    def report(self) -> str:
        """Say what was copied, for a person."""
        width = max((len(name) for name, _ in self.tables), default=0)
        lines = [f"copied the ledger {self.source} into {self.target} (schema {self.schema}):"]
        lines += [f"  {name.ljust(width)}  {rows:>9,} rows" for name, rows in self.tables]
        if self.not_copied:
            lines.append(f"not copied (no such table in the target): {', '.join(self.not_copied)}")
        lines.append(
            "point SOLIDARITY_DATABASE_URL at the new ledger, then start the daemons; "
            "keep the old ledger as a backup"
        )
        return "".join(f"{line}\n" for line in lines)


def copy_ledger(source_url: str, target_url: str, *, batch: int = BATCH) -> Copied:
    """Copy every row of the ledger at ``source_url`` into the empty ledger at ``target_url``."""
    source_name, target_name = masked_url(source_url), masked_url(target_url)
    if _missing_file(source_url):
        raise LedgerError(
            f"there is no ledger at {source_name}: the file does not exist "
            "(--db or SOLIDARITY_DATABASE_URL names the ledger to copy)"
        )
    if _same_file(source_url, target_url):
        raise LedgerError(f"the source and the target are the same database ({source_name})")
    with contextlib.ExitStack() as stack:
        _hold_lock(stack, source_url, "source", source_name)
        _hold_lock(stack, target_url, "target", target_name)
        _refuse(source_url, target_url, source_name, target_name)
        source = stack.enter_context(_opened(source_url, migrate=True))
        target = stack.enter_context(_opened(target_url, migrate=True))
        try:
            return _copy(source.engine, target.engine, source_name, target_name, batch)
        except SQLAlchemyError as exc:
            raise LedgerError(
                f"nothing was copied into {target_name}: {cause(exc)} (the copy was rolled back)"
            ) from None
    raise AssertionError("unreachable")  # for mypy: the with block returns or raises


def _hold_lock(stack: contextlib.ExitStack[Any], url: str, side: str, name: str) -> None:
    """Hold a SQLite ledger's daemon lock for the length of the copy, or refuse: a daemon runs."""
    from scheduler.serve import ledger_lock

    try:
        stack.enter_context(ledger_lock(url))
    except SolidarityError as exc:
        raise LedgerError(
            f"a daemon is running on the {side} ledger, so nothing was copied: {exc}"
        ) from None
    except OSError as exc:
        raise LedgerError(f"cannot open the {side} ledger {name}: {exc.strerror or exc}") from None


def _refuse(source_url: str, target_url: str, source_name: str, target_name: str) -> None:
    """Refuse one database twice, and a target with rows, before migrating either."""
    with _opened(source_url, migrate=False) as source, _opened(target_url, migrate=False) as target:
        try:
            if _one_database(source.engine, target.engine):
                raise LedgerError(
                    f"the source and the target are the same database ({source_name})"
                )
            _refuse_rows(target.engine, target_name)
            _refuse_in_flight(source.engine, source_name)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot read the ledgers: {cause(exc)}") from None


def _refuse_in_flight(source: Engine, name: str) -> None:
    """Refuse a source that a daemon still sends from: a row in flight whose lease runs.

    Rows written before leases count as alive a lease after their last write.
    The source is not migrated yet: it may predate leases, or have no table.
    """
    found = inspect(source)
    if not found.has_table(TABLE.name):
        return
    c = TABLE.c
    leased = "lease_until" in {column["name"] for column in found.get_columns(TABLE.name)}
    with source.connect() as connection:
        now = _database_now(connection)
        recent = c.updated_at > now - LEASE
        alive = (
            or_(c.lease_until > now, and_(c.lease_until.is_(None), recent)) if leased else recent
        )
        query = (
            select(c.key, c.owner)
            .where(c.status.in_(list(IN_FLIGHT)), c.owner != "", alive)
            .order_by(c.updated_at)
        )
        live = connection.execute(query).all()
    if live:
        owners = sorted({row.owner for row in live})
        raise LedgerError(
            f"daemons still send from {name}: {len(live)} row(s) in flight with a lease that "
            f"has not run out (the first {live[0].key}; owned by {', '.join(owners[:3])}); "
            f"stop every daemon on it, wait {LEASE.total_seconds():.0f} s, then copy "
            "(nothing was copied)"
        )


def _database_now(connection: Connection) -> datetime:
    """Return the time in the clock the database's leases are written in (aware UTC)."""
    if connection.dialect.name == "postgresql":  # the server's, shared by every daemon on it
        found: datetime = connection.execute(select(func.timezone("UTC", func.now()))).scalar_one()
        return found.replace(tzinfo=UTC)
    return datetime.now(UTC)  # SQLite: this machine's, the only one writing it


@contextlib.contextmanager
def _opened(url: str, *, migrate: bool) -> Iterator[Ledger]:
    ledger = Ledger.open(url, migrate=migrate)
    try:
        yield ledger
    finally:
        ledger.close()


def _copy(source: Engine, target: Engine, source_name: str, target_name: str, batch: int) -> Copied:
    """Copy the tables in one transaction on the target, reading one snapshot of the source."""
    schema = _schema(source)
    if _schema(target) != schema:
        raise LedgerError(
            f"the schema of {source_name} ({schema}) and of {target_name} "
            f"({_schema(target)}) differ after migrating both"
        )
    found, theirs = _reflect(target), _reflect(source)
    every = list(found.sorted_tables)  # parents before children
    tables = [t for t in every if t.name in theirs.tables]
    not_copied = tuple(sorted(set(theirs.tables) - set(found.tables)))
    copied = []
    with _snapshot(source) as reading, target.begin() as writing:
        _lock_for_writing(writing, every)
        _refuse_rows(writing, target_name, every)  # again, now that no one else may write
        for table in tables:
            rows = _copy_table(reading, writing, theirs.tables[table.name], table, batch)
            copied.append((table.name, rows))
        if writing.dialect.name == "postgresql":
            for table in tables:
                _move_sequences(writing, table)
    return Copied(source_name, target_name, tuple(copied), schema, not_copied)


def _reflect(engine: Engine) -> MetaData:
    """Return the tables the database has (the schema table aside), columns and types as found."""
    metadata = MetaData()
    metadata.reflect(engine)
    with contextlib.suppress(KeyError):
        metadata.remove(metadata.tables[SCHEMA_TABLE])
    return metadata


def _schema(engine: Engine) -> str:
    with engine.connect() as connection:
        versions = connection.execute(text(f"SELECT version_num FROM {SCHEMA_TABLE}")).scalars()
        return ", ".join(sorted(versions)) or "none"


def _refuse_rows(where: Engine | Connection, name: str, tables: list[Table] | None = None) -> None:
    """Refuse a target with a row in any table: a copy only ever goes into an empty ledger."""
    with _connection(where) as connection:
        if tables is None:
            metadata = MetaData()
            metadata.reflect(connection)
            tables = [t for t in metadata.sorted_tables if t.name != SCHEMA_TABLE]
        full = []
        for table in tables:
            count = connection.execute(select(func.count()).select_from(table)).scalar_one()
            if count:
                full.append(f"{table.name} ({count:,} rows)")
    if full:
        raise LedgerError(
            f"the target {name} is not empty: {', '.join(full)}; "
            "copy-ledger copies only into a ledger with no rows (nothing was copied)"
        )


@contextlib.contextmanager
def _connection(where: Engine | Connection) -> Iterator[Connection]:
    if isinstance(where, Connection):
        yield where
        return
    with where.connect() as connection:
        yield connection


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """Read the source as of one instant, whatever an ad-hoc command (a hold) writes meanwhile."""
    with engine.connect() as reading:
        if reading.dialect.name == "postgresql":
            reading.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        elif reading.dialect.name == "sqlite":
            reading.exec_driver_sql("BEGIN")  # WAL: every read of it sees one snapshot
        yield reading


def _lock_for_writing(writing: Connection, tables: list[Table]) -> None:
    """Keep every other writer off the target until the copy commits (reads go on)."""
    if writing.dialect.name == "sqlite":
        writing.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock; busy_timeout waits
    elif writing.dialect.name == "postgresql" and tables:
        names = ", ".join(writing.dialect.identifier_preparer.format_table(t) for t in tables)
        writing.exec_driver_sql(f"LOCK TABLE {names} IN EXCLUSIVE MODE")


def _one_database(source: Engine, target: Engine) -> bool:
    """Say whether two PostgreSQL URLs reach one database.

    Names cannot tell (``localhost`` and ``127.0.0.1``, a proxy, an alias): an
    advisory lock can. Such a lock belongs to one database: if the target cannot
    take the lock the source holds, they are the same database.
    """
    if source.dialect.name != "postgresql" or target.dialect.name != "postgresql":
        return False
    key = int.from_bytes(secrets.token_bytes(8), "big", signed=True)
    with source.connect() as mine, target.connect() as theirs:  # each lock ends with its connection
        mine.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        taken = theirs.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
        return not taken.scalar_one()


def _copy_table(
    reading: Connection, writing: Connection, found: Table, wanted: Table, batch: int
) -> int:
    """Copy one table's rows, column by column by name, in batches; return how many."""
    names = [c.name for c in wanted.columns if c.name in found.columns]
    declared = Base.metadata.tables.get(wanted.name)
    source = _typed(found, names, declared, write=False)
    target = _typed(wanted, names, declared, write=True)
    order = [source.c[c.name] for c in found.primary_key.columns] or list(source.c)
    result = reading.execution_options(yield_per=batch).execute(select(source).order_by(*order))
    copied = 0
    for rows in result.partitions(batch):
        writing.execute(insert(target), [dict(row._mapping) for row in rows])
        copied += len(rows)
    return copied


def _typed(table: Table, names: list[str], declared: Table | None, *, write: bool) -> Table:
    """Return a table of these columns, with the declared types where there are, else as found."""
    columns = []
    for name in names:
        kind: TypeEngine[Any] = (
            declared.c[name].type
            if declared is not None and name in declared.c
            else table.c[name].type
        )
        if write and isinstance(kind, JSON):  # None stays SQL NULL, not the JSON text 'null'
            kind = type(kind)(none_as_null=True)
        columns.append(Column(name, kind, primary_key=table.c[name].primary_key))
    return Table(table.name, MetaData(), *columns)


def _move_sequences(writing: Connection, table: Table) -> None:
    """Move each id sequence of a table past its copied ids, so that new rows get fresh ids."""
    preparer = writing.dialect.identifier_preparer
    for column in table.columns:
        if not isinstance(column.type, Integer):
            continue
        sequence = writing.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": preparer.format_table(table), "column": column.name},
        ).scalar_one()
        if sequence is None:
            continue
        highest = writing.execute(select(func.max(column))).scalar_one()
        # the next id is one more than the highest copied (1 in an empty table)
        writing.execute(
            text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
            {
                "sequence": sequence,
                "value": 1 if highest is None else highest,
                "called": highest is not None,
            },
        )


def _missing_file(url: str) -> bool:
    path = sqlite_file(url)
    return path is not None and not path.exists()


def _same_file(source_url: str, target_url: str) -> bool:
    source, target = sqlite_file(source_url), sqlite_file(target_url)
    if source is None or target is None:
        return False
    return source == target or (target.exists() and os.path.samefile(source, target))
