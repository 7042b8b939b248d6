"""Planning: schedules on the wall clock, daylight-saving rules, rotation, identities."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler.campaigns import Campaign
from scheduler.planning import Occurrence, plan


def campaign(posts: list[dict[str, Any]], **extra: Any) -> Campaign:
    body: dict[str, Any] = {
        "name": "c",
        "title": "C",
        "timezone": "Europe/London",
        "accounts": ["a"],
        "posts": posts,
    }
    body.update(extra)
    return Campaign.model_validate(body)


def local_times(c: Campaign, start: str, end: str) -> list[str]:
    return [
        o.scheduled_for.isoformat()
        for o in plan([c], datetime.fromisoformat(start), datetime.fromisoformat(end))
    ]


DST_CASES = [
    # zone, cron, window start, window end, expected local instants
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        "2026-03-28",
        "2026-03-31",
        [
            "2026-03-28T01:30:00+00:00",
            "2026-03-29T02:30:00+01:00",  # 01:30 does not exist: moved forward by the gap
            "2026-03-30T01:30:00+01:00",
        ],
        id="london-spring-forward",
    ),
    pytest.param(
        "Europe/London",
        "30 1 * * *",
        "2026-10-24",
        "2026-10-27",
        [
            "2026-10-24T01:30:00+01:00",
            "2026-10-25T01:30:00+01:00",  # 01:30 happens twice: fires once, the first time
            "2026-10-26T01:30:00+00:00",
        ],
        id="london-fall-back-once",
    ),
    pytest.param(
        "America/New_York",
        "30 2 * * *",
        "2026-03-07",
        "2026-03-10",
        [
            "2026-03-07T02:30:00-05:00",
            "2026-03-08T03:30:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ],
        id="new-york-spring-forward",
    ),
    pytest.param(
        "America/New_York",
        "30 1 * * *",
        "2026-10-31",
        "2026-11-03",
        [
            "2026-10-31T01:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00",
        ],
        id="new-york-fall-back-once",
    ),
    pytest.param(
        "America/New_York",
        "*/30 1 * * *",
        "2026-11-01",
        "2026-11-02",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00"],
        id="new-york-repeated-hour-half-hourly",
    ),
    pytest.param(
        "Asia/Baku",
        "0 11 * * *",
        "2026-03-28",
        "2026-03-31",
        [
            "2026-03-28T11:00:00+04:00",
            "2026-03-29T11:00:00+04:00",
            "2026-03-30T11:00:00+04:00",
        ],
        id="baku-no-dst",
    ),
]


@pytest.mark.parametrize(("zone", "cron", "start", "end", "expected"), DST_CASES)
def test_cron_across_daylight_saving(
    zone: str, cron: str, start: str, end: str, expected: list[str]
) -> None:
    c = campaign([{"id": "p", "cron": cron, "text": "x"}], timezone=zone)
    assert local_times(c, start, end) == expected


@pytest.mark.parametrize(
    ("cron", "expected_weekdays"),
    [
        ("0 9 * * 0", {"Sun"}),
        ("0 9 * * 7", {"Sun"}),
        ("0 9 * * 1", {"Mon"}),
        ("0 9 * * 1-5", {"Mon", "Tue", "Wed", "Thu", "Fri"}),
        ("0 9 * * 5-7", {"Fri", "Sat", "Sun"}),
        ("0 9 * * sat,sun", {"Sat", "Sun"}),
        ("0 9 * * */2", {"Sun", "Tue", "Thu", "Sat"}),
    ],
)
def test_cron_day_of_week_is_standard_cron(cron: str, expected_weekdays: set[str]) -> None:
    c = campaign([{"id": "p", "cron": cron, "text": "x"}])
    found = plan([c], datetime(2026, 6, 1), datetime(2026, 6, 29))
    assert {o.scheduled_for.strftime("%a") for o in found} == expected_weekdays


def test_every_runs_on_the_wall_clock_from_its_anchor() -> None:
    c = campaign(
        [{"id": "p", "every": "12h", "anchor": "2026-10-24 09:00", "text": "x"}],
    )
    assert local_times(c, "2026-10-24", "2026-10-26T12:00") == [
        "2026-10-24T09:00:00+01:00",
        "2026-10-24T21:00:00+01:00",
        "2026-10-25T09:00:00+00:00",
        "2026-10-25T21:00:00+00:00",
        "2026-10-26T09:00:00+00:00",
    ]


def test_every_counts_from_starts_without_an_anchor() -> None:
    c = campaign([{"id": "p", "every": "3d", "text": "x"}], starts="2026-01-01")
    assert local_times(c, "2026-01-01", "2026-01-12") == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-04T00:00:00+00:00",
        "2026-01-07T00:00:00+00:00",
        "2026-01-10T00:00:00+00:00",
    ]


def test_at_list_with_local_and_offset_times() -> None:
    c = campaign(
        [{"id": "p", "at": ["2026-07-01 10:00", "2026-07-02T10:00+04:00"], "text": "x"}],
    )
    assert local_times(c, "2026-06-01", "2026-08-01") == [
        "2026-07-01T10:00:00+01:00",
        "2026-07-02T07:00:00+01:00",
    ]


def test_starts_and_ends_are_inclusive_dates() -> None:
    c = campaign(
        [{"id": "p", "cron": "0 0,23 * * *", "text": "x"}],
        starts="2026-07-02",
        ends="2026-07-03",
    )
    assert local_times(c, "2026-07-01", "2026-07-06") == [
        "2026-07-02T00:00:00+01:00",
        "2026-07-02T23:00:00+01:00",
        "2026-07-03T00:00:00+01:00",
        "2026-07-03T23:00:00+01:00",
    ]


def test_ends_datetime_is_inclusive() -> None:
    c = campaign(
        [{"id": "p", "cron": "0 * * * *", "text": "x"}],
        ends="2026-07-01 03:00",
    )
    assert local_times(c, "2026-07-01 01:00", "2026-07-02")[-1] == "2026-07-01T03:00:00+01:00"


PEOPLE = [
    {"id": "a", "name": "A"},
    {"id": "b", "name": "B", "released_on": "2026-01-04"},
    {"id": "c", "name": "C"},
]


def test_rotation_counts_from_starts_and_skips_the_released() -> None:
    c = campaign(
        [{"id": "p", "cron": "0 11 * * *", "text": "x", "rotate": "people"}],
        starts="2026-01-01",
        people=PEOPLE,
    )
    # n:        0  1  2  3       4       5 ...
    # detained: abc abc abc  ac(b free) ac
    found = plan([c], datetime(2026, 1, 1), datetime(2026, 1, 8))
    assert [(o.scheduled_for.day, o.n, o.person) for o in found] == [
        (1, 0, "a"),
        (2, 1, "b"),
        (3, 2, "c"),
        (4, 3, "c"),  # detained = [a, c]; 3 mod 2 = 1
        (5, 4, "a"),
        (6, 5, "c"),
        (7, 6, "a"),
    ]


def test_rotation_in_a_later_window_keeps_counting_from_starts() -> None:
    c = campaign(
        [{"id": "p", "cron": "0 11 * * *", "text": "x", "rotate": "people"}],
        starts="2026-01-01",
        people=PEOPLE,
    )
    whole = plan([c], datetime(2026, 1, 1), datetime(2026, 3, 1))
    later = plan([c], datetime(2026, 2, 10), datetime(2026, 3, 1))
    assert later == [o for o in whole if o.scheduled_for.date() >= later[0].local_date]


def test_nobody_left_is_a_skipped_occurrence_with_a_reason() -> None:
    people = [{"id": "a", "name": "A", "released_on": "2026-01-02"}]
    c = campaign(
        [{"id": "p", "cron": "0 11 * * *", "text": "x", "rotate": "people"}],
        starts="2026-01-01",
        people=people,
    )
    found = plan([c], datetime(2026, 1, 1), datetime(2026, 1, 3))
    assert [(o.person, o.status) for o in found] == [("a", "due"), (None, "skipped")]
    assert "released" in found[1].reason


def test_for_each_posts_once_per_person_still_detained() -> None:
    c = campaign(
        [{"id": "p", "cron": "0 11 * * *", "text": "x", "for_each": "people"}],
        people=PEOPLE,
    )
    found = plan([c], datetime(2026, 1, 3), datetime(2026, 1, 5))
    assert [(o.scheduled_for.day, o.person) for o in found] == [
        (3, "a"),
        (3, "b"),
        (3, "c"),
        (4, "a"),
        (4, "c"),
    ]


def test_paused_campaign_plans_occurrences_marked_paused() -> None:
    c = campaign([{"id": "p", "cron": "0 11 * * *", "text": "x"}], paused=True)
    found = plan([c], datetime(2026, 1, 1), datetime(2026, 1, 3))
    assert {o.status for o in found} == {"paused"}


def test_one_occurrence_per_account_with_stable_keys() -> None:
    c = campaign(
        [{"id": "p", "at": "2026-07-01 10:00", "text": "x", "accounts": ["m", "b"]}],
    )
    found = plan([c], datetime(2026, 7, 1), datetime(2026, 7, 2))
    assert sorted(o.key for o in found) == [
        "c/p/b/2026-07-01T09:00:00Z/-",
        "c/p/m/2026-07-01T09:00:00Z/-",
    ]


def test_key_ignores_the_text_and_template() -> None:
    a = campaign([{"id": "p", "at": "2026-07-01 10:00", "text": "one"}])
    b = campaign([{"id": "p", "at": "2026-07-01 10:00", "template": "other"}])
    window = (datetime(2026, 7, 1), datetime(2026, 7, 2))
    assert [o.key for o in plan([a], *window)] == [o.key for o in plan([b], *window)]


def test_aware_window_is_respected_across_zones() -> None:
    c = campaign([{"id": "p", "cron": "0 11 * * *", "text": "x"}], timezone="Asia/Baku")
    found = plan(
        [c], datetime(2026, 7, 1, 7, 0, tzinfo=UTC), datetime(2026, 7, 1, 7, 1, tzinfo=UTC)
    )
    assert [o.scheduled_for.isoformat() for o in found] == ["2026-07-01T11:00:00+04:00"]


def test_occurrence_is_frozen() -> None:
    c = campaign([{"id": "p", "at": "2026-07-01 10:00", "text": "x"}])
    occ: Occurrence = plan([c], datetime(2026, 7, 1), datetime(2026, 7, 2))[0]
    with pytest.raises(AttributeError):
        occ.post = "q"  # type: ignore[misc]
