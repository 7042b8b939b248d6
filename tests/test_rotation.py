"""Rotation in constant time: whom an occurrence features does not depend on how it is counted.

The count of a rotating post's occurrences since the campaign's ``starts`` is
arithmetic (``every``) or by whole months (``cron``) up to a few days before the
window; it must give exactly what counting one by one gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from scheduler.campaigns import Campaign, Post
from scheduler.planning import _SLACK, _wall, _wall_times, instants
from scheduler.timeutil import end_of, localize, start_of, zone


def one_by_one(
    campaign: Campaign, post: Post, start: datetime, end: datetime
) -> Iterator[tuple[int, datetime]]:
    """The count as it was: every occurrence from the campaign's starts, one by one."""
    tz = campaign.tz
    lo = max(start, start_of(campaign.starts, tz)) if campaign.starts else start
    hi = min(end, end_of(campaign.ends, tz)) if campaign.ends else end
    count_from = start_of(campaign.starts, tz) if campaign.starts else lo
    n, recent = 0, []
    for wall in _wall_times(campaign, post, _wall(count_from, campaign) - _SLACK):
        moment = localize(wall, tz)
        if moment >= hi and wall > _wall(hi, campaign) + _SLACK:
            return
        if moment < count_from or moment >= hi or moment in recent:
            continue
        recent = [*recent[-3:], moment]
        if moment >= lo:
            yield n, moment
        n += 1


def campaign(timezone: str, starts: date, **post: object) -> tuple[Campaign, Post]:
    p = Post.model_validate({"id": "p", "rotate": "people", "text": "x", **post})
    c = Campaign.model_validate(
        {
            "name": "c",
            "title": "C",
            "timezone": timezone,
            "starts": starts,
            "accounts": ["a"],
            "people": [{"id": f"p{i}", "name": f"P{i}"} for i in range(7)],
            "posts": [p.model_dump(exclude_none=True)],
        }
    )
    return c, c.posts[0]


SCHEDULES = [
    {"every": "3d"},
    {"every": "1d"},
    {"every": "7h"},
    {"every": "90m"},
    {"cron": "0 11 * * *"},
    {"cron": "30 1 * * *"},  # inside London's spring gap once a year
    {"cron": "*/20 9-17 * * 1-5"},
    {"cron": "0 9 1,15 * *"},
    {"cron": "0 10 29 2 *"},
]


@pytest.mark.parametrize("timezone", ["Asia/Baku", "Europe/London", "America/New_York"])
@pytest.mark.parametrize("schedule", SCHEDULES, ids=[str(s) for s in SCHEDULES])
def test_the_fast_count_is_the_count_one_by_one(timezone: str, schedule: dict[str, str]) -> None:
    c, p = campaign(timezone, date(2022, 1, 3), **schedule)
    tz = zone(timezone)
    for lo in (
        datetime(2022, 1, 20, 8, 0, tzinfo=tz),
        datetime(2024, 3, 30, 0, 0, tzinfo=tz),  # around spring forward
        datetime(2025, 10, 25, 12, 0, tzinfo=tz),  # around autumn back
        datetime(2026, 12, 1, 10, 0, tzinfo=tz),
    ):
        hi = lo + timedelta(days=9)
        assert list(instants(c, p, lo, hi)) == list(one_by_one(c, p, lo, hi)), lo


def test_a_rotating_post_every_minute_since_2000_is_counted_at_once() -> None:
    c, p = campaign("Europe/London", date(2000, 1, 1), every="1m")
    lo = datetime(2026, 12, 1, 10, 0, tzinfo=zone("Europe/London"))
    found = list(instants(c, p, lo, lo + timedelta(minutes=3)))  # one by one: 14 million steps
    minutes = int((lo - start_of(date(2000, 1, 1), c.tz)).total_seconds() // 60)
    assert [n for n, _ in found] == [minutes, minutes + 1, minutes + 2]
