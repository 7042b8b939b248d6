"""Catch up: settle every occurrence that fell due, once, and say what became of it.

What is due within its grace is sent; what is older is recorded ``missed``; what
a paused campaign or a release stopped is recorded ``skipped``. An occurrence
that already has a ledger row is left alone, so running this twice sends
nothing twice. ``solidarity run --once`` is this, once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from scheduler.dispatch import Dispatcher, claim_for
from scheduler.ledger import Entry
from scheduler.planning import plan_post
from scheduler.timeutil import format_duration

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(minutes=15)
LOOKBACK = timedelta(days=7)  # how far back a missed occurrence is still worth a row


def sweep(dispatcher: Dispatcher, now: datetime, lookback: timedelta = LOOKBACK) -> list[Entry]:
    """Settle every occurrence due in ``(now - lookback, now]`` that has no row yet."""
    project, ledger = dispatcher.project, dispatcher.ledger
    settled: list[Entry] = []
    for lc in project.campaigns:
        tz = lc.campaign.tz
        for post in lc.campaign.posts:
            grace = post.grace if post.grace is not None else DEFAULT_GRACE
            window = plan_post(
                lc.campaign,
                post,
                (now - lookback).astimezone(tz),
                now.astimezone(tz) + timedelta(microseconds=1),
            )
            for occ in window:
                account = project.accounts.get(occ.account)
                if account is None or ledger.get(occ.key) is not None:
                    continue
                claim = claim_for(occ, account)
                late = now - occ.scheduled_for
                entry: Entry | None
                if occ.status != "due":
                    entry = ledger.record(claim, "skipped", occ.reason, now)
                elif late > grace:
                    reason = (
                        f"due {occ.scheduled_for:%Y-%m-%d %H:%M %Z} while no daemon ran; "
                        f"{format_duration(late)} late is past its grace of {format_duration(grace)}"
                    )
                    entry = ledger.record(claim, "missed", reason, now)
                else:
                    entry = dispatcher.deliver(lc, post, occ, account)
                if entry is not None:
                    settled.append(entry)
    return settled
