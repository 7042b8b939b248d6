"""The few ledger rows ``status`` shows, read by index however long the ledger has grown.

``status`` shows per campaign the last sends, the failures and the rows that need
a human, and which accounts had their credentials refused. Each is a query that
an index answers (``ix_deliveries_campaign_status``: campaign, status, then the
newest first; refusals of the last 30 days by ``ix_deliveries_status_time``), never a
read of every row: a ledger of a million rows answers as
fast as one of a thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from scheduler.errors import LedgerError, cause
from scheduler.ledger import TABLE, Entry, Ledger, entry_of

LAST_SENT = 5
LAST_FAILED = 10
NEEDS_A_HUMAN = ("failed", "uncertain")
REFUSALS = timedelta(days=30)  # how far back a refused credential is still news


@dataclass
class StatusRows:
    """What ``status`` shows of the ledger: a few rows per campaign, and counts."""

    entries: list[Entry] = field(default_factory=list)  # oldest scheduled first
    attention: dict[str, int] = field(default_factory=dict)  # failed and uncertain, by campaign
    refused: dict[str, str] = field(default_factory=dict)  # account: its refused credentials


def status_rows(ledger: Ledger, campaigns: Sequence[str], now: datetime) -> StatusRows:
    """Read the last sends, failures and uncertain rows of each campaign, and recent refusals."""
    c = TABLE.c
    newest = (c.scheduled_for.desc(), c.id.desc())
    found = StatusRows()
    rows: dict[int, Entry] = {}
    try:
        with ledger.engine.connect() as connection:
            for name in campaigns:
                for status, limit in (("sent", LAST_SENT), ("failed", LAST_FAILED)):
                    query = select(TABLE).where(c.campaign == name, c.status == status)
                    for row in connection.execute(query.order_by(*newest).limit(limit)):
                        rows[row.id] = entry_of(row)
                uncertain = select(TABLE).where(c.campaign == name, c.status == "uncertain")
                for row in connection.execute(uncertain):
                    rows[row.id] = entry_of(row)
                count = select(func.count()).where(c.campaign == name, c.status.in_(NEEDS_A_HUMAN))
                found.attention[name] = int(connection.execute(count).scalar() or 0)
            refusals = (
                select(c.account, c.error)
                .where(
                    c.status == "failed",
                    c.scheduled_for >= now - REFUSALS,
                    or_(c.error.contains("HTTP 401"), c.error.contains("HTTP 403")),
                )
                .order_by(c.scheduled_for, c.id)
            )
            for account, error in connection.execute(refusals):
                found.refused[account] = error
    except Exception as exc:
        raise LedgerError(f"the ledger could not be read: {cause(exc)}") from None
    found.entries = sorted(rows.values(), key=lambda e: (e.scheduled_for, e.id))
    return found
