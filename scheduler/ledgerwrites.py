"""The statements that write ledger rows, and the rows they write.

A write is a new row (``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING``: no
row back if another process claimed the key first) or a change to a row as it
was read (``UPDATE ... WHERE id, status and owner are as read ... RETURNING``:
no row back if it moved on). Both are SQLAlchemy Core statements, built once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Update, bindparam, update
from sqlalchemy.exc import DBAPIError, StatementError

from scheduler.errors import LedgerError
from scheduler.ledgerschema import IN_FLIGHT, TABLE, Claim, Entry, Status
from scheduler.redact import redact_optional

# a row in flight whose owner has not renewed it this long is orphaned
LEASE = timedelta(seconds=30)

INCREMENT = object()  # as a value of ``attempts``: one more than it was
TEXTS = frozenset({"error", "reason"})  # the columns masked before they are stored


@dataclass
class Write:
    """One row written in a group commit (a new row, or a change to a row as it was read)."""

    values: dict[str, Any]
    where: tuple[int, str, str | None] | None = None  # id, status, owner the change expects
    insert: bool = False  # a new row (values as _row gives them), unless its key is taken
    lease: tuple[datetime | None] | None = None  # the lease the change expects too (adopting)
    key: str = ""  # the row's key (a new row's is in values)
    row: Entry | None = None
    error: Exception | None = None
    cause: Exception | None = None  # what the database raised, when it failed
    done: bool = False

    def __post_init__(self) -> None:
        self.key = self.key or str(self.values.get("key", ""))

    def statement(self, dialect: str) -> tuple[Insert | Update, dict[str, Any]]:
        """Return the Core statement and its parameters."""
        values = self.values
        if self.insert:
            return insert_statement(dialect), values
        assert self.where is not None
        names = tuple(sorted(values))
        params = {f"v_{n}": v for n, v in values.items() if v is not INCREMENT}
        params["w_id"], params["w_status"], params["w_owner"] = self.where
        if self.lease is not None:
            params["w_lease"] = self.lease[0]
        return update_statement(names, self.lease is not None), params


@functools.cache
def insert_statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (key) DO NOTHING RETURNING *``: None back if the key is taken."""
    from sqlalchemy.dialects import postgresql, sqlite

    if dialect not in ("postgresql", "sqlite"):
        raise LedgerError(f"the ledger runs on SQLite or PostgreSQL, not {dialect}")
    upsert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement: Insert = upsert(TABLE)
    return statement.on_conflict_do_nothing(index_elements=[TABLE.c.key]).returning(*TABLE.c)  # type: ignore[no-any-return, attr-defined]


@functools.cache
def update_statement(names: tuple[str, ...], lease: bool = False) -> Update:
    """``UPDATE ... WHERE id, status and owner (and lease) are as read ... RETURNING *``."""
    c = TABLE.c
    values: dict[str, Any] = {
        name: c.attempts + 1 if name == "attempts" else bindparam(f"v_{name}", type_=c[name].type)
        for name in names
    }
    where = [
        c.id == bindparam("w_id"),
        c.status == bindparam("w_status"),
        c.owner.is_not_distinct_from(bindparam("w_owner")),
    ]
    if lease:
        where.append(
            c.lease_until.is_not_distinct_from(bindparam("w_lease", type_=c.lease_until.type))
        )
    return update(TABLE).where(*where).values(values).returning(*c)


def new_row(
    claim: Claim,
    now: datetime,
    owner: str,
    status: Status,
    reason: str | None = None,
    shared: datetime | None = None,
) -> dict[str, Any]:
    """Return a new row's values; ``shared`` is ``now`` in the ledger's shared clock (leases)."""
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
        "lease_until": (shared or now) + LEASE if status in IN_FLIGHT and owner else None,
        "reason": storable(redact_optional(reason)),
        "created_at": now,
        "updated_at": now,
    }


def storable(value: str | None) -> str | None:
    """Replace NUL, which PostgreSQL's text cannot hold (a hostile answer may quote one)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def program_error(exc: Exception) -> Exception | None:
    """Return the program's own error behind a failed write (a bad value); None for the database's."""
    if isinstance(exc, DBAPIError):
        return None
    if isinstance(exc, StatementError) and isinstance(exc.orig, Exception):
        return exc.orig  # a column's conversion refused a value: the bug itself
    return exc


RETRY_PAUSES = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0)  # seconds between tries of a transient failure
_TRANSIENT_STATES = ("40P01", "40001", "55P03", "57P01", "57P02", "57P03")  # deadlock & kin


def transient(exc: Exception | None) -> bool:
    """Say whether a write failed for a moment only: worth trying again as it was."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = str(getattr(exc.orig, "sqlstate", "") or "")
    return (
        state in _TRANSIENT_STATES
        or state.startswith("08")  # connection exceptions
        or "database is locked" in str(exc.orig)
    )
