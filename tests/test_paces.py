"""An account's pace and its platform's limits hold across every daemon on one ledger."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from scheduler.clockwork import ManualClockwork
from scheduler.daemon import Daemon
from scheduler.ledger import PACES, Ledger
from scheduler.paces import SharedPace
from tests.test_daemon import ACCOUNTS, World, telegram_429

T = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)


class Ticker:
    """A monotonic clock the test moves (the limits' cache is half a second)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def close(found: datetime | None, expected: datetime) -> bool:
    """On PostgreSQL turns are kept in the server's clock: equal within the test's own time."""
    return found is not None and abs(found - expected) < timedelta(seconds=2)


def rewind(ledger: Ledger, account: str, by: timedelta) -> None:
    """Let ``by`` pass for an account's turn (the server's clock cannot be moved)."""
    with ledger.engine.begin() as connection:
        found = connection.execute(select(PACES.c.next_at).where(PACES.c.account == account))
        at = found.scalar_one()
        connection.execute(update(PACES).where(PACES.c.account == account).values(next_at=at - by))


def test_one_turn_per_pace_whichever_daemon_asks(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    now, tick = datetime.now(UTC), Ticker()
    a, b = SharedPace(ledger, "a:1:aa", tick), SharedPace(ledger, "b:2:bb", tick)
    pace = timedelta(minutes=10)
    assert a.turn("m", pace, now) is None  # the first turn ever: the row is made
    assert close(b.turn("m", pace, now), now + pace)
    assert close(a.turn("m", pace, now), now + pace)
    rewind(ledger, "m", pace)  # ten minutes later
    tick.now += 1  # what each has read of the turns is half a second old at most
    assert b.turn("m", pace, now) is None
    assert close(a.turn("m", pace, now), now + pace)  # one of two asking at once
    assert a.turn("other", pace, now) is None  # accounts do not share turns
    ledger.close()


def test_a_limit_one_daemon_met_makes_every_daemon_wait(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    now, tick = datetime.now(UTC), Ticker()
    a, b = SharedPace(ledger, "a:1:aa", tick), SharedPace(ledger, "b:2:bb", tick)
    assert b.turn("t", timedelta(0), now) is None  # an account without a pace: no turn to take
    until = now + timedelta(seconds=30)
    a.limit("t", until, "telegram (HTTP 429): Too Many Requests: retry after 30")
    tick.now += 1  # b's view of the limits is read again after half a second
    assert close(b.turn("t", timedelta(0), now), until)
    a.limit("t", now + timedelta(seconds=5), "an earlier limit never shortens a later one")
    tick.now += 1
    assert close(b.turn("t", timedelta(0), now), until)
    rewind(ledger, "t", timedelta(seconds=31))
    tick.now += 1
    assert b.turn("t", timedelta(0), now) is None
    ledger.close()


PACED = ACCOUNTS.replace(
    "  access_token: ${MASTODON_ACCESS_TOKEN}\n  pace: 0\n",
    "  access_token: ${MASTODON_ACCESS_TOKEN}\n  pace: 10m\n",
)
THREE_AT_ONCE = textwrap.dedent(
    """\
    name: c
    title: C
    timezone: UTC
    accounts: [hr-mastodon]
    posts:
      - id: one
        at: 2026-07-01 06:00
        text: "one"
      - id: two
        at: 2026-07-01 06:00
        text: "two"
      - id: three
        at: 2026-07-01 06:00
        text: "three"
    """
)


def daemons(w: World, n: int) -> list[tuple[Daemon, ManualClockwork]]:
    found = []
    for i in range(n):
        clockwork = ManualClockwork(w.clock, w.clock.sleep)
        daemon = Daemon(
            w.load(),
            w.ledger,
            clockwork,
            load=w.load,
            transport=httpx.MockTransport(w.platforms),
            workers=0,
            owner=f"host-{i}:{100 + i}:t{i}",
        )
        found.append((daemon, clockwork))
    return found


def run_together(pairs: list[tuple[Daemon, ManualClockwork]], w: World, until: datetime) -> None:
    """Let time pass a second at a time, each daemon running its timers in turn."""
    while w.clock.now < until:
        w.clock.now += timedelta(seconds=1)
        for _daemon, clockwork in pairs:
            clockwork.run_due()


def test_three_daemons_post_to_a_paced_account_no_faster_than_its_pace(tmp_path: Path) -> None:
    w = World(tmp_path, THREE_AT_ONCE, T - timedelta(minutes=1))
    (w.settings.accounts).write_text(PACED, encoding="utf-8")
    pairs = daemons(w, 3)
    for daemon, _clockwork in pairs:
        daemon.start()
    run_together(pairs, w, T + timedelta(minutes=25))
    times = [when for platform, _text, when in w.platforms.posts if platform == "mastodon"]
    assert sorted(w.platforms.texts("mastodon")) == ["one", "three", "two"]  # each once
    assert times == [T, T + timedelta(minutes=10), T + timedelta(minutes=20)]


def test_a_429_one_daemon_met_holds_back_the_others(tmp_path: Path) -> None:
    w = World(
        tmp_path, THREE_AT_ONCE.replace("hr-mastodon", "hr-telegram"), T - timedelta(seconds=5)
    )
    w.platforms.faults.append(telegram_429(120))
    pairs = daemons(w, 2)
    for daemon, _clockwork in pairs:
        daemon.start()
    run_together(pairs, w, T + timedelta(minutes=5))
    times = [when for platform, _text, when in w.platforms.posts if platform == "telegram"]
    assert sorted(w.platforms.texts("telegram")) == ["one", "three", "two"]
    assert times and min(t for t in times if t is not None) >= T + timedelta(seconds=120)
