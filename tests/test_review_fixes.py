"""Fixes of the scale-out review: each test here broke before its fix.

A reload racing another daemon's, holds unreadable at start, file holds of
several nodes, timers that put themselves off, ``run --once``'s report.
"""

from __future__ import annotations

import logging
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from scheduler.clockwork import ManualClockwork, SchedulerClockwork
from scheduler.config import Settings
from scheduler.daemon import Daemon
from scheduler.errors import LedgerError
from scheduler.holdbook import HoldBook
from scheduler.holds import HOLDS, Hold, HoldStore
from scheduler.ledger import Claim, Entry, Ledger
from scheduler.project import load_project
from tests.conftest import write_project
from tests.test_daemon import Clock, Platforms

T = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
SECRETS = {"MASTODON_ACCESS_TOKEN": "m-token"}
ACCOUNTS = """\
hr-mastodon:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${MASTODON_ACCESS_TOKEN}
  pace: 0
"""
TWO_POSTS = """\
name: c
title: C
timezone: UTC
accounts: [hr-mastodon]
posts:
  - id: one
    at: 2026-07-01 06:00
    text: "Free the journalists"
  - id: two
    at: 2026-07-01 06:00
    text: "Free them all"
"""
ONE_POST = TWO_POSTS.split("  - id: two")[0]


def key(post: str, at: str = "06:00") -> str:
    return f"c/{post}/hr-mastodon/2026-07-01T{at}:00Z/-"


def claim(post: str) -> Claim:
    return Claim(key(post), "c", post, "hr-mastodon", "mastodon", None, T)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    found = Ledger.open(ledger_url)
    yield found
    found.close()


def a_daemon(
    settings: Settings, ledger: Ledger, clock: Clock, platforms: Platforms, **options: object
) -> tuple[Daemon, ManualClockwork]:
    clockwork = ManualClockwork(clock, clock.sleep)
    load = lambda: load_project(settings, SECRETS)  # noqa: E731
    found = Daemon(
        load(),
        ledger,
        clockwork,
        load=load,
        transport=httpx.MockTransport(platforms),
        workers=0,
        owner="host-a:101:aaaa",
        **options,  # type: ignore[arg-type]
    )
    return found, clockwork


# -- a reload that loses rows to another daemon, or cannot write one -----------------------


def test_a_reload_goes_on_past_a_row_taken_by_another_and_a_row_it_cannot_write(
    tmp_path: Path, ledger_url: str, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    settings = write_project(tmp_path, TWO_POSTS, accounts=ACCOUNTS)
    clock, platforms = Clock(T + timedelta(seconds=1)), Platforms()
    me = "host-a:101:aaaa"
    rows = {}
    for post in ("one", "two"):  # this daemon's, waiting for a retry
        entry = ledger.claim_sending(claim(post), ["x"], T, me)
        assert entry is not None
        rows[post] = ledger.retrying(entry, "a passing error", T + timedelta(minutes=10), T)
    d, _clockwork = a_daemon(settings, ledger, clock, platforms)
    d.start()
    (settings.campaigns / "c.yaml").write_text(  # both removed, a third added
        textwrap.dedent(TWO_POSTS).split("  - id: one")[0]
        + '  - id: three\n    at: 2026-07-01 06:00\n    text: "Journalism is not a crime"\n',
        encoding="utf-8",
    )
    read, settle = ledger.in_flight, ledger.settle
    other = Ledger.open(ledger_url)  # another daemon, reloading the same edit

    def in_flight_then_another_settles_one() -> list[Entry]:
        found = read()
        other.settle(rows["one"], "skipped", "another daemon's reload", T)
        return found

    def settle_failing_for_two(entry: Entry, *args: object) -> Entry:
        if entry.key == key("two"):
            raise LedgerError("the ledger could not be written: the server restarts")
        return settle(entry, *args)  # type: ignore[arg-type]

    ledger.in_flight = in_flight_then_another_settles_one  # type: ignore[method-assign]
    ledger.settle = settle_failing_for_two  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.INFO, logger="scheduler.daemon"):
        assert d.reload("c.yaml changed")  # no exception: the reload completes
    other.close()
    assert platforms.texts() == ["Journalism is not a crime"]  # the rest of the reload ran
    assert "moved on in another process" in caplog.text
    assert "could not be skipped now" in caplog.text
    left = d.ledger.get(key("two"))
    assert left is not None and left.status == "retrying"  # skipped at its turn instead


# -- holds the ledger cannot give at start ---------------------------------------------------


def test_nothing_goes_out_until_the_ledgers_holds_can_be_read(
    tmp_path: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    settings = write_project(tmp_path, ONE_POST, accounts=ACCOUNTS)
    clock, platforms = Clock(T), Platforms()
    with ledger.engine.begin() as connection:  # the holds cannot be read (a lost grant, say)
        connection.exec_driver_sql("ALTER TABLE holds RENAME TO holds_away")
    book = HoldBook(HoldStore(ledger), ttl=0)
    d, clockwork = a_daemon(settings, ledger, clock, platforms, holds=book)
    with caplog.at_level(logging.ERROR, logger="scheduler.daemon"):
        d.start()
    assert platforms.texts() == []  # a kill switch may be in force: nothing is sent
    assert "until they are, all is held" in caplog.text
    (held,) = [h for h in book.current() if h.campaign is None and h.account is None]
    assert "could not be read yet" in held.why
    clock.now += timedelta(seconds=5)
    clockwork.run_due()
    assert platforms.texts() == []  # still unreadable: still held
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE holds_away RENAME TO holds")
    clockwork.run_until(T + timedelta(minutes=1))
    assert platforms.texts() == ["Free the journalists"]  # read: none, and within grace
    assert book.current() == ()


def test_holds_read_once_then_unreadable_stay_as_known(ledger: Ledger) -> None:
    store = HoldStore(ledger)
    store.add("c", None, None, "the family asked", T)
    book = HoldBook(store, ttl=0)
    assert [h.why for h in book.current()] == ["the family asked"]
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE holds RENAME TO holds_away")
    assert [h.why for h in book.current()] == ["the family asked"]  # not everything


# -- file holds of several nodes ----------------------------------------------------------------


def file_hold(source: str, why: str = "broken") -> Hold:
    return Hold("c", None, None, why, T, source)


def test_each_node_syncs_its_own_file_holds_and_holds_lists_them_all(ledger: Ledger) -> None:
    from scheduler.holdreports import table

    store = HoldStore(ledger)
    store.add(None, None, None, "a person's", T)
    store.sync_files([file_hold("campaigns/c.yaml:3")], T, node="host-a@1.2")
    store.sync_files([file_hold("campaigns/c.yaml:3")], T, node="host-b@3.4")  # the same line
    files = [h for h in store.all() if not h.is_command]
    assert sorted(h.node or "" for h in files) == ["host-a@1.2", "host-b@3.4"]
    assert {h.source for h in files} == {"campaigns/c.yaml:3"}  # path:line, as SPEC says
    assert "(the files on host-a)" in table(store.all())
    added, lifted = store.sync_files([], T, node="host-b@3.4")  # B's copy is fixed
    assert added == [] and [h.node for h in lifted] == ["host-b@3.4"]
    assert [h.node for h in store.all() if not h.is_command] == ["host-a@1.2"]  # A's stays
    assert [h.why for h in store.all() if h.is_command] == ["a person's"]


def test_a_file_hold_from_before_nodes_becomes_the_nodes_keeping_its_since(
    ledger: Ledger,
) -> None:
    old = file_hold("campaigns/c.yaml:3")
    with ledger.engine.begin() as connection:  # as the version before nodes wrote it
        connection.execute(
            insert(HOLDS).values(
                scope=old.scope, campaign="c", why="broken", since=T, source=old.source
            )
        )
    store = HoldStore(ledger)
    later = T + timedelta(hours=1)
    assert store.sync_files([file_hold("campaigns/c.yaml:3")], later, node="n") == ([], [])
    (found,) = store.all()
    assert found.node == "n" and found.since == T
    # one no node wants any more is lifted by whichever syncs first
    with ledger.engine.begin() as connection:
        connection.execute(
            insert(HOLDS).values(
                scope="c||||x.yaml:1", campaign="c", why="old", since=T, source="x.yaml:1"
            )
        )
    _added, lifted = store.sync_files([file_hold("campaigns/c.yaml:3")], later, node="m")
    assert sorted(h.source for h in lifted) == ["x.yaml:1"]
    assert sorted((h.node, h.source) for h in store.all()) == [
        ("m", "campaigns/c.yaml:3"),
        ("n", "campaigns/c.yaml:3"),
    ]


# -- timers that put themselves off (the real APScheduler) ---------------------------------------


@pytest.fixture
def clockwork() -> Iterator[SchedulerClockwork]:
    found = SchedulerClockwork(lambda: datetime.now(UTC))
    found.start()
    yield found
    found.shutdown()


def test_a_call_due_while_its_own_key_runs_is_not_lost(clockwork: SchedulerClockwork) -> None:
    ran: list[str] = []
    done = threading.Event()

    def again() -> None:
        ran.append("again")
        done.set()

    def first() -> None:
        ran.append("first")
        # a job that puts itself off to an instant already past, and still runs a moment
        clockwork.call_at(clockwork.now() - timedelta(seconds=1), again, "wake")
        time.sleep(0.3)

    clockwork.call_at(clockwork.now(), first, "wake")
    assert done.wait(3), f"the call made while 'wake' ran was lost: {ran}"
    assert ran == ["first", "again"]  # one at a time, in order


def test_only_the_latest_call_of_a_key_runs_and_none_once_cancelled(
    clockwork: SchedulerClockwork,
) -> None:
    ran: list[str] = []
    released, finished = threading.Event(), threading.Event()

    def first() -> None:
        clockwork.call_at(clockwork.now(), lambda: ran.append("replaced"), "k")
        time.sleep(0.2)  # "replaced" falls due and waits for this one
        clockwork.call_at(clockwork.now(), lambda: ran.append("latest"), "k")
        time.sleep(0.2)
        clockwork.call_at(clockwork.now(), lambda: ran.append("cancelled"), "c")
        clockwork.cancel("c")
        released.set()

    clockwork.call_at(clockwork.now(), first, "k")
    clockwork.call_at(clockwork.now() + timedelta(seconds=0.8), finished.set, "end")
    assert released.wait(3) and finished.wait(3)
    assert ran == ["latest"]


def test_a_failing_call_does_not_keep_its_keys_next_call_waiting(
    clockwork: SchedulerClockwork,
) -> None:
    done = threading.Event()

    def failing() -> None:
        clockwork.call_at(clockwork.now(), done.set, "k")
        time.sleep(0.2)
        raise RuntimeError("a bug")

    clockwork.call_at(clockwork.now(), failing, "k")
    assert done.wait(3)


# -- run --once reports its own rows in flight, not another daemon's --------------------------


def test_run_once_leaves_another_daemons_rows_out_of_what_the_next_run_retries(
    tmp_path: Path,
) -> None:
    from scheduler import runner

    settings = write_project(tmp_path, ONE_POST, accounts=ACCOUNTS)
    ledger = Ledger.open(settings.db)
    now = datetime.now(UTC)
    theirs = ledger.claim_sending(claim("one"), ["x"], now, "host-b:202:bbbb")  # alive
    assert theirs is not None
    gone = Claim(key("two", "06:01"), "c", "two", "hr-mastodon", "mastodon", None, T)
    orphan = ledger.claim_sending(gone, ["y"], now - timedelta(minutes=5), "host-c:303:cccc")
    assert orphan is not None
    ledger.retrying(orphan, "429", now + timedelta(hours=1), now - timedelta(minutes=5))
    project = load_project(settings, SECRETS)
    daemon, waiting = runner.run_once(project, ledger, lambda: datetime.now(UTC), lambda _p: None)
    ledger.close()
    assert [e.key for e in waiting] == [orphan.key]  # adopted: this run's to report
    assert all(e.owner == daemon.owner for e in waiting)
