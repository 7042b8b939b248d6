"""What people do by hand on the ledger: settle an uncertain row, and the guards of ``send``.

``resolve`` updates a row only while it is still ``uncertain`` (a conditional
UPDATE), so a read-back by a daemon and a person can never both settle it.
``send`` refuses what a hold covers, and what already went to an account in the
last 24 hours (or may have: an uncertain or in-flight row), unless ``--again``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from scheduler.campaigns import LoadedCampaign, Post
from scheduler.errors import LedgerError, SolidarityError, cause
from scheduler.holds import Hold, HoldStore, covering
from scheduler.ledger import IN_FLIGHT, TABLE, Entry, Ledger
from scheduler.planning import Occurrence, next_instant
from scheduler.redact import redact_optional

NOT_SENT = "not sent, per a person"
SENT = "sent, per a person"
RECENT = timedelta(hours=24)  # what `send` counts as "already went"


def resolve(ledger: Ledger, key: str, url: str | None, why: str | None, now: datetime) -> Entry:
    """Settle an uncertain row: ``sent`` at ``url`` (url given) or ``failed`` (url None)."""
    c = TABLE.c
    why = redact_optional(why)
    if url is not None:
        values = {
            "status": "sent",
            "remote_url": url,
            "sent_at": now,
            "reason": why or SENT,
            "error": None,
        }
    else:
        values = {"status": "failed", "error": f"{NOT_SENT}: {why}" if why else NOT_SENT}
    statement = (
        update(TABLE)
        .where(c.key == key, c.status == "uncertain")
        .values(**values, next_attempt_at=None, updated_at=now)
    )
    try:
        with ledger.engine.begin() as connection:
            changed = connection.execute(statement).rowcount
    except SQLAlchemyError as exc:
        raise LedgerError(f"the ledger could not be written: {cause(exc)}") from None
    entry = ledger.get(key)
    if entry is None:
        raise SolidarityError(
            f"no ledger row has the key {key!r}; `solidarity history --format json` shows the keys"
        )
    if not changed:
        raise SolidarityError(
            f"{key} is {entry.status}, not uncertain; only an uncertain row can be resolved"
        )
    return entry


def read_holds(url: str) -> list[Hold]:
    """Read the holds of an existing ledger without migrating or writing it."""
    ledger = Ledger.open(url, migrate=False)
    try:
        return HoldStore(ledger).all()
    finally:
        ledger.close()


def recent(ledger: Ledger, occ: Occurrence, featured: bool, now: datetime) -> Entry | None:
    """Return the row saying this post went (or may have gone) to this account in 24 hours.

    A ``sent`` row counts from its ``sent_at``; an uncertain or in-flight row from
    when it was claimed. When the post features people, only rows featuring the
    same person count.
    """
    c = TABLE.c
    since = now - RECENT
    query = (
        select(TABLE)
        .where(c.campaign == occ.campaign, c.post == occ.post, c.account == occ.account)
        .where(
            or_(
                and_(c.status == "sent", c.sent_at > since),
                and_(c.status.in_(["uncertain", *IN_FLIGHT]), c.created_at > since),
            )
        )
        .order_by(func.coalesce(c.sent_at, c.created_at).desc(), c.id.desc())
        .limit(1)
    )
    if featured:
        query = query.where(c.person == occ.person)
    try:
        with ledger.engine.connect() as connection:
            row = connection.execute(query).first()
    except SQLAlchemyError as exc:
        raise LedgerError(f"the ledger could not be read: {cause(exc)}") from None
    return None if row is None else ledger.get(row.key)


def refusals(
    lc: LoadedCampaign,
    post: Post,
    occurrences: Sequence[Occurrence],
    holds: Sequence[Hold],
    ledger: Ledger | None,
    now: datetime,
    again: bool,
) -> list[str]:
    """Say why each occurrence of a manual send must not go out (empty: all may go).

    A hold is always obeyed; a recent send is sent again only with ``again``.
    """
    from scheduler.holdreports import lift_hint

    out: list[str] = []
    tz = lc.campaign.tz
    featured = bool(post.rotate or post.for_each)
    for occ in occurrences:
        where = f"{occ.account}{f' [{occ.person}]' if occ.person else ''}"
        hold = covering(holds, occ.campaign, occ.post, occ.account, occ.person)
        if hold is not None:
            out.append(f"{where}: held: {hold.what}: {hold.why} ({lift_hint(hold)})")
            continue
        if again or ledger is None:
            continue
        entry = recent(ledger, occ, featured, now)
        if entry is None:
            continue
        if entry.status == "sent":
            sent_at = (entry.sent_at or entry.created_at).astimezone(tz)
            url = entry.remote_url or entry.remote_id or "no public URL"
            upcoming = next_instant(lc.campaign, post, now)
            nxt = (
                f"next scheduled {upcoming.astimezone(tz):%Y-%m-%d %H:%M %Z}"
                if upcoming is not None
                else "not scheduled again"
            )
            out.append(
                f"{where}: {occ.campaign}/{occ.post} already went there at "
                f"{sent_at:%Y-%m-%d %H:%M %Z}: {url}; {nxt}; add --again to send it anyway"
            )
        else:
            claimed = entry.created_at.astimezone(tz)
            settle = (
                f"settle it first: solidarity resolve {entry.key} --sent URL (or --not-sent)"
                if entry.status == "uncertain"
                else "a daemon may be sending it now"
            )
            out.append(
                f"{where}: the send of {claimed:%Y-%m-%d %H:%M %Z} is {entry.status} and may "
                f"have gone out; {settle}; add --again to send it anyway"
            )
    return out


def free_instant(ledger: Ledger | None, occurrences: Sequence[Occurrence]) -> list[Occurrence]:
    """Move a manual send's instant on by whole seconds until none of its keys has a row.

    A manual send is a new occurrence at the moment it is asked for; two of them
    within one second (or one at a fixed ``--now``) must not share a key.
    """
    found = list(occurrences)
    if ledger is None or not found:
        return found
    for _ in range(3600):
        if not ledger.existing([o.key for o in found]):
            return found
        found = [o._replace(scheduled_for=o.scheduled_for + timedelta(seconds=1)) for o in found]
    raise SolidarityError(
        "an hour of manual sends is already recorded from this instant; try later"
    )
