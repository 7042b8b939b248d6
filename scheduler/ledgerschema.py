"""The ledger's tables and rows: what the send log stores, and how a row looks to the program.

Times are stored as naive UTC and read back aware. ``deliveries`` is one row
per occurrence and account; ``paces`` is one row per account that several
daemons share (when it may post next). The SQL that writes them is in
:mod:`scheduler.ledger`; the schema's history in ``scheduler/migrations``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, DateTime, Index, Integer, String, Table, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
        # `status`: a campaign's last sends, failures and uncertain rows, newest first
        Index("ix_deliveries_campaign_status", "campaign", "status", "scheduled_for", "id"),
        # `history`'s pages: a keyset of (scheduled_for, id); and `history --campaign`'s
        Index("ix_deliveries_scheduled_id", "scheduled_for", "id"),
        Index("ix_deliveries_campaign_time", "campaign", "scheduled_for", "id"),
        # rows in flight (start-up, leases, orphans), and recent failures, oldest first
        Index("ix_deliveries_status_time", "status", "scheduled_for", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    campaign: Mapped[str] = mapped_column(String(200))
    post: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(40))
    person: Mapped[str | None] = mapped_column(String(200))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    parts: Mapped[list[str] | None] = mapped_column(JSON)
    remote_id: Mapped[str | None] = mapped_column(Text)
    remote_url: Mapped[str | None] = mapped_column(Text)
    remote_ids: Mapped[list[str] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    # while in flight: the instant after which the owner counts as gone (it renews it)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


TABLE: Table = Delivery.__table__  # type: ignore[assignment]  # it is a Table


class Pace(Base):
    """When an account may post next, for every daemon on the ledger (pace, rate limits)."""

    __tablename__ = "paces"

    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)
    owner: Mapped[str | None] = mapped_column(String(200))  # who took the last turn
    why: Mapped[str | None] = mapped_column(Text)  # a platform's limit, when it set next_at


PACES: Table = Pace.__table__  # type: ignore[assignment]  # it is a Table


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
    lease_until: datetime | None = None

    @property
    def text(self) -> str:
        """Return the whole text sent (a thread's parts separated by blank lines)."""
        return "\n\n".join(self.parts)


def entry_of(row: Any) -> Entry:
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
        row.lease_until,
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
