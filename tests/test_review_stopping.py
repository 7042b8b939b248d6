"""Adversarial review of "stopping always wins": each test pins a promise the product breaks.

In process (an injected clock, httpx.MockTransport, ``Daemon(..., workers=0)``), like
tests/test_failsafe.py, except where a command line matters.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from scheduler.cli import cli
from scheduler.holds import HoldStore
from tests.standins.fixtures import mastodon_standin  # noqa: F401 - a pytest fixture
from tests.standins.mastodon import Mastodon
from tests.test_daemon import ACCOUNTS, DAILY, World, utc
from tests.test_failsafe import daemon


def rows_at(w: World, hour: int, minute: int = 0) -> list[tuple[str, str, str | None]]:
    return [
        (e.account, e.status, e.error or e.reason)
        for e in w.ledger.history()
        if e.scheduled_for == utc(2026, 7, 1, hour, minute)
    ]


# -- nothing dropped silently ------------------------------------------------------------


def test_a_campaign_broken_when_the_daemon_starts_still_gets_rows_once_fixed(
    tmp_path: Path,
) -> None:
    # The operator restarts the daemon while a staff member's save left c.yaml unparseable.
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    (w.settings.campaigns / "c.yaml").write_text("name: c\ntitle: [unclosed\n", "utf-8")
    d = daemon(w)
    d.start()
    assert d.book.files  # the broken file holds campaign c
    w.run_until(utc(2026, 7, 1, 7, 0))  # 10:00 Baku (06:00 UTC) falls due while held
    w.edit(DAILY)
    assert d.reload("fixed")
    w.run_until(utc(2026, 7, 1, 7, 5))
    assert w.platforms.posts == []  # past its grace: not sent, right
    # ...but SPEC: every due occurrence ends as a ledger row (here `held`, past its grace)
    found = [s for _, s, _ in rows_at(w, 6)]
    assert len(found) == 2 and set(found) <= {"held", "missed"}, w.rows()


def test_an_account_entry_broken_when_the_daemon_starts_still_gets_rows_once_fixed(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    w.settings.accounts.write_text(
        ACCOUNTS.replace("  pace: 0\nhr-telegram", "  pase: 0\nhr-telegram")
    )
    d = daemon(w)
    d.start()
    (hold,) = d.book.files
    assert hold.account == "hr-mastodon"
    w.run_until(utc(2026, 7, 1, 7, 0))
    assert [p for p, _, _ in w.platforms.posts] == ["telegram"]
    w.settings.accounts.write_text(ACCOUNTS)
    assert d.reload("fixed")
    w.run_until(utc(2026, 7, 1, 7, 5))
    assert [p for p, _, _ in w.platforms.posts] == ["telegram"]
    assert sorted((a, s) for a, s, _ in rows_at(w, 6)) == [
        ("hr-mastodon", "held"),
        ("hr-telegram", "sent"),
    ], w.rows()


# -- holds lifted release what waits --------------------------------------------------------

EVERY_MINUTE = DAILY.replace(
    "posts:\n",
    "posts:\n  - id: tick\n    every: 1m\n    accounts: [hr-mastodon]\n    text: tick\n",
)


def test_a_lifted_hold_releases_what_waits_even_if_another_request_read_the_holds_first(
    tmp_path: Path,
) -> None:
    # hr-telegram is held; hr-mastodon keeps posting every minute (as any busy daemon does).
    w = World(tmp_path, EVERY_MINUTE, utc(2026, 7, 1, 5, 59, 30))
    d = daemon(w)
    store = HoldStore(w.ledger)
    store.add(None, None, "hr-telegram", "token rotated", w.clock())
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 3, 59, 500000))
    assert "telegram" not in [p for p, _, _ in w.platforms.posts]
    store.remove(None, None, "hr-telegram")  # lifted half a second before the next tick
    w.run_until(utc(2026, 7, 1, 6, 4, 10))  # the tick's request reads the holds first
    # SPEC: a stopped occurrence "goes out when released within its grace"
    assert "telegram" in [p for p, _, _ in w.platforms.posts], rows_at(w, 6)


# -- an invalid change holds what it touches ---------------------------------------------

ONE_OFF = """\
name: c
title: C
timezone: UTC
accounts: [hr-mastodon]
posts:
  - id: launch
    at: 2026-07-01 10:00
    template: launch
"""


def test_a_template_broken_while_a_one_off_waits_holds_it_instead_of_failing_it(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, ONE_OFF, utc(2026, 7, 1, 9, 55), launch="Free the press")
    d = daemon(w)
    store = HoldStore(w.ledger)
    store.add("c", None, None, "legal is reading it", w.clock())
    d.start()
    w.run_until(utc(2026, 7, 1, 10, 2))  # due, waiting on the hold
    (w.settings.templates / "launch.j2").write_text("Free the {{ press", "utf-8")
    assert not d.reload("template saved half-way")  # SPEC: the posts using it are held
    assert any(h.post == "launch" for h in d.book.files), d.book.files
    store.remove("c", None, None)
    w.run_until(utc(2026, 7, 1, 10, 4))
    (w.settings.templates / "launch.j2").write_text("Free the press", "utf-8")
    d.reload("template fixed")
    w.run_until(utc(2026, 7, 1, 10, 6))  # fixed within its grace: it goes out
    assert w.platforms.texts() == ["Free the press"], w.rows()


# -- hold and resume name exactly what they say ----------------------------------------------


def test_an_empty_campaign_name_does_not_turn_the_kill_switch_off(tmp_path: Path) -> None:
    # A script runs `solidarity hold --campaign "$CAMPAIGN"` with $CAMPAIGN unset; later the
    # kill switch is pulled. The kill switch must still cover everything.
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    db = [
        *("--campaigns", str(w.settings.campaigns), "--templates", str(w.settings.templates)),
        *("--accounts", str(w.settings.accounts), "--db", w.settings.db),
    ]
    runner = CliRunner()
    first = runner.invoke(cli, ["hold", "--campaign", "", "--why", "scripted", *db])
    kill = runner.invoke(cli, ["hold", "--why", "we were hacked", *db])
    assert kill.exit_code == 0, kill.output
    assert first.exit_code in (0, 2)
    d = daemon(w)
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 5))
    assert w.platforms.posts == [], HoldStore(w.ledger).all()


def test_resume_of_an_empty_campaign_name_does_not_lift_the_kill_switch(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    db = [
        *("--campaigns", str(w.settings.campaigns), "--templates", str(w.settings.templates)),
        *("--accounts", str(w.settings.accounts), "--db", w.settings.db),
    ]
    runner = CliRunner()
    assert runner.invoke(cli, ["hold", "--why", "we were hacked", *db]).exit_code == 0
    runner.invoke(cli, ["resume", "--campaign", "", *db])  # `resume --campaign "$C"`, C unset
    held = HoldStore(w.ledger).all()
    assert [(h.campaign, h.person, h.account) for h in held] == [(None, None, None)]


# -- nothing posted twice ------------------------------------------------------------------


def test_renaming_a_campaign_after_its_post_went_out_does_not_post_it_again(
    tmp_path: Path,
) -> None:
    # Staff fix the campaign's slug five minutes after 10:00 Baku went out.
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 5))
    assert len(w.platforms.posts) == 2
    w.edit(DAILY.replace("name: c\n", "name: newsroom-to-cell\n"))
    assert d.reload("renamed")
    w.run_until(utc(2026, 7, 1, 6, 10))
    assert len(w.platforms.posts) == 2, w.platforms.texts()  # no duplicate post


# -- a stop inside a broken save still stops -------------------------------------------------


def test_paused_true_added_above_an_old_paused_false_still_stops(tmp_path: Path) -> None:
    # A duplicate key makes the file unreadable as YAML mappings go, but it says paused: true.
    campaign = DAILY.replace("starts: 2026-07-01\n", "starts: 2026-07-01\npaused: false\n")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    w.edit("paused: true\n" + campaign)
    assert not d.reload("paused in a hurry")
    w.run_until(utc(2026, 7, 1, 6, 30))
    assert w.platforms.posts == []
    assert {s for _, s, _ in rows_at(w, 6)} == {"skipped"}, rows_at(w, 6)


def test_a_post_narrowed_to_one_account_in_a_broken_save_skips_the_other(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = daemon(w)
    d.start()
    w.edit(
        DAILY.replace(
            "    for_each: people\n", "    for_each: people\n    accounts: [hr-mastodon]\n"
        )
        + "colour: red\n"
    )
    assert not d.reload("narrowed, with a typo")
    w.run_until(utc(2026, 7, 1, 6, 30))
    assert w.platforms.posts == []
    # the narrowed-away account is no longer planned at all, as after a valid edit
    assert dict((a, s) for a, s, _ in rows_at(w, 6)).get("hr-telegram", "skipped") == "skipped"


# -- send obeys the stops the files say ----------------------------------------------------

PAUSED = """\
name: c
title: C
timezone: Asia/Baku
paused: true
accounts: [m]
posts:
  - id: p
    cron: "0 12 * * *"
    text: "Journalism is not a crime."
"""


def test_send_refuses_a_paused_campaign(tmp_path: Path, mastodon_standin: Mastodon) -> None:  # noqa: F811
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(PAUSED, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(
        f"m:\n  platform: mastodon\n  instance: {mastodon_standin.url}\n"
        "  access_token: ${M_TOKEN}\n  pace: 0\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli,
        [
            "--campaigns",
            str(tmp_path / "campaigns"),
            "--templates",
            str(tmp_path / "templates"),
            "--accounts",
            str(tmp_path / "accounts.yaml"),
            "--db",
            f"sqlite:///{tmp_path / 'ledger.db'}",
            "send",
            "c",
            "p",
            "--yes",
        ],
        env={"M_TOKEN": "test-access-token", "SOLIDARITY_NOW": "2026-03-10T11:05:00+04:00"},
    )
    # SPEC: "paused: true: nothing is sent"; send goes "through the daemon's path"
    assert mastodon_standin.posts == [], result.output
    assert result.exit_code == 1
