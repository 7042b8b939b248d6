"""Where a row's occurrence comes from in the files in force, or why it is gone. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.decision import Due
from scheduler.errors import RenderError
from scheduler.holds import Hold
from scheduler.ledger import Entry
from scheduler.planning import Occurrence, jitter_of, plan_post
from scheduler.project import Project

DEFAULT_GRACE = timedelta(minutes=15)  # how late a due occurrence may still go out
_TICK = timedelta(microseconds=1)

Located = tuple[LoadedCampaign, Post, Occurrence, Account]  # where a row's occurrence comes from


class Identified(Protocol):
    """A ledger row or a claim: an occurrence's identity."""

    @property
    def key(self) -> str: ...
    @property
    def campaign(self) -> str: ...
    @property
    def post(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def person(self) -> str | None: ...
    @property
    def scheduled_for(self) -> datetime: ...


def grace_of(post: Post) -> timedelta:
    """Return how late an occurrence of a post may still go out."""
    return post.grace if post.grace is not None else DEFAULT_GRACE


def due_of(occ: Occurrence, post: Post) -> Due:
    """Describe an occurrence for the decision: its identity, when it goes out, its grace."""
    return Due(
        occ.campaign,
        occ.post,
        occ.account,
        occ.person,
        occ.scheduled_for,
        occ.scheduled_for + jitter_of(occ, post.jitter),
        grace_of(post),
    )


def repeats(post: Post) -> bool:
    """Say whether a post's occurrences form a series (cron, every): only the latest catches up."""
    return post.cron is not None or post.every is not None


def locate(project: Project, entry: Identified) -> Located | str:
    """Plan a row's occurrence again from the files in force, or say why it no longer goes out.

    The answer depends on the files and the row alone, not on the time.
    """
    lc = project.campaign(entry.campaign)
    if lc is None:
        return f"campaign '{entry.campaign}' is no longer in the campaign files"
    c = lc.campaign
    post = next((p for p in c.posts if p.id == entry.post), None)
    if post is None:
        return f"post '{entry.post}' was removed from {c.name}"
    account = project.accounts.get(entry.account)
    names = post.accounts if post.accounts is not None else c.accounts
    if account is None or entry.account not in names:
        return f"post '{entry.post}' no longer goes to {entry.account}"
    instant = entry.scheduled_for.astimezone(c.tz)
    fresh = list(plan_post(c, post, instant, instant + _TICK, entry.account))
    for occ in fresh:
        if occ.key == entry.key:
            return (lc, post, occ, account) if occ.status == "due" else occ.reason
    person = c.person(entry.person) if entry.person else None
    if person is not None and person.released_by(instant.date()):
        return f"{person.name} was released on {person.released_on}"
    if c.ends is not None and not fresh:
        return f"the campaign ended ({c.ends})"
    if fresh and all(o.status != "due" for o in fresh):
        return fresh[0].reason
    return f"post '{entry.post}' is no longer scheduled at {instant:%Y-%m-%d %H:%M %Z}"


def replacements(project: Project, entry: Identified) -> list[Located]:
    """When a release changed whom a rotating slot features, return the new person's occurrences."""
    lc = project.campaign(entry.campaign)
    if lc is None or entry.person is None:
        return []
    post = next((p for p in lc.campaign.posts if p.id == entry.post), None)
    account = project.accounts.get(entry.account)
    if post is None or account is None or not post.rotate:
        return []  # for_each: the others of the slot have rows of their own already
    instant = entry.scheduled_for.astimezone(lc.campaign.tz)
    return [
        (lc, post, o, account)
        for o in plan_post(lc.campaign, post, instant, instant + _TICK, entry.account)
        if o.status == "due" and o.key != entry.key
    ]


def plan_window(
    project: Project, since: dict[str, datetime] | datetime, now: datetime
) -> list[Located]:
    """Plan every occurrence in ``(since, now]`` (``since`` per campaign/post, or one for all)."""
    found: list[Located] = []
    for lc in project.campaigns:
        tz = lc.campaign.tz
        for post in lc.campaign.posts:
            start = since if isinstance(since, datetime) else since[f"{lc.campaign.name}/{post.id}"]
            lo, hi = start + _TICK, now + _TICK
            if lo >= hi:
                continue
            for occ in plan_post(lc.campaign, post, lo.astimezone(tz), hi.astimezone(tz)):
                account = project.accounts.get(occ.account)
                if account is not None:
                    found.append((lc, post, occ, account))
    return found


def touches(hold: Hold, lc: LoadedCampaign, post: Post) -> bool:
    """Say whether a hold covers some occurrence of a post (any person)."""
    names = post.accounts if post.accounts is not None else lc.campaign.accounts
    return (
        hold.campaign in (None, lc.campaign.name)
        and hold.post in (None, post.id)
        and (hold.account is None or hold.account in names)
    )


_NOTHING_WENT = ("skipped", "missed", "failed", "held")


def went_already(
    project: Project,
    rows: Sequence[Entry],
    lc: LoadedCampaign,
    post: Post,
    occ: Occurrence,
    account: Account,
) -> str | None:
    """Say why a late new occurrence must not go out: its slot went out under another identity.

    Another row of the same account at the same instant, of the same post (a
    campaign renamed, or a rotation that a release moved to someone else), or of
    the same campaign with the same text (a post renamed).
    """
    text: tuple[str, ...] | None = None
    for row in rows:
        if row.key == occ.key or row.status in _NOTHING_WENT:
            continue
        same = row.post == occ.post
        if not same and row.campaign == occ.campaign:
            if text is None:
                try:
                    text = project.renderer.message(lc, post, occ, account).parts
                except RenderError:
                    text = ()
            same = bool(text) and tuple(row.parts) == text
        if same:
            where = row.remote_url or row.status
            return f"this slot went out already as {row.key} ({where}); not posted again"
    return None
