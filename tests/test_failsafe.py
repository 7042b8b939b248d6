"""Stopping always wins, in process with an injected clock: broken edits, holds, catch-up."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx

from scheduler.daemon import Daemon, ManualClockwork
from scheduler.holdbook import HoldBook
from scheduler.holds import HoldStore
from scheduler.project import Project
from tests.test_daemon import ACCOUNTS, DAILY, World, utc

ROTATING = """\
name: c
title: C
timezone: UTC
starts: 2026-07-01 09:00
accounts: [hr-mastodon]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    detained_on: 2023-11-21
posts:
  - id: spot
    every: 1m
    rotate: people
    text: "Day {{ person.detained_on | days_since }} for {{ person.name }}"
"""


def daemon(w: World) -> Daemon:
    """A daemon reading the ledger's holds at every request (no cache)."""
    w.clockwork = ManualClockwork(w.clock, w.clock.sleep)
    return Daemon(
        w.load(),
        w.ledger,
        w.clockwork,
        load=w.load,
        transport=httpx.MockTransport(w.platforms),
        workers=0,
        owner="test:1",
        holds=HoldBook(HoldStore(w.ledger), ttl=0),
    )


def test_release_pause_and_a_broken_key_in_one_save_stop_everything(tmp_path: Path) -> None:
    w = World(tmp_path, ROTATING, utc(2026, 7, 1, 9, 0, 30))
    d = daemon(w)
    d.start()
    w.run_until(utc(2026, 7, 1, 9, 2, 30))
    assert len(w.platforms.posts) == 3  # 09:00, 09:01, 09:02
    w.edit(
        ROTATING.replace("paused: false\n", "")
        .replace("starts: 2026-07-01 09:00", "starts: 2026-07-01 09:00\npaused: true\ncolour: red")
        .replace("detained_on: 2023-11-21", "detained_on: 2023-11-21\n    released_on: 2026-07-01")
    )
    assert not d.reload("one save")
    (hold,) = d.book.files
    assert hold.campaign == "c" and "colour" in hold.why
    w.run_until(utc(2026, 7, 1, 9, 30))
    assert len(w.platforms.posts) == 3  # nothing more went out
    later = [e for e in w.ledger.history() if e.scheduled_for > utc(2026, 7, 1, 9, 2, 30)]
    assert later and {e.status for e in later} == {"skipped"}  # stopped, not merely held


def test_a_file_that_does_not_parse_holds_the_campaign_it_held_before(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    (w.settings.campaigns / "c.yaml").write_text("name: c\ntitle: [unclosed\n", "utf-8")
    assert not d.reload("syntax error")
    (hold,) = d.book.files
    assert hold.campaign == "c" and hold.source.endswith(("c.yaml:2", "c.yaml:3")), hold
    assert [h.source for h in HoldStore(w.ledger).all()] == [hold.source]
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert w.platforms.posts == []
    w.edit(DAILY)
    assert d.reload("fixed")
    assert HoldStore(w.ledger).all() == []
    w.run_until(utc(2026, 7, 1, 6, 2))
    assert len(w.platforms.posts) == 2


def test_an_untouched_campaign_goes_on_while_another_is_held(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    other = DAILY.replace("name: c", "name: other").replace("for {{", "still for {{")
    (w.settings.campaigns / "other.yaml").write_text(textwrap.dedent(other), "utf-8")
    d = daemon(w)
    d.start()
    w.edit(DAILY + "typo: 1\n")
    assert not d.reload("typo")
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert all("still for" in t for t in w.platforms.texts()) and len(w.platforms.posts) == 2


def test_a_broken_account_entry_holds_that_account_alone(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    w.settings.accounts.write_text(
        ACCOUNTS.replace("  pace: 0\nhr-telegram", "  pase: 0\nhr-telegram")
    )
    assert not d.reload("accounts")
    (hold,) = d.book.files
    assert hold.account == "hr-mastodon" and hold.campaign is None
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert [p for p, _, _ in w.platforms.posts] == ["telegram"]


def test_an_unreadable_accounts_file_holds_all_posting(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    w.settings.accounts.write_text("hr-mastodon: [unclosed\n")
    assert not d.reload("accounts")
    assert any(
        (h.campaign, h.account, h.person, h.post) == (None, None, None, None) for h in d.book.files
    )
    w.run_until(utc(2026, 7, 1, 6, 16))
    assert w.platforms.posts == []
    assert {s for s, _ in w.rows().values()} == {"held"}


def test_hold_and_resume_on_a_running_daemon(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    store = HoldStore(w.ledger)
    store.add("c", None, "hr-telegram", "family asked", w.clock())
    w.run_until(utc(2026, 7, 1, 6, 5))
    assert [p for p, _, _ in w.platforms.posts] == ["mastodon"]
    store.remove("c", None, "hr-telegram")
    w.run_until(utc(2026, 7, 1, 6, 7))  # lifted within its grace: it goes out, once
    assert sorted(p for p, _, _ in w.platforms.posts) == ["mastodon", "telegram"]
    w.run_until(utc(2026, 7, 1, 7, 0))
    assert len(w.platforms.posts) == 2


def test_the_kill_switch_stops_the_rest_of_a_burst(tmp_path: Path) -> None:
    campaign = DAILY.replace(
        "people:\n",
        "people:\n"
        + "".join(
            f"  - id: p{i}\n    name: P{i}\n    detained_on: 2024-01-0{i + 1}\n" for i in range(9)
        ),
    )
    w = World(tmp_path, campaign, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    store = HoldStore(w.ledger)
    sent: list[str] = []
    real = w.platforms.__call__

    def kill_after_three(request: httpx.Request) -> httpx.Response:
        response = real(request)
        if request.url.path in ("/api/v1/statuses",) or request.url.path.endswith("sendMessage"):
            sent.append(request.url.path)
            if len(sent) == 3:
                store.add(None, None, None, "stop everything", w.clock())
        return response

    d.dispatcher.transport = httpx.MockTransport(kill_after_three)
    d.transport = d.dispatcher.transport
    d.dispatcher._adapters.clear()
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert len(sent) == 3  # of 20 due at once
    w.run_until(utc(2026, 7, 1, 6, 20))
    rows = w.rows()
    assert sum(s == "sent" for s, _ in rows.values()) == 3
    assert sum(s == "held" for s, _ in rows.values()) == 17


def test_start_up_after_downtime_sends_only_the_latest_of_a_repeating_post(
    tmp_path: Path,
) -> None:
    w = World(
        tmp_path,
        ROTATING.replace("every: 1m", "every: 1m\n    grace: 15m"),
        utc(2026, 7, 1, 9, 0, 30),
    )
    d = daemon(w)
    d.start()
    w.run_until(utc(2026, 7, 1, 9, 0, 40))
    assert len(w.platforms.posts) == 1
    w.clock.now = utc(2026, 7, 1, 9, 5, 30)  # five minutes down
    again = daemon(w)
    again.start()
    w.run_until(utc(2026, 7, 1, 9, 5, 40))
    assert len(w.platforms.posts) == 2  # one post, not six
    missed = [e for e in w.ledger.history() if e.status == "missed"]
    assert len(missed) == 4
    assert all(
        "superseded by the occurrence of 2026-07-01 09:05" in (e.reason or "") for e in missed
    )


def test_an_at_list_is_not_coalesced(tmp_path: Path) -> None:
    campaign = ROTATING.replace(
        "    every: 1m\n    rotate: people\n", "    at: [2026-07-01 09:01, 2026-07-01 09:02]\n"
    ).replace("{{ person.detained_on | days_since }} for {{ person.name }}", "free the press")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 9, 5))
    d = daemon(w)
    d.start()
    w.run_until(utc(2026, 7, 1, 9, 5, 10))
    assert len(w.platforms.posts) == 2


def test_a_repeating_post_held_for_minutes_sends_one_post_when_lifted(tmp_path: Path) -> None:
    w = World(tmp_path, ROTATING, utc(2026, 7, 1, 9, 0, 30))
    d = daemon(w)
    store = HoldStore(w.ledger)
    store.add("c", None, None, "wait", w.clock())
    d.start()
    w.run_until(utc(2026, 7, 1, 9, 5, 30))
    assert w.platforms.posts == []
    store.remove("c", None, None)
    w.run_until(utc(2026, 7, 1, 9, 5, 40))
    assert len(w.platforms.posts) == 1
    missed = [e for e in w.ledger.history() if e.status == "missed"]
    assert len(missed) == 5 and all("superseded" in (e.reason or "") for e in missed)


LONDON = """\
name: c
title: C
timezone: Europe/London
starts: 2026-03-01
accounts: [hr-mastodon]
posts:
  - id: night
    cron: "30 1 * * *"
    text: "Free the press"
"""


def test_a_hold_over_the_spring_gap_releases_the_moved_occurrence_once(tmp_path: Path) -> None:
    # 2026-03-29: 01:30 does not exist in London; it moves to 02:30 BST (01:30 UTC)
    w = World(tmp_path, LONDON, utc(2026, 3, 29, 0, 0))
    d = daemon(w)
    store = HoldStore(w.ledger)
    store.add("c", None, None, "wait", w.clock())
    d.start()
    w.run_until(utc(2026, 3, 29, 1, 40))
    assert w.platforms.posts == []
    store.remove("c", None, None)
    w.run_until(utc(2026, 3, 29, 1, 42))  # within its grace of the moved instant
    assert len(w.platforms.posts) == 1
    (row,) = [e for e in w.ledger.history() if e.scheduled_for.date().day == 29]
    assert row.status == "sent" and row.scheduled_for == utc(2026, 3, 29, 1, 30)


def test_a_hold_over_the_repeated_autumn_hour_fires_once_and_ends_held(tmp_path: Path) -> None:
    # 2026-10-25: 01:30 happens twice in London (00:30 UTC, then 01:30 UTC); it fires once
    w = World(tmp_path, LONDON, utc(2026, 10, 25, 0, 0))
    d = daemon(w)
    HoldStore(w.ledger).add(None, None, None, "stop", w.clock())
    d.start()
    w.run_until(utc(2026, 10, 25, 3, 0))
    rows = [e for e in w.ledger.history() if e.scheduled_for.date().day == 25]
    assert w.platforms.posts == []
    assert [(e.status, e.scheduled_for) for e in rows] == [("held", utc(2026, 10, 25, 0, 30))]
    assert "stop" in (rows[0].reason or "") and "grace" in (rows[0].reason or "")


def test_a_load_that_fails_unexpectedly_holds_everything_until_a_load_works(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    good = d.load

    def broken() -> Project:
        raise RuntimeError("a bug while loading")

    d.load = broken
    assert not d.reload("bug")
    (hold,) = d.book.files
    assert (hold.campaign, hold.account, hold.post) == (None, None, None)
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert w.platforms.posts == []
    d.load = good
    assert d.reload("fixed")
    w.run_until(utc(2026, 7, 1, 6, 2))
    assert len(w.platforms.posts) == 2
