"""The one decision before every request, as a table: each promise of SPEC is a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.decision import Decision, Due, Hold, Miss, Send, Skip, Wait, decide
from scheduler.holds import Hold as HoldRule

T = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
DUE = Due("c", "daily", "hr-mastodon", "sevinj", T, T, GRACE)
SINCE = T - timedelta(days=1)


def rule(**scope: Any) -> HoldRule:
    return HoldRule(
        scope.get("campaign"),
        scope.get("person"),
        scope.get("account"),
        scope.get("why", "family asked"),
        SINCE,
        scope.get("source", "command"),
        scope.get("post"),
    )


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


# (promise, now, keyword arguments, the decision's type, a text the reason holds)
TABLE: list[tuple[str, datetime, dict[str, Any], type, str]] = [
    ("due now, nothing in the way: send", at(0), {}, Send, ""),
    ("due within grace: send", at(14), {}, Send, ""),
    ("not yet due (jitter): wait until then", at(-1), {}, Wait, ""),
    (
        "misfire past grace: missed, saying how late",
        at(16),
        {},
        Miss,
        "16m late is past its grace of 15m",
    ),
    (
        "of a repeating series, only the latest within grace goes out",
        at(5),
        {"newer": at(4)},
        Miss,
        "superseded by the occurrence of 2026-07-01 10:04",
    ),
    (
        "a stop wins: paused is skipped",
        at(0),
        {"stopped": "the campaign is paused"},
        Skip,
        "paused",
    ),
    (
        "a stop wins even while held: released is skipped, not held",
        at(30),
        {"stopped": "Sevinj Vagifgizi was released on 2026-06-30", "holds": [rule()]},
        Skip,
        "released",
    ),
    (
        "the kill switch holds everything, within grace it waits",
        at(1),
        {"holds": [rule(why="stop")]},
        Hold,
        "everything",
    ),
    (
        "a hold on the campaign holds it",
        at(1),
        {"holds": [rule(campaign="c")]},
        Hold,
        "family asked",
    ),
    ("a hold on a person holds their posts", at(1), {"holds": [rule(person="sevinj")]}, Hold, ""),
    ("a hold on another person does not", at(1), {"holds": [rule(person="fatima")]}, Send, ""),
    (
        "a hold on the account holds it",
        at(1),
        {"holds": [rule(account="hr-mastodon")]},
        Hold,
        "",
    ),
    ("a hold on another account does not", at(1), {"holds": [rule(account="hr-x")]}, Send, ""),
    (
        "all named parts of a hold must match",
        at(1),
        {"holds": [rule(campaign="c", account="hr-x")]},
        Send,
        "",
    ),
    (
        "a file problem holding one post holds it, naming path:line",
        at(1),
        {"holds": [rule(campaign="c", post="daily", source="templates/spot.j2:3")]},
        Hold,
        "templates/spot.j2:3",
    ),
    (
        "a file problem on another post does not",
        at(1),
        {"holds": [rule(campaign="c", post="weekly", source="templates/w.j2:1")]},
        Send,
        "",
    ),
    (
        "held past its grace: ends held, with the reason",
        at(15),
        {"holds": [rule(campaign="c")]},
        Miss,
        "family asked",
    ),
    (
        "a row in flight under a hold waits for its retry window",
        at(40),
        {"holds": [rule()], "in_flight_until": at(60)},
        Hold,
        "",
    ),
    (
        "a row in flight held past its retry window ends held",
        at(61),
        {"holds": [rule()], "in_flight_until": at(60)},
        Miss,
        "retry window",
    ),
    ("a row in flight is not subject to grace", at(40), {"in_flight_until": at(60)}, Send, ""),
    (
        "queued within grace and waiting for its pace: lateness no longer counts",
        at(40),
        {"queued": True},
        Send,
        "",
    ),
    (
        "queued, then held past its grace: ends held",
        at(40),
        {"queued": True, "holds": [rule()]},
        Miss,
        "",
    ),
]


@pytest.mark.parametrize(
    ("promise", "now", "kwargs", "kind", "text"), TABLE, ids=[row[0] for row in TABLE]
)
def test_the_decision(
    promise: str, now: datetime, kwargs: dict[str, Any], kind: type, text: str
) -> None:
    decided: Decision = decide(DUE, now, **kwargs)
    assert isinstance(decided, kind), (promise, decided)
    reason = getattr(decided, "reason", "")
    assert text in reason, (promise, reason)


def test_held_past_grace_is_recorded_held_not_missed() -> None:
    decided = decide(DUE, at(20), holds=[rule(campaign="c")])
    assert isinstance(decided, Miss) and decided.status == "held"
    assert "source command" in decided.reason


def test_a_hold_waits_until_the_end_of_grace_and_no_longer() -> None:
    decided = decide(DUE, at(1), holds=[rule()])
    assert isinstance(decided, Hold) and decided.until == T + GRACE
    assert isinstance(decide(DUE, T + GRACE, holds=[rule()]), Miss)


def test_a_misfire_is_missed_not_held() -> None:
    decided = decide(DUE, at(16))
    assert isinstance(decided, Miss) and decided.status == "missed"
