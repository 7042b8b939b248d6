"""Read the ledger's rows a page at a time, oldest scheduled first, so memory stays flat.

A page is found by its keyset, (``scheduled_for``, ``id``), never by an offset:
each page starts after the last row of the one before, so a row is neither
repeated nor lost at a page's edge (rows with equal ``scheduled_for`` are told
apart by ``id``), however many rows there are and whatever a daemon writes
meanwhile. Each page is its own short read: nothing holds a transaction open
while a person reads the pages in a pager.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from scheduler.errors import LedgerError, UsageError, cause
from scheduler.ledger import TABLE, Entry, Ledger

PAGE_SIZE = 1000  # rows a page: about a megabyte of Entry objects at most
PAGE_SIZE_VARIABLE = "SOLIDARITY_HISTORY_PAGE_SIZE"  # for tests and tuning; not documented


def page_size() -> int:
    """Return the rows per page: ``SOLIDARITY_HISTORY_PAGE_SIZE`` if set, else PAGE_SIZE."""
    text = os.environ.get(PAGE_SIZE_VARIABLE, "").strip()
    if not text:
        return PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise UsageError(f"{PAGE_SIZE_VARIABLE}: a whole number from 1 to 100000, not {text!r}")
    return int(text)


def pages(
    ledger: Ledger,
    *,
    campaign: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    size: int | None = None,
) -> Iterator[list[Entry]]:
    """Yield the matching rows in pages, oldest first; with ``limit``, only the newest that many.

    The first page is read when the iterator is first advanced; a page is never
    empty (no rows: nothing is yielded).
    """
    size = size or page_size()
    c = TABLE.c
    matching: list[ColumnElement[bool]] = []
    if campaign is not None:
        matching.append(c.campaign == campaign)
    if since is not None:
        matching.append(c.scheduled_for >= since)
    if limit is not None:
        first = _newest_key(ledger, matching, limit)
        if first is not None:  # fewer rows than the limit: all of them
            at, entry_id = first
            matching.append(_from(at, entry_id, inclusive=True))
    after: tuple[datetime, int] | None = None
    while True:
        query = select(TABLE).where(*matching)
        if after is not None:
            at, entry_id = after
            query = query.where(_from(at, entry_id, inclusive=False))
        page = _read(ledger, query.order_by(c.scheduled_for, c.id).limit(size))
        if page:
            yield page
        if len(page) < size:
            return
        after = page[-1].scheduled_for, page[-1].id


def _from(at: datetime, entry_id: int, *, inclusive: bool) -> ColumnElement[bool]:
    """Select the rows after the key (``at``, ``entry_id``), or from it on when inclusive.

    ``scheduled_for >= at`` is implied by the rest, and said anyway: it is the bound an
    index on ``scheduled_for`` starts from (PostgreSQL reads an OR as a filter only, and
    would scan from the first row for every page).
    """
    c = TABLE.c
    after = c.id >= entry_id if inclusive else c.id > entry_id
    return and_(c.scheduled_for >= at, or_(c.scheduled_for > at, after))


def _newest_key(
    ledger: Ledger, matching: list[ColumnElement[bool]], limit: int
) -> tuple[datetime, int] | None:
    """Return the key of the ``limit``-th newest matching row, or None if there are fewer."""
    c = TABLE.c
    query = (
        select(c.scheduled_for, c.id)
        .where(*matching)
        .order_by(c.scheduled_for.desc(), c.id.desc())
        .offset(limit - 1)
        .limit(1)
    )
    try:
        with ledger.engine.connect() as connection:
            row = connection.execute(query).first()
    except (OperationalError, ProgrammingError) as exc:
        raise LedgerError(f"the ledger could not be read: {cause(exc)}") from None
    return None if row is None else (row.scheduled_for, row.id)


def _read(ledger: Ledger, query: Select[Any]) -> list[Entry]:
    try:
        with ledger.engine.connect() as connection:
            result = connection.execute(query)
            build = _builder(list(result.keys()))
            return [build(row) for row in result]
    except (OperationalError, ProgrammingError) as exc:
        raise LedgerError(f"the ledger could not be read: {cause(exc)}") from None


# Entry's fields by name, as the columns are named; tuples where a row holds a JSON list.
# Built here by name (not by the ledger's private row builder), so a column added later
# with a field of the same name is carried without a change here.
_FIELDS = tuple((f.name, str(f.type).startswith("tuple")) for f in fields(Entry))


def _builder(columns: list[str]) -> Callable[[Sequence[Any]], Entry]:
    """Return what builds an Entry from a row of these columns (by position: a million rows)."""
    where = {name: i for i, name in enumerate(columns)}
    plan = [(name, where[name], is_tuple) for name, is_tuple in _FIELDS if name in where]

    def build(row: Sequence[Any]) -> Entry:
        values: dict[str, Any] = {
            name: tuple(row[i] or ()) if is_tuple else row[i] for name, i, is_tuple in plan
        }
        return Entry(**values)

    return build
