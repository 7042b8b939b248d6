"""Pure planning: campaigns and a window in, occurrences with stable identities out.

Schedules are computed on the wall clock of the campaign's zone with
APScheduler's triggers (run in UTC, where no clock ever changes), then each wall
time is placed in the zone by :func:`scheduler.timeutil.localize`. So a local time
skipped in spring moves forward, and one repeated in autumn fires once: the
triggers never see a daylight-saving change.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Literal, NamedTuple

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from scheduler.campaigns import Campaign, Person, Post
from scheduler.timeutil import cron_fields, end_of, localize, start_of, to_zone

Status = Literal["due", "paused", "skipped"]
_SLACK = timedelta(days=1)  # wall-clock margin around a window, for zone offsets


class Occurrence(NamedTuple):
    """One post to one account at one instant (featuring one person, or none)."""

    campaign: str
    post: str
    account: str
    scheduled_for: datetime  # aware, in the campaign's zone
    person: str | None
    n: int  # the post's occurrence number counted from the campaign's starts (rotation)
    status: Status = "due"
    reason: str = ""

    @property
    def key(self) -> str:
        """Identify the occurrence; stable across edits of templates and restarts."""
        instant = self.scheduled_for.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.campaign}/{self.post}/{self.account}/{instant}/{self.person or '-'}"

    @property
    def local_date(self) -> date:
        """Return the date of the occurrence in the campaign's zone."""
        return self.scheduled_for.date()


def _wall(moment: datetime, campaign: Campaign) -> datetime:
    """Return the campaign-zone wall time of an instant, as a naive datetime."""
    return moment.astimezone(campaign.tz).replace(tzinfo=None)


def _as_utc_wall(naive: datetime) -> datetime:
    return naive.replace(tzinfo=UTC)


@lru_cache(maxsize=4096)
def _cron_trigger(expr: str) -> CronTrigger:
    return CronTrigger(**cron_fields(expr), timezone=UTC)


@lru_cache(maxsize=8192)
def _cron_month(expr: str, year: int, month: int) -> tuple[datetime, ...]:
    """Return a cron expression's wall-clock fire times in one month.

    Campaigns share a handful of expressions (``0 11 * * *``), and the daemon
    plans the same months again and again: a month is computed once.
    """
    trigger = _cron_trigger(expr)
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    found = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        found.append(fire.replace(tzinfo=None))
        fire = trigger.get_next_fire_time(fire, fire)
    return tuple(found)


def _cron_walls(expr: str, wall_from: datetime) -> Iterator[datetime]:
    """Yield a cron expression's wall-clock fire times from ``wall_from`` on, forever."""
    year, month = wall_from.year, wall_from.month
    while year <= 9998:
        walls = _cron_month(expr, year, month)
        if not walls:  # jump to the next month that has a fire time, if any
            upcoming = _cron_trigger(expr).get_next_fire_time(
                None, datetime(year, month, 1, tzinfo=UTC)
            )
            if upcoming is None:
                return
            year, month = upcoming.year, upcoming.month
            continue
        for wall in walls:
            if wall >= wall_from:
                yield wall
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _wall_times(campaign: Campaign, post: Post, wall_from: datetime) -> Iterator[datetime]:
    """Yield the post's wall-clock fire times from ``wall_from`` on, in order."""
    if post.at is not None:
        walls = sorted(
            when.astimezone(campaign.tz).replace(tzinfo=None) if when.tzinfo else when
            for when in post.at
        )
        yield from (w for w in walls if w >= wall_from)
        return
    if post.cron is not None:
        yield from _cron_walls(post.cron, wall_from)
        return
    interval = post.every_delta
    assert interval is not None
    anchor = post.anchor or start_of(campaign.starts or date(1970, 1, 1), campaign.tz)
    anchor_wall = _wall(anchor, campaign) if anchor.tzinfo else anchor
    trigger = IntervalTrigger(
        seconds=interval.total_seconds(), start_date=_as_utc_wall(anchor_wall), timezone=UTC
    )
    now = _as_utc_wall(wall_from)
    fire = trigger.get_next_fire_time(None, now)
    while fire is not None:
        yield fire.replace(tzinfo=None)
        fire = trigger.get_next_fire_time(fire, fire)


def instants(
    campaign: Campaign, post: Post, start: datetime, end: datetime
) -> Iterator[tuple[int, datetime]]:
    """Yield ``(n, instant)`` for each occurrence of a post in ``[start, end)``.

    ``n`` counts occurrences from the campaign's ``starts`` (0 for the first) when
    the post rotates; otherwise it is only the order within the window. The
    count up to a few days before the window is arithmetic (``every``) or by
    whole months (``cron``), so a campaign that started years ago costs no more
    than one that started last week.
    """
    tz = campaign.tz
    lo = start
    if campaign.starts is not None:
        lo = max(lo, start_of(campaign.starts, tz))
    hi = end
    if campaign.ends is not None:
        hi = min(hi, end_of(campaign.ends, tz))
    if lo >= hi:
        return
    count_from = lo
    n = 0
    if post.rotate and campaign.starts is not None:
        count_from = start_of(campaign.starts, tz)
        skip_to = lo - 2 * _SLACK  # near the window, count one by one (zone changes)
        if skip_to > count_from + 2 * _SLACK and post.at is None:
            n = _count_walls(campaign, post, _wall(count_from, campaign), _wall(skip_to, campaign))
            count_from = skip_to
    recent: list[datetime] = []
    for wall in _wall_times(campaign, post, _wall(count_from, campaign) - _SLACK):
        moment = localize(wall, tz)
        if moment >= hi and wall > _wall(hi, campaign) + _SLACK:
            return
        if moment < count_from or moment >= hi:
            continue
        if moment in recent:  # two wall times in a spring gap can land on one instant
            continue
        recent = [*recent[-3:], moment]
        if moment >= lo:
            yield n, moment
        n += 1


def _count_walls(campaign: Campaign, post: Post, wall_from: datetime, wall_to: datetime) -> int:
    """Count a repeating post's wall-clock fire times in ``[wall_from, wall_to)``, fast."""
    if post.cron is not None:
        return _cron_count(post.cron, wall_from, wall_to)
    interval = post.every_delta
    assert interval is not None
    anchor = post.anchor or start_of(campaign.starts or date(1970, 1, 1), campaign.tz)
    anchor_wall = _wall(anchor, campaign) if anchor.tzinfo else anchor
    step = interval.total_seconds()

    def fired_before(wall: datetime) -> int:  # fire times anchor + k*step (k >= 0) before wall
        return max(0, math.ceil((wall - anchor_wall).total_seconds() / step))

    return max(0, fired_before(wall_to) - fired_before(wall_from))


def _cron_count(expr: str, wall_from: datetime, wall_to: datetime) -> int:
    """Count a cron expression's wall-clock fire times in ``[wall_from, wall_to)``."""
    first_day = wall_from.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    last_day = wall_to.replace(hour=0, minute=0, second=0, microsecond=0)
    if first_day >= last_day:
        return _cron_between(expr, wall_from, wall_to)
    count = _cron_between(expr, wall_from, first_day) + _cron_between(expr, last_day, wall_to)
    day = first_day
    while day < last_day:  # whole days: by whole months where it can
        month_end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1)
        if day.day == 1 and month_end <= last_day:
            count += _cron_month_count(expr, day.year, day.month)
            day = month_end
        else:
            upto = min(month_end, last_day)
            count += _cron_between(expr, day, upto)
            day = upto
    return count


@lru_cache(maxsize=65536)
def _cron_month_count(expr: str, year: int, month: int) -> int:
    """Count a cron expression's fire times in one month without listing them.

    The hour and minute fields do not depend on the day: a month holds (its
    matching days) x (the fire times of one matching day).
    """
    trigger = _cron_trigger(expr)
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    days = 0
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        days += 1
        midnight = fire.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        fire = trigger.get_next_fire_time(None, midnight)
    return days * _cron_per_day(expr) if days else 0


@lru_cache(maxsize=4096)
def _cron_per_day(expr: str) -> int:
    """Count the fire times of a cron expression on any day it fires."""
    trigger = _cron_trigger(expr)
    fire = trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC))
    if fire is None:
        return 0
    day_end = fire.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    count = 0
    while fire is not None and fire < day_end:
        count += 1
        fire = trigger.get_next_fire_time(fire, fire)
    return count


def _cron_between(expr: str, wall_from: datetime, wall_to: datetime) -> int:
    """Count fire times in ``[wall_from, wall_to)`` from the months' cached lists."""
    count = 0
    year, month = wall_from.year, wall_from.month
    while datetime(year, month, 1) < wall_to:
        count += sum(1 for w in _cron_month(expr, year, month) if wall_from <= w < wall_to)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return count


def next_instant(campaign: Campaign, post: Post, after: datetime) -> datetime | None:
    """Return the first instant of a post at or after ``after``, looking up to ten years on."""
    for _, moment in instants(campaign, post, after, after + timedelta(days=3653)):
        return moment
    return None


def _people_for(campaign: Campaign, post: Post, n: int, day: date) -> list[Person | None] | str:
    """Return whom an occurrence features, or the reason it features no one."""
    if not (post.rotate or post.for_each):
        return [None]
    detained = [p for p in campaign.people if not p.released_by(day)]
    if not detained:
        return "everyone this post speaks for has been released"
    if post.rotate:
        return [detained[n % len(detained)]]
    return list(detained)


def plan_post(
    campaign: Campaign, post: Post, start: datetime, end: datetime, account: str | None = None
) -> Iterator[Occurrence]:
    """Expand one post into its occurrences for every account (or just ``account``) and person."""
    accounts = post.accounts if post.accounts is not None else campaign.accounts
    if account is not None:
        accounts = [a for a in accounts if a == account]
    for n, moment in instants(campaign, post, start, end):
        whom = _people_for(campaign, post, n, moment.date())
        status: Status = "paused" if campaign.paused else "due"
        reason = "the campaign is paused" if campaign.paused else ""
        if isinstance(whom, str):
            # Nobody to feature is skipped before anything else, paused or not: a
            # "paused" row is still rendered for preview, and no template may run
            # for an occurrence whose person was released.
            people: list[Person | None] = [None]
            status, reason = "skipped", whom
        else:
            people = whom
        for account in accounts:
            for person in people:
                yield Occurrence(
                    campaign.name,
                    post.id,
                    account,
                    moment,
                    person.id if person else None,
                    n,
                    status,
                    reason,
                )


def plan(
    campaigns: Iterable[Campaign], start: datetime, end: datetime, *, post: str | None = None
) -> list[Occurrence]:
    """Return every occurrence in ``[start, end)``, ordered by instant.

    A naive ``start``/``end`` is wall-clock time in each campaign's own zone.
    """
    found: list[Occurrence] = []
    for campaign in campaigns:
        lo, hi = to_zone(start, campaign.tz), to_zone(end, campaign.tz)
        for item in campaign.posts:
            if post is None or item.id == post:
                found.extend(plan_post(campaign, item, lo, hi))
    found.sort(key=order)
    return found


def jitter_of(occ: Occurrence, jitter: timedelta | None) -> timedelta:
    """Return how much after its instant an occurrence goes out, under a post's ``jitter``.

    The delay is drawn from the occurrence's key, so it is the same on every run
    and after a restart, and the occurrence keeps its identity (its instant).
    """
    if not jitter or jitter <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(occ.key.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=int(fraction * jitter.total_seconds()))


def order(o: Occurrence) -> tuple[datetime, str, str, str, str]:
    """Sort key of occurrences: by instant, then campaign, post, account and person."""
    return (o.scheduled_for, o.campaign, o.post, o.account, o.person or "")


def occurrences_in(campaigns: Sequence[Campaign], start: datetime, days: int) -> list[Occurrence]:
    """Return the occurrences of ``days`` days from ``start``."""
    return plan(campaigns, start, start + timedelta(days=days))
