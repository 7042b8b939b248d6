"""The daemon's loop with an injected clock: on time, at most once, nothing dropped."""

from __future__ import annotations

import html
import logging
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler import dryrun
from scheduler.config import Settings
from scheduler.daemon import Daemon, ManualClockwork, ledger_lock, problems_of
from scheduler.errors import LedgerError, SolidarityError
from scheduler.ledger import Claim, Entry, Ledger
from scheduler.planning import jitter_of, plan_post
from scheduler.project import Project, load_project
from tests.conftest import write_project

SECRETS = {"MASTODON_ACCESS_TOKEN": "tok", "TELEGRAM_BOT_TOKEN": "1:tg"}
ACCOUNTS = """\
hr-mastodon:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${MASTODON_ACCESS_TOKEN}
  pace: 0
hr-telegram:
  platform: telegram
  api: http://127.0.0.1:9
  bot_token: ${TELEGRAM_BOT_TOKEN}
  chat: "@test"
  pace: 0
"""


class Clock:
    """A clock that moves only when the code under test sleeps (or a test says)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Platforms:
    """Mastodon and Telegram answering through a MockTransport, with faults on demand."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, datetime | None]] = []  # (platform, text, when)
        self.faults: list[httpx.Response] = []
        self.clock: Clock | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v2/instance":
            return httpx.Response(404, json={"error": "Record not found"})
        if path == "/api/v1/accounts/verify_credentials":
            return httpx.Response(200, json={"id": "1", "acct": "hr", "username": "hr"})
        if path == "/api/v1/accounts/1/statuses":
            mine = [p for p in self.posts if p[0] == "mastodon"]
            return httpx.Response(
                200,
                json=[
                    {
                        "id": str(i),
                        "url": f"https://m.example/@hr/{i}",
                        "content": f"<p>{html.escape(text)}</p>",
                        # Mastodon says when each status was made; read-back needs it
                        "created_at": when.isoformat() if when else "1970-01-01T00:00:00Z",
                    }
                    for i, (_, text, when) in reversed(list(enumerate(mine, 1)))
                ],
            )
        if self.faults:
            return self.faults.pop(0)
        body = request.read().decode()
        import json

        data = json.loads(body)
        when = self.clock() if self.clock else None
        if path == "/api/v1/statuses":
            self.posts.append(("mastodon", data["status"], when))
            n = len(self.posts)
            return httpx.Response(200, json={"id": str(n), "url": f"https://m.example/@hr/{n}"})
        if path.endswith("/sendMessage"):
            self.posts.append(("telegram", data["text"], when))
            return httpx.Response(200, json={"ok": True, "result": {"message_id": len(self.posts)}})
        return httpx.Response(404, json={"error": "no such route"})

    def texts(self, platform: str | None = None) -> list[str]:
        return [t for p, t, _ in self.posts if platform in (None, p)]


def telegram_429(wait: int) -> httpx.Response:
    return httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {wait}",
            "parameters": {"retry_after": wait},
        },
    )


class World:
    """A project on disk, a ledger, a clock and the platforms: a daemon can be built on them."""

    def __init__(self, tmp_path: Path, campaign: str, now: datetime, **templates: str) -> None:
        self.settings: Settings = write_project(
            tmp_path,
            campaign,
            {f"{k}.j2": v for k, v in templates.items()},
            accounts=ACCOUNTS,
        )
        self.clock = Clock(now)
        self.platforms = Platforms()
        self.platforms.clock = self.clock
        self.ledger = Ledger.open(self.settings.db)
        self.clockwork = ManualClockwork(self.clock, self.clock.sleep)

    def load(self) -> Project:
        return load_project(self.settings, SECRETS)

    def daemon(self, owner: str = "test:1") -> Daemon:
        project = self.load()
        assert not problems_of(project, self.clock()), problems_of(project, self.clock())
        self.clockwork = ManualClockwork(self.clock, self.clock.sleep)
        return Daemon(
            project,
            self.ledger,
            self.clockwork,
            load=self.load,
            transport=httpx.MockTransport(self.platforms),
            workers=0,
            owner=owner,
        )

    def run_until(self, when: datetime) -> None:
        """Let time pass until ``when``, running every timer on the way."""
        self.clockwork.run_until(when)
        self.clock.now = max(self.clock.now, when)
        self.clockwork.run_due()

    def rows(self) -> dict[str, tuple[str, str | None]]:
        return {e.key: (e.status, e.error or e.reason) for e in self.ledger.history()}

    def edit(self, campaign: str) -> None:
        (self.settings.campaigns / "c.yaml").write_text(textwrap.dedent(campaign), "utf-8")


BAKU = "Asia/Baku"  # UTC+4, no daylight-saving time
DAILY = f"""\
name: c
title: C
timezone: {BAKU}
starts: 2026-07-01
accounts: [hr-mastodon, hr-telegram]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    detained_on: 2023-11-21
posts:
  - id: daily
    cron: "0 10 * * *"
    text: "Day {{{{ person.detained_on | days_since }}}} for {{{{ person.name }}}}"
    for_each: people
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_each_occurrence_goes_out_once_at_its_time_rendered_for_its_day(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))  # 09:00 in Baku
    d = w.daemon()
    d.start()
    assert w.platforms.posts == []
    assert d.next_wake == utc(2026, 7, 1, 6, 0)
    w.run_until(utc(2026, 7, 3, 7, 0))
    sent = w.platforms.posts
    assert [(p, t) for p, t, _ in sent] == [
        ("mastodon", "Day 953 for Sevinj Vagifgizi"),
        ("telegram", "Day 953 for Sevinj Vagifgizi"),
        ("mastodon", "Day 954 for Sevinj Vagifgizi"),
        ("telegram", "Day 954 for Sevinj Vagifgizi"),
        ("mastodon", "Day 955 for Sevinj Vagifgizi"),
        ("telegram", "Day 955 for Sevinj Vagifgizi"),
    ]
    assert [when for _, _, when in sent][::2] == [
        utc(2026, 7, 1, 6),
        utc(2026, 7, 2, 6),
        utc(2026, 7, 3, 6),
    ]
    assert {status for status, _ in w.rows().values()} == {"sent"}
    # a second daemon on the same ledger finds nothing left to send
    again = w.daemon(owner="test:2")
    again.start()
    w.run_until(utc(2026, 7, 3, 7, 30))
    assert len(w.platforms.posts) == 6


def test_catch_up_sends_within_grace_and_records_older_as_missed(tmp_path: Path) -> None:
    campaign = DAILY.replace('cron: "0 10 * * *"', "at: [2026-07-01 08:00, 2026-07-01 09:50]")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 6, 0))  # 10:00 in Baku
    d = w.daemon()
    d.start()
    rows = w.rows()
    assert w.platforms.texts("mastodon") == ["Day 953 for Sevinj Vagifgizi"]
    missed = [r for k, r in rows.items() if "T04:00:00Z" in k]
    assert missed and all(status == "missed" for status, _ in missed)
    assert "past its grace of 15m" in str(missed[0][1])
    assert all(status == "sent" for k, (status, _) in rows.items() if "T05:50:00Z" in k)


def test_a_late_wake_is_a_misfire_recorded_missed_not_sent(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = w.daemon()
    d.start()
    w.clock.now = utc(2026, 7, 1, 6, 20)  # the machine slept through 10:00 Baku
    w.clockwork.run_due()
    assert w.platforms.posts == []
    assert {s for s, _ in w.rows().values()} == {"missed"}


def test_per_post_grace_lets_a_late_wake_still_send(tmp_path: Path) -> None:
    w = World(
        tmp_path,
        DAILY.replace("    for_each: people", "    for_each: people\n    grace: 1h"),
        utc(2026, 7, 1, 5, 0),
    )
    d = w.daemon()
    d.start()
    w.clock.now = utc(2026, 7, 1, 6, 20)
    w.clockwork.run_due()
    assert len(w.platforms.posts) == 2


def test_retry_waits_what_the_platform_asked_and_sends_once(tmp_path: Path) -> None:
    w = World(
        tmp_path, DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram"), utc(2026, 7, 1, 6, 0)
    )
    w.platforms.faults = [telegram_429(30)]
    d = w.daemon()
    d.start()
    (row,) = w.ledger.history()
    assert row.status == "retrying" and row.next_attempt_at == utc(2026, 7, 1, 6, 0, 30)
    assert w.platforms.posts == []
    w.run_until(utc(2026, 7, 1, 6, 1))
    (row,) = w.ledger.history()
    assert row.status == "sent" and row.attempts == 2
    assert [when for _, _, when in w.platforms.posts] == [utc(2026, 7, 1, 6, 0, 30)]


def test_retries_end_failed_with_the_last_error_after_the_window(tmp_path: Path) -> None:
    w = World(
        tmp_path, DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram"), utc(2026, 7, 1, 6, 0)
    )
    w.platforms.faults = [telegram_429(900) for _ in range(10)]
    d = w.daemon()
    d.start()
    w.run_until(utc(2026, 7, 1, 8, 0))
    (row,) = w.ledger.history()
    assert row.status == "failed" and w.platforms.posts == []
    assert "retry after 900" in (row.error or "") and "gave up after" in (row.error or "")


def test_a_retry_sends_the_text_tried_first_even_after_a_template_edit(tmp_path: Path) -> None:
    w = World(
        tmp_path, DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram"), utc(2026, 7, 1, 6, 0)
    )
    w.platforms.faults = [telegram_429(30)]
    d = w.daemon()
    d.start()
    w.edit(DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram").replace("Day ", "Now day "))
    assert d.reload("test")
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert w.platforms.texts() == ["Day 953 for Sevinj Vagifgizi"]


def claim(w: World, account: str, platform: str, at: datetime, owner: str) -> Entry:
    key = f"c/daily/{account}/{at:%Y-%m-%dT%H:%M:%SZ}/sevinj"
    entry = w.ledger.claim(Claim(key, "c", "daily", account, platform, "sevinj", at), at, owner)
    assert entry is not None
    return entry


def test_start_up_settles_what_a_crash_left_in_flight(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 2, 6, 5))
    due = utc(2026, 7, 2, 6, 0)
    # a crash left: Mastodon mid-send (it had arrived), Telegram mid-send (unknowable)
    m = claim(w, "hr-mastodon", "mastodon", due, "dead:1")
    w.ledger.sending(m, ["Day 954 for Sevinj Vagifgizi"], due)
    w.platforms.posts.append(("mastodon", "Day 954 for Sevinj Vagifgizi", due))
    t = claim(w, "hr-telegram", "telegram", due, "dead:1")
    w.ledger.sending(t, ["Day 954 for Sevinj Vagifgizi"], due)
    # and yesterday's occurrence claimed but never sent (no request went out)
    y = utc(2026, 7, 1, 6, 0)
    claim(w, "hr-mastodon", "mastodon", y, "dead:1")
    d = w.daemon()
    d.start()
    rows = {e.account + e.key[-30:]: e for e in w.ledger.history()}
    by_account = {(e.account, e.scheduled_for): e for e in rows.values()}
    mastodon = by_account["hr-mastodon", due]
    assert mastodon.status == "sent" and mastodon.remote_url == "https://m.example/@hr/1"
    telegram = by_account["hr-telegram", due]
    assert telegram.status == "uncertain" and "cannot be read back" in (telegram.error or "")
    assert by_account["hr-mastodon", y].status == "missed"
    assert len(w.platforms.posts) == 1  # nothing was sent again
    # an uncertain row is never sent again by itself
    w.daemon(owner="test:3").start()
    assert len(w.platforms.posts) == 1


def test_a_row_read_back_as_not_posted_is_sent_once(tmp_path: Path) -> None:
    w = World(
        tmp_path, DAILY.replace("hr-mastodon, hr-telegram", "hr-mastodon"), utc(2026, 7, 1, 6, 5)
    )
    due = utc(2026, 7, 1, 6, 0)
    m = claim(w, "hr-mastodon", "mastodon", due, "dead:1")
    w.ledger.sending(m, ["Day 953 for Sevinj Vagifgizi"], due)
    w.daemon().start()
    (row,) = w.ledger.history()
    assert row.status == "sent" and w.platforms.texts() == ["Day 953 for Sevinj Vagifgizi"]


ROTATE = f"""\
name: c
title: C
timezone: {BAKU}
starts: 2026-07-01
accounts: [hr-telegram]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
  - id: nargiz
    name: Nargiz Absalamova
posts:
  - id: spot
    cron: "0 10 * * *"
    text: "Free {{{{ person.name }}}}"
    rotate: people
"""


def test_release_before_the_send_skips_with_the_reason_and_features_who_is_still_held(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, ROTATE, utc(2026, 7, 1, 5, 0))
    w.platforms.faults = [telegram_429(600)]  # day 1 is held up; meanwhile Sevinj is released
    d = w.daemon()
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 1))
    w.edit(
        ROTATE.replace(
            "    name: Sevinj Vagifgizi\n",
            "    name: Sevinj Vagifgizi\n    released_on: 2026-07-01\n",
        )
    )
    assert d.reload("test")
    w.run_until(utc(2026, 7, 2, 6, 1))
    rows = {(e.scheduled_for.day, e.person): e for e in w.ledger.history()}
    skipped = rows[1, "sevinj"]
    assert skipped.status == "skipped" and "released on 2026-07-01" in (skipped.reason or "")
    assert w.platforms.texts() == ["Free Nargiz Absalamova", "Free Nargiz Absalamova"]


def test_pausing_a_campaign_skips_what_was_queued(tmp_path: Path) -> None:
    campaign = DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 6, 0))
    w.platforms.faults = [telegram_429(60)]
    d = w.daemon()
    d.start()
    w.edit(campaign.replace("starts: 2026-07-01\n", "starts: 2026-07-01\npaused: true\n"))
    assert d.reload("test")
    w.run_until(utc(2026, 7, 2, 7, 0))
    assert w.platforms.posts == []
    assert [(e.status, e.reason) for e in w.ledger.history()] == [
        ("skipped", "the campaign is paused"),
        ("skipped", "the campaign is paused"),
    ]


def test_a_removed_post_cancels_its_unsent_rows(tmp_path: Path) -> None:
    campaign = DAILY.replace("hr-mastodon, hr-telegram", "hr-telegram")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 6, 0))
    w.platforms.faults = [telegram_429(60)]
    d = w.daemon()
    d.start()
    w.edit(campaign.replace("  - id: daily", "  - id: weekly"))
    assert d.reload("test")
    (row,) = [e for e in w.ledger.history() if e.post == "daily"]
    assert row.status == "skipped" and "post 'daily' was removed from c" in (row.reason or "")
    w.run_until(utc(2026, 7, 1, 6, 5))
    # a renamed post is a new post: within its grace, its occurrence goes out (once)
    assert [e.post for e in w.ledger.history() if e.status == "sent"] == ["weekly"]
    assert len(w.platforms.posts) == 1


def test_an_invalid_edit_holds_its_campaign_and_the_fix_within_grace_sends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = w.daemon()
    d.start()
    w.edit(DAILY.replace("    for_each: people", "    for_each: people\n    colour: red"))
    with caplog.at_level(logging.ERROR):
        assert not d.reload("test")
    assert any("c.yaml:" in r.getMessage() and "colour" in r.getMessage() for r in caplog.records)
    (hold,) = d.book.files
    assert hold.campaign == "c" and hold.source.endswith("c.yaml:15") and "colour" in hold.why
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert w.platforms.posts == []  # the old version does not go on sending
    w.clock.now = utc(2026, 7, 1, 6, 10)
    w.edit(DAILY)
    assert d.reload("fixed")
    assert d.book.files == ()
    w.run_until(utc(2026, 7, 1, 6, 11))
    assert len(w.platforms.posts) == 2  # released within its grace: it goes out, once
    assert {s for s, _ in w.rows().values()} == {"sent"}


def test_an_occurrence_held_past_its_grace_ends_held_with_the_reason(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = w.daemon()
    d.start()
    w.edit(DAILY.replace("timezone: Asia/Baku", "timezone: Asia/Baku\ncolor: red"))
    assert not d.reload("test")
    w.run_until(utc(2026, 7, 1, 6, 16))
    assert w.platforms.posts == []
    rows = w.rows()
    assert len(rows) == 2
    for status, reason in rows.values():
        assert status == "held" and "c.yaml:4" in (reason or "") and "grace" in (reason or "")


def test_a_broken_template_holds_the_posts_that_use_it_and_only_them(tmp_path: Path) -> None:
    campaign = DAILY.replace(
        '    text: "Day {{ person.detained_on | days_since }} for {{ person.name }}"',
        "    template: spot",
    ) + textwrap.indent(
        textwrap.dedent("""\
            - id: other
              cron: "0 10 * * *"
              text: "Free the press"
            """),
        "  ",
    )
    w = World(tmp_path, campaign, utc(2026, 7, 1, 5, 0), spot="Free {{ person.name }}")
    d = w.daemon()
    d.start()
    (w.settings.templates / "spot.j2").write_text("Free {{ person.name ", "utf-8")
    assert not d.reload("test")
    (hold,) = d.book.files
    assert (hold.campaign, hold.post) == ("c", "daily") and "spot.j2:1" in hold.source
    w.run_until(utc(2026, 7, 1, 6, 1))
    assert w.platforms.texts() == ["Free the press", "Free the press"]
    (w.settings.templates / "spot.j2").write_text("Free {{ person.name }}!", "utf-8")
    assert d.reload("fixed")
    w.run_until(utc(2026, 7, 1, 6, 2))
    assert sorted(w.platforms.texts()) == ["Free Sevinj Vagifgizi!"] * 2 + ["Free the press"] * 2


def test_a_post_added_live_goes_out_at_its_time(tmp_path: Path) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    d = w.daemon()
    d.start()
    w.edit(
        DAILY
        + '  - id: extra\n    at: 2026-07-01 09:30\n    text: "Added live"\n    accounts: [hr-telegram]\n'
    )
    assert d.reload("test")
    assert d.next_wake == utc(2026, 7, 1, 5, 30)
    w.run_until(utc(2026, 7, 1, 5, 31))
    assert w.platforms.texts() == ["Added live"]


def test_pace_spaces_one_accounts_posts_without_delaying_another(tmp_path: Path) -> None:
    campaign = DAILY.replace(
        "for_each: people",
        'for_each: people\n  - id: again\n    cron: "0 10 * * *"\n    text: "Again"',
    )
    w = World(tmp_path, campaign, utc(2026, 7, 1, 5, 0))
    w.settings.accounts.write_text(
        ACCOUNTS.replace('  chat: "@test"\n  pace: 0', '  chat: "@test"\n  pace: 30s')
    )
    d = w.daemon()
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 5))
    times: dict[str, list[datetime]] = {}
    for platform, _, when in w.platforms.posts:
        assert when is not None
        times.setdefault(platform, []).append(when)
    assert times["mastodon"] == [utc(2026, 7, 1, 6)] * 2
    assert times["telegram"] == [utc(2026, 7, 1, 6), utc(2026, 7, 1, 6, 0, 30)]


LONDON = """\
name: c
title: C
timezone: Europe/London
starts: 2026-03-27
accounts: [hr-telegram]
posts:
  - id: night
    cron: "30 1 * * *"
    text: "At {{ scheduled_for.strftime('%H:%M %Z') }}"
"""


def test_daylight_saving_gap_moves_forward_and_repeated_hour_fires_once(tmp_path: Path) -> None:
    w = World(tmp_path, LONDON, utc(2026, 3, 27, 0, 0))
    d = w.daemon()
    d.start()
    w.run_until(utc(2026, 3, 31, 0, 0))
    assert w.platforms.texts() == [
        "At 01:30 GMT",
        "At 01:30 GMT",
        "At 02:30 BST",  # 01:30 did not exist on 29 March
        "At 01:30 BST",
    ]
    w2 = World(
        tmp_path / "autumn", LONDON.replace("2026-03-27", "2026-10-24"), utc(2026, 10, 24, 0)
    )
    w2.daemon().start()
    w2.run_until(utc(2026, 10, 27, 0, 0))
    assert w2.platforms.texts() == ["At 01:30 BST", "At 01:30 BST", "At 01:30 GMT"]


def test_a_second_daemon_on_one_sqlite_ledger_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    refused = pytest.raises(SolidarityError, match=r"another solidarity daemon .* is running")
    with ledger_lock(url), refused, ledger_lock(url):
        pass
    with ledger_lock(url):  # released
        pass


def test_unset_secrets_in_use_are_problems_naming_the_variable(tmp_path: Path) -> None:
    settings = write_project(tmp_path, DAILY, accounts=ACCOUNTS)
    project = load_project(settings, {"MASTODON_ACCESS_TOKEN": "tok"})
    problems = problems_of(project, utc(2026, 7, 1))
    assert [p.message for p in problems if "TELEGRAM_BOT_TOKEN" in p.message]


def test_jitter_delays_the_send_the_same_way_every_time_and_keeps_the_identity(
    tmp_path: Path,
) -> None:
    campaign = DAILY.replace("    for_each: people", "    for_each: people\n    jitter: 10m")
    w = World(tmp_path, campaign, utc(2026, 7, 1, 5, 0))
    d = w.daemon()
    d.start()
    w.run_until(utc(2026, 7, 1, 6, 11))
    rows = w.ledger.history()
    assert {r.status for r in rows} == {"sent"}
    assert {r.scheduled_for for r in rows} == {utc(2026, 7, 1, 6)}  # the identity stays
    c = d.project.campaigns[0].campaign
    expected = sorted(
        utc(2026, 7, 1, 6) + jitter_of(o, c.posts[0].jitter)
        for o in plan_post(c, c.posts[0], utc(2026, 7, 1, 6), utc(2026, 7, 1, 6, 0, 1))
    )
    assert sorted(when for _, _, when in w.platforms.posts if when) == expected
    assert expected[0] != expected[1] and expected[-1] < utc(2026, 7, 1, 6, 10)
    # preview shows the same send times (as sends_at in its JSON)
    shown = dryrun.rows(d.project, utc(2026, 7, 1, 5), utc(2026, 7, 1, 7))
    assert sorted(r.sends_at for r in shown) == expected
    assert all(r.occurrence.scheduled_for == utc(2026, 7, 1, 6) for r in shown)


class FlakyLedger(Ledger):
    """A real ledger whose database refuses the next few reads (a disk or lock failure)."""

    failures = 0

    def existing(self, keys: Sequence[str]) -> set[str]:
        if self.failures:
            self.failures -= 1
            raise LedgerError("the ledger could not be written: database is locked")
        return super().existing(keys)


def test_a_ledger_failure_delays_the_wake_and_nothing_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    w.ledger = FlakyLedger(w.ledger.engine)
    d = w.daemon()
    d.start()
    w.ledger.failures = 2
    with caplog.at_level(logging.ERROR):
        w.run_until(utc(2026, 7, 1, 6, 5))
    assert (
        sum("database is locked; trying again in 1m" in r.getMessage() for r in caplog.records) == 2
    )
    assert [when for _, _, when in w.platforms.posts] == [utc(2026, 7, 1, 6, 2)] * 2


def test_a_row_read_back_as_not_posted_after_the_retry_window_fails_without_sending(
    tmp_path: Path,
) -> None:
    campaign = DAILY.replace("hr-mastodon, hr-telegram", "hr-mastodon")
    w = World(
        tmp_path,
        campaign.replace("    for_each: people", "    for_each: people\n    grace: 6h"),
        utc(2026, 7, 1, 8, 5),
    )
    due = utc(2026, 7, 1, 6, 0)
    m = claim(w, "hr-mastodon", "mastodon", due, "dead:1")
    w.ledger.sending(m, ["Day 953 for Sevinj Vagifgizi"], due)
    w.daemon().start()
    (row,) = w.ledger.history()
    assert row.status == "failed" and "gave up after 1 tries" in (row.error or "")
    assert w.platforms.posts == []


class FailingWrites(Ledger):
    """A real ledger whose database refuses the next claim, or the next 'sent', once."""

    fail_claim = False
    fail_sent = False

    def claim_sending(self, claim: Claim, parts: Sequence[str], now: datetime, owner: str) -> Any:
        if self.fail_claim:
            self.fail_claim = False
            raise LedgerError("the ledger could not be written: disk I/O error")
        return super().claim_sending(claim, parts, now, owner)

    def sent(self, entry: Entry, remote_ids: Sequence[str], url: str | None, now: datetime) -> Any:
        if self.fail_sent:
            self.fail_sent = False
            raise LedgerError("the ledger could not be written: disk I/O error")
        return super().sent(entry, remote_ids, url, now)


def test_a_ledger_failure_at_the_send_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim written as a post goes out, or the result after it, may fail."""
    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    w.ledger = FailingWrites(w.ledger.engine)
    d = w.daemon()
    d.start()
    w.ledger.fail_claim = True  # Mastodon's claim fails: nothing went out; tried a minute later
    with caplog.at_level(logging.ERROR):
        w.run_until(utc(2026, 7, 1, 6, 5))
    assert sum("disk I/O error" in r.getMessage() for r in caplog.records) == 1
    assert sorted(p for p, _, _ in w.platforms.posts) == ["mastodon", "telegram"]
    assert {s for s, _ in w.rows().values()} == {"sent"}
    # the next day the result of a request that went out cannot be written: the row stays
    # "sending" and is read back (Mastodon) or left uncertain (Telegram), never resent
    w.ledger.fail_sent = True
    w.run_until(utc(2026, 7, 2, 6, 5))
    day_two = [p for p, _, when in w.platforms.posts if when and when.day == 2]
    assert sorted(day_two) == ["mastodon", "telegram"]
    statuses = sorted(e.status for e in w.ledger.history() if e.scheduled_for.day == 2)
    assert statuses in (["sent", "sent"], ["sent", "uncertain"])
