"""One decision before every request: may this occurrence go out now?

The daemon, ``run --once`` and ``send`` ask :func:`decide` right before each
request, with everything it depends on: whether the files in force still send
the occurrence (or why not), the holds in force (commands and file problems),
what the ledger knows of it, and ``now``. Pure: no clock, no I/O.

The order is the product's promise: stopping wins over everything (a pause, a
release, an end, a removed post is ``skipped`` even while held); a hold makes it
wait, and past its grace it ends ``held``; then time (not yet due: wait; a newer
occurrence of the same series is due: this one is ``missed``, superseded; too
late: ``missed``); only then is it sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from scheduler.holds import Hold as HoldRule
from scheduler.timeutil import format_duration


@dataclass(frozen=True)
class Send:
    """Send it now."""


@dataclass(frozen=True)
class Skip:
    """It no longer goes out (paused, released, ended, removed): record ``skipped``."""

    reason: str


@dataclass(frozen=True)
class Hold:
    """A hold stops it: wait, and decide again when holds change or at ``until``."""

    reason: str
    until: datetime


@dataclass(frozen=True)
class Miss:
    """Too late to send: record ``missed`` (or ``held``, when a hold kept it) with the reason."""

    reason: str
    status: Literal["missed", "held"] = "missed"


@dataclass(frozen=True)
class Wait:
    """Not yet: decide again at ``until``."""

    until: datetime


Decision = Send | Skip | Hold | Miss | Wait


@dataclass(frozen=True)
class Due:
    """What the decision knows of one occurrence on one account."""

    campaign: str
    post: str
    account: str
    person: str | None
    scheduled_for: datetime  # its identity's instant
    at: datetime  # when it goes out: the instant plus the post's jitter
    grace: timedelta  # how late a first send may still go out


def late_by(late: timedelta, grace: timedelta) -> str:
    """Say that an occurrence is too late to send."""
    return f"{format_duration(late)} late is past its grace of {format_duration(grace)}"


def covering(holds: Sequence[HoldRule], due: Due) -> HoldRule | None:
    """Return the first hold in force that covers an occurrence."""
    return next(
        (h for h in holds if h.covers(due.campaign, due.post, due.account, due.person)), None
    )


def decide(
    due: Due,
    now: datetime,
    *,
    stopped: str | None = None,
    holds: Sequence[HoldRule] = (),
    in_flight_until: datetime | None = None,
    newer: datetime | None = None,
    queued: bool = False,
) -> Decision:
    """Decide what becomes of an occurrence now.

    ``stopped``: why the files in force no longer send it (None: they still do).
    ``holds``: every hold in force. ``in_flight_until``: None for a first send
    (no row yet, grace applies); for a row already tried, the end of its retry
    window. ``newer``: the instant of a later occurrence of the same post,
    account and person that is also due (a repeating post's catch-up).
    ``queued``: it was found due within its grace and has waited on its lane
    since (its account's pace, or a hold now lifted): lateness no longer counts.
    """
    if stopped is not None:
        return Skip(stopped)
    first = in_flight_until is None
    until = due.at + due.grace if in_flight_until is None else in_flight_until
    hold = covering(holds, due)
    if hold is not None:
        reason = f"held ({hold.what}: {hold.why}; source {hold.source})"
        if now >= until:
            late = late_by(now - due.at, due.grace) if first else "its retry window ended"
            return Miss(f"{reason}; {late}", "held")
        return Hold(reason, until)
    if due.at > now:
        return Wait(due.at)
    if not first or queued:
        return Send()
    if now - due.at > due.grace:
        return Miss(
            f"due {due.scheduled_for:%Y-%m-%d %H:%M %Z} while no daemon ran; "
            + late_by(now - due.at, due.grace)
        )
    if newer is not None:
        return Miss(f"superseded by the occurrence of {newer:%Y-%m-%d %H:%M %Z}")
    return Send()
