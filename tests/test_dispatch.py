"""Delivering occurrences: claim first, retry only what is safe, record every outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.config import Settings
from scheduler.daemon import Daemon, ManualClockwork
from scheduler.dispatch import backoff
from scheduler.holdbook import HoldBook
from scheduler.ledger import IN_FLIGHT, Entry, Ledger
from scheduler.planning import Occurrence
from scheduler.project import Project, load_project
from tests.conftest import write_project

CAMPAIGN = """\
name: c
title: C
timezone: Asia/Baku
accounts: [hr-mastodon, hr-telegram]
posts:
  - id: p
    at: 2026-07-01 10:00
    text: "Free them all"
  - id: long
    at: 2026-07-01 11:00
    text: "{{ 'word ' * 120 }}"
    accounts: [hr-mastodon]
"""
SECRETS = {"MASTODON_ACCESS_TOKEN": "tok", "TELEGRAM_BOT_TOKEN": "1:tg"}
T0 = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)


class Clock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()


class Sender:
    """Deliver as `send` does: through the daemon's own path, on the test's clock."""

    def __init__(
        self, project: Project, ledger: Ledger, clock: Clock, transport: httpx.BaseTransport
    ) -> None:
        self.project, self.ledger, self.clock = project, ledger, clock
        self.clockwork = ManualClockwork(clock, clock.sleep)
        self.daemon = Daemon(
            project,
            ledger,
            self.clockwork,
            transport=transport,
            workers=0,
            owner="test:1",
            holds=HoldBook(None),
            wait_for_holds=False,
        )

    def deliver(self, lc: LoadedCampaign, post: Post, occ: Occurrence, account: Account) -> Entry:
        self.daemon.settled = []
        self.daemon.send_now([(lc, post, occ, account)])
        self.clockwork.run_until(self.clock() + timedelta(hours=2), stop=lambda: self._done(occ))
        found = self.ledger.get(occ.key)
        assert found is not None
        return found

    def _done(self, occ: Occurrence) -> bool:
        found = self.ledger.get(occ.key)
        return found is not None and found.status not in IN_FLIGHT


def setup(
    tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response], pace: str = "0"
) -> tuple[Project, Sender, Clock, Ledger]:
    settings: Settings = write_project(tmp_path, CAMPAIGN)
    inner = handler

    def handler(
        request: httpx.Request,
    ) -> httpx.Response:  # the instance's limit: 500 unless a test says
        if request.url.path == "/api/v2/instance":
            return instance_limit(request)
        return inner(request)

    accounts = settings.accounts.read_text().replace(
        "  platform: mastodon\n", f"  platform: mastodon\n  pace: {pace}\n"
    )
    settings.accounts.write_text(accounts)
    project = load_project(settings, SECRETS)
    assert not project.errors, project.errors
    ledger = Ledger.open(settings.db)
    clock = Clock()
    return project, Sender(project, ledger, clock, httpx.MockTransport(handler)), clock, ledger


def occurrence(
    project: Project, account: str, post: str = "p", hour: int = 10
) -> tuple[LoadedCampaign, Post, Occurrence, Account]:
    lc = project.campaigns[0]
    p = next(x for x in lc.campaign.posts if x.id == post)
    when = datetime(2026, 7, 1, hour, 0, tzinfo=lc.campaign.tz)
    return lc, p, Occurrence("c", post, account, when, None, 0), project.accounts[account]


def instance_limit(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, json={"error": "Record not found"})


def mastodon_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "1", "url": "https://m.example/@hr/1"})


def test_sent_is_recorded_with_url_and_exact_text(tmp_path: Path) -> None:
    project, dispatcher, _clock, ledger = setup(tmp_path, mastodon_ok)
    entry = dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    assert entry.status == "sent" and entry.remote_url == "https://m.example/@hr/1"
    assert entry.text == "Free them all" and entry.attempts == 1
    assert ledger.history()[0].status == "sent"


def test_an_occurrence_is_never_sent_twice(tmp_path: Path) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return mastodon_ok(request)

    project, dispatcher, _clock, _ledger = setup(tmp_path, handler)
    first = dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    second = dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    assert first.id == second.id and len(calls) == 1


def test_429_waits_what_the_platform_asked_then_sends(tmp_path: Path) -> None:
    answers = [
        httpx.Response(
            429,
            json={
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        ),
        httpx.Response(200, json={"ok": True, "result": {"message_id": 5}}),
    ]
    project, dispatcher, clock, _ledger = setup(tmp_path, lambda _r: answers.pop(0))
    entry = dispatcher.deliver(*occurrence(project, "hr-telegram"))
    assert entry.status == "sent" and entry.attempts == 2
    assert clock.slept == [7.0]


def test_retries_stop_at_the_window_and_fail_with_the_last_error(tmp_path: Path) -> None:
    busy = httpx.Response(
        429,
        json={
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1200",
            "parameters": {"retry_after": 1200},
        },
    )
    project, dispatcher, _clock, _ledger = setup(tmp_path, lambda _r: busy)
    entry = dispatcher.deliver(*occurrence(project, "hr-telegram"))
    assert entry.status == "failed"
    assert "gave up after 4 tries" in (entry.error or "") and "retry after 1200" in (
        entry.error or ""
    )


def test_server_error_without_idempotency_is_uncertain_and_not_retried(tmp_path: Path) -> None:
    calls: list[int] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502, text="Bad Gateway")

    project, dispatcher, _clock, _ledger = setup(tmp_path, handler)
    entry = dispatcher.deliver(*occurrence(project, "hr-telegram"))
    assert entry.status == "uncertain" and len(calls) == 1


def test_server_error_with_idempotency_key_is_retried_with_the_same_key(tmp_path: Path) -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(
            503 if len(keys) == 1 else 200, json={"id": "9", "url": "https://m.example/9"}
        )

    project, dispatcher, clock, _ledger = setup(tmp_path, handler)
    entry = dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    assert entry.status == "sent" and len(keys) == 2 and keys[0] == keys[1]
    assert len(clock.slept) == 1


def test_permanent_error_fails_at_once_in_the_platforms_words(tmp_path: Path) -> None:
    project, dispatcher, clock, _ledger = setup(
        tmp_path,
        lambda _r: httpx.Response(
            422, json={"error": "Validation failed: Text character limit of 500 exceeded"}
        ),
    )
    entry = dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    assert entry.status == "failed" and "Text character limit of 500 exceeded" in (
        entry.error or ""
    )
    assert clock.slept == []


def test_too_long_text_is_failed_without_a_request(tmp_path: Path) -> None:
    calls: list[int] = []
    project, dispatcher, _clock, _ledger = setup(
        tmp_path, lambda r: (calls.append(1), mastodon_ok(r))[1]
    )
    entry = dispatcher.deliver(*occurrence(project, "hr-mastodon", "long", 11))
    assert entry.status == "failed" and "too long" in (entry.error or "") and calls == []


def test_pace_spaces_one_accounts_posts_but_not_anothers(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "/bot" in request.url.path:
            return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})
        return httpx.Response(
            200, json={"id": str(len(request.content)), "url": "https://m.example/x"}
        )

    project, dispatcher, clock, _ledger = setup(tmp_path, handler, pace="30s")
    dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    dispatcher.deliver(*occurrence(project, "hr-telegram"))
    assert clock.slept == []  # another account does not wait
    lc, post, occ, account = occurrence(project, "hr-mastodon")
    later = occ._replace(scheduled_for=occ.scheduled_for + timedelta(hours=1))
    dispatcher.deliver(lc, post, later, account)
    assert clock.slept == [pytest.approx(30.0)]


def test_backoff_honours_the_platforms_wait_and_grows_otherwise() -> None:
    assert backoff(1, 12.0) == 12.0
    assert 1.0 <= backoff(1, None) <= 2.0
    assert 8.0 <= backoff(4, None) <= 16.0
    assert backoff(30, None) <= 600.0


def test_secrets_never_reach_the_ledger(tmp_path: Path) -> None:
    project, dispatcher, _clock, ledger = setup(
        tmp_path,
        lambda r: httpx.Response(
            401, json={"ok": False, "error_code": 401, "description": "Unauthorized"}
        ),
    )
    dispatcher.deliver(*occurrence(project, "hr-telegram"))
    dump = json.dumps([e.__dict__ for e in ledger.history()], default=str)
    assert "1:tg" not in dump and "Unauthorized" in dump


def test_the_instances_own_limit_is_read_once_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def big(_request: httpx.Request) -> httpx.Response:
        asked.append(1)
        return httpx.Response(200, json={"configuration": {"statuses": {"max_characters": 5000}}})

    monkeypatch.setattr(f"{__name__}.instance_limit", big)
    project, dispatcher, _clock, _ledger = setup(tmp_path, mastodon_ok)
    entry = dispatcher.deliver(*occurrence(project, "hr-mastodon", "long", 11))
    assert entry.status == "sent"  # 600 characters fit this instance's 5000
    dispatcher.deliver(*occurrence(project, "hr-mastodon"))
    assert asked == [1]
