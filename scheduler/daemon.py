"""The daemon: wake at each occurrence, claim it, send it at its account's pace, settle crashes.

The ledger is the truth. On waking, every occurrence that fell due since the
last wake and has no row is queued on its account's lane. A lane sends one post
at a time, no faster than the account's ``pace``, and never holds a worker while
it waits; accounts never wait for each other. Right before a send the occurrence
is planned again from the files in force: what was paused, ended, released or
removed meanwhile is ``skipped`` with the reason. The text is rendered then too,
and the row is claimed already ``sending`` with that text, in one write, before
the request goes out (a key claimed by another process is not sent). A queued
occurrence has no row yet: if the process dies, the next start finds it without
one and sends it within grace, or records it ``missed``.

Time comes from a :class:`Clockwork`: APScheduler in the daemon, a manual one in
tests (an injected clock) and in ``run --once`` (which waits for retries within a
bound). Both run the same code.

Start-up settles what a stopped process left in flight: ``claimed`` rows (no
request went out) are sent within grace or recorded ``missed``; ``sending`` rows
are read back where the platform allows (``sent`` with its URL, or safe to send)
and are ``uncertain`` otherwise; ``retrying`` rows are retried when due.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from scheduler import dryrun
from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.dispatch import DEFAULT_RETRY_WINDOW, Dispatcher, claim_for, log_delivery, owner_id
from scheduler.errors import Problem, SolidarityError
from scheduler.ledger import IN_FLIGHT, Claim, Entry, Ledger
from scheduler.planning import Occurrence, jitter_of, next_instant, order, plan_post
from scheduler.project import Project
from scheduler.timeutil import format_duration

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("scheduler.daemon")

DEFAULT_GRACE = timedelta(minutes=15)  # how late a due occurrence may still go out
LOOKBACK = timedelta(days=7)  # how far back start-up gives a missed occurrence its row
DEFAULT_WORKERS = 40  # measured best of 8/20/40/80: see docs/benchmarks.md (fan-out)
STOP_TIMEOUT = 10.0  # seconds in-flight requests get to finish on SIGTERM
TROUBLE_PAUSE = timedelta(minutes=1)  # wait after the ledger failed, before trying again
MAX_SLEEP = timedelta(hours=1)  # wake at least this often, whatever the schedule says
_TICK = timedelta(microseconds=1)

Located = tuple[LoadedCampaign, Post, Occurrence, Account]  # where a row's occurrence comes from


class _Pending(NamedTuple):
    """A due occurrence queued on its lane, not yet claimed, with the files it came from."""

    claim: Claim
    project: Project
    located: Located


# -- time -------------------------------------------------------------------


class Clockwork(Protocol):
    """Tells the time and calls functions at times of that clock."""

    def now(self) -> datetime: ...

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        """Call ``fn`` at ``when``; a later call with the same key replaces this one."""

    def cancel(self, key: str) -> None:
        """Forget the call registered under ``key``, if any."""


class ManualClockwork:
    """Timers run by the caller, on an injected clock.

    Tests advance a fake clock (with a fake ``sleep``); ``run --once`` uses the
    real clock and really sleeps until the next timer, within a deadline.
    """

    def __init__(
        self, clock: Callable[[], datetime], sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self._heap: list[tuple[datetime, int, Callable[[], None]]] = []
        self._keys: dict[str, int] = {}
        self._live: set[int] = set()
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self.clock()

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        with self._lock:
            seq = next(self._seq)
            if key is not None:
                self._live.discard(self._keys.get(key, -1))
                self._keys[key] = seq
            self._live.add(seq)
            heapq.heappush(self._heap, (when, seq, fn))

    def cancel(self, key: str) -> None:
        with self._lock:
            self._live.discard(self._keys.pop(key, -1))

    def next_at(self) -> datetime | None:
        """Return when the earliest pending call is due."""
        with self._lock:
            self._prune()
            return self._heap[0][0] if self._heap else None

    def _prune(self) -> None:
        """Drop cancelled or replaced calls from the top of the heap (the lock is held)."""
        while self._heap and self._heap[0][1] not in self._live:
            heapq.heappop(self._heap)

    def run_due(self) -> int:
        """Run every call due by now (including ones those calls add); return how many."""
        ran = 0
        while True:
            with self._lock:
                self._prune()
                if not self._heap or self._heap[0][0] > self.clock():
                    return ran
                _, seq, fn = heapq.heappop(self._heap)
                self._live.discard(seq)
            fn()
            ran += 1

    def run_until(self, deadline: datetime, stop: Callable[[], bool] = lambda: False) -> None:
        """Run calls as they fall due, sleeping between them, until none is due by ``deadline``."""
        while True:
            self.run_due()
            upcoming = self.next_at()
            if upcoming is None or upcoming > deadline or stop():
                return
            self.sleep(max(0.0, (upcoming - self.clock()).total_seconds()))


class SchedulerClockwork:
    """APScheduler 3 wakes the daemon: each call is a one-off job at a real-time instant."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.clock = clock
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._anonymous = itertools.count()

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    def now(self) -> datetime:
        return self.clock()

    def call_at(self, when: datetime, fn: Callable[[], None], key: str | None = None) -> None:
        # the injected clock may be offset from the real one (--now): keep the distance
        run_date = datetime.now(UTC) + (when - self.clock())
        self.scheduler.add_job(
            fn,
            "date",
            run_date=run_date,
            id=key or f"call-{next(self._anonymous)}",
            replace_existing=True,
        )

    def cancel(self, key: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(key)


# -- lanes ------------------------------------------------------------------


class Lanes:
    """One queue per account over a few workers: one post at a time per account, paced.

    A lane whose account must wait for its pace hands the wait to the clockwork
    and frees its worker, so a slow account never holds up the others. With
    ``workers=0`` everything runs in the caller's thread (tests, ``run --once``).
    """

    def __init__(
        self,
        run: Callable[[str, str], None],
        clockwork: Clockwork,
        pace: Callable[[str], timedelta],
        workers: int,
    ) -> None:
        self._run = run
        self._clock = clockwork
        self._pace = pace
        self._workers = workers
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queues: dict[str, deque[str]] = {}
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._last: dict[str, datetime] = {}
        self._running = 0
        self._stopping = False
        self._ready: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending: deque[str] = deque()
        self._pumping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"lane-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, account: str, key: str) -> None:
        """Queue an occurrence key on its account's lane (once, however often it is put)."""
        with self._lock:
            if self._stopping or key in self._queued:
                return
            self._queues.setdefault(account, deque()).append(key)
            self._queued.add(key)
            if account in self._active:
                return
            self._active.add(account)
        self._wake(account)

    def queued(self) -> int:
        """Return how many keys wait in lanes (not counting the ones being sent)."""
        with self._lock:
            return len(self._queued)

    def idle(self) -> bool:
        """Say whether nothing is being sent and nothing waits in a lane."""
        with self._lock:
            return self._running == 0 and not self._queued

    def stop(self, timeout: float) -> bool:
        """Start nothing new; wait up to ``timeout`` s for what is being sent; True if it all ended."""
        with self._lock:
            self._stopping = True
            for _ in self._threads:
                self._ready.put(None)
            return self._changed.wait_for(lambda: self._running == 0, timeout)

    def _wake(self, account: str) -> None:
        if self._workers:
            self._ready.put(account)
            return
        self._pending.append(account)
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._pending:
                self._turn(self._pending.popleft())
        finally:
            self._pumping = False

    def _work(self) -> None:
        while True:
            account = self._ready.get()
            if account is None:
                return
            self._turn(account)

    def _turn(self, account: str) -> None:
        """Send the next post of one account if its pace allows, then yield to other lanes."""
        with self._lock:
            lane = self._queues.get(account)
            if self._stopping or not lane:
                self._active.discard(account)
                self._changed.notify_all()
                return
            now = self._clock.now()
            last, pace = self._last.get(account), self._pace(account)
            if last is not None and pace > timedelta(0) and last + pace > now:
                self._clock.call_at(last + pace, lambda: self._wake(account), f"pace:{account}")
                return
            key = lane.popleft()
            self._queued.discard(key)
            self._last[account] = now
            self._running += 1
        try:
            self._run(account, key)
        except Exception:  # a bug: log it, keep the lane and the row (the next start settles it)
            log.exception("delivering %s failed unexpectedly; its row stays in flight", key)
        finally:
            with self._lock:
                self._running -= 1
                self._changed.notify_all()
        self._wake(account)  # to the back of the line: lanes take turns


# -- the daemon -------------------------------------------------------------


def problems_of(project: Project, now: datetime, days: int = 1) -> list[Problem]:
    """Return what keeps a set of files from being run: errors, and unset secrets in use.

    Every post is rendered over ``days`` days (or at its next occurrence), which
    also compiles every template the schedule uses, so a version that passed
    keeps rendering even if a template file is broken later.
    """
    errors = [p for p in dryrun.validate(project, now, days) if p.severity == "error"]
    for account in project.accounts_in_use():
        errors.extend(
            Problem(p.path, p.line, p.message)
            for p in account.unset_problems("run cannot send without it")
        )
    return sorted(set(errors))


def grace_of(post: Post) -> timedelta:
    """Return how late an occurrence of a post may still go out."""
    return post.grace if post.grace is not None else DEFAULT_GRACE


def past_grace(late: timedelta, grace: timedelta) -> str:
    """Say that an occurrence is too late to send."""
    return f"{format_duration(late)} late is past its grace of {format_duration(grace)}"


def missing_secrets(project: Project) -> list[str]:
    """Return the unset variables of the accounts in use, sorted."""
    return sorted({u.var for a in project.accounts_in_use() for u in a.unset})


class Daemon:
    """The long-running scheduler, with its time, HTTP transport and files injected."""

    def __init__(
        self,
        project: Project,
        ledger: Ledger,
        clockwork: Clockwork,
        *,
        load: Callable[[], Project] | None = None,
        transport: httpx.BaseTransport | None = None,
        workers: int = DEFAULT_WORKERS,
        lookback: timedelta = LOOKBACK,
        retry_window: timedelta = DEFAULT_RETRY_WINDOW,
        owner: str | None = None,
        on_project: Callable[[Project], None] | None = None,
    ) -> None:
        self.project = project
        self.ledger = ledger
        self.clockwork = clockwork
        self.load = load
        self.transport = transport
        self.lookback = lookback
        self.retry_window = retry_window
        self.owner = owner or owner_id()
        self.on_project = on_project or (lambda _project: None)
        self.dispatcher = self._dispatcher(project)
        self.lanes = Lanes(self._process, clockwork, self._pace, workers)
        self._watermark: datetime | None = None
        self._wake_lock = threading.RLock()
        self._busy: set[str] = set()
        self._pending: dict[str, _Pending] = {}  # queued occurrences without a row yet, by key
        self._busy_lock = threading.Lock()
        self.failed = 0  # rows this process ended failed or uncertain (run --once's exit code)
        self.settled: list[Entry] | None = None  # every row settled, when a caller wants them
        self.next_wake: datetime | None = None
        self.on_project(project)

    def _dispatcher(self, project: Project, before: Dispatcher | None = None) -> Dispatcher:
        new = Dispatcher(
            project,
            self.ledger,
            clock=self.clockwork.now,
            transport=self.transport,
            retry_window=self.retry_window,
            owner=self.owner,
            pacing=False,
        )
        if before is not None:  # keep sessions and live limits of accounts that did not change
            for name, adapter in before._adapters.items():
                old, now = before.project.accounts.get(name), project.accounts.get(name)
                if old is not None and now is not None and old.settings == now.settings:
                    new._adapters[name] = adapter
                    if name in before._limits:
                        new._limits[name] = before._limits[name]
        return new

    def _pace(self, account: str) -> timedelta:
        found = self.project.accounts.get(account)
        return found.settings.pace if found is not None else timedelta(0)

    # -- start-up ------------------------------------------------------------

    def start(self) -> None:
        """Settle what a stopped process left in flight, then catch up and plan the next wake."""
        now = self.clockwork.now()
        left = self.ledger.in_flight()
        if left:
            log.info("settling %d row(s) a stopped process left in flight", len(left))
        for entry in left:
            if entry.next_attempt_at is not None and entry.next_attempt_at > now:
                self._retry_at(entry)
            else:
                self.lanes.put(entry.account, entry.key)
        self._watermark = now - self.lookback
        self.wake()
        self.clockwork.call_at(now, self.warm, "warm")

    def warm(self) -> None:
        """Build the HTTP client of every account in use, so that a burst does not wait for them.

        Run once start-up is done (each costs about 0.5 ms; 200 accounts would
        hold up the first burst by 0.1 s): the first occurrence finds them ready.
        """
        project, dispatcher = self.project, self.dispatcher
        names = {
            name
            for lc in project.campaigns
            for post in lc.campaign.posts
            for name in (post.accounts if post.accounts is not None else lc.campaign.accounts)
        }
        for name in sorted(names):
            account = project.accounts.get(name)
            if account is not None:
                dispatcher.adapter(account)

    # -- waking ----------------------------------------------------------------

    def wake(self) -> None:
        """Claim and queue what fell due since the last wake; record what will not be sent.

        If the ledger cannot be written, the wake is tried again a minute later:
        the daemon never stops waking because of one failure.
        """
        with self._wake_lock:
            now = self.clockwork.now()
            since = self._watermark if self._watermark is not None else now
            try:
                self._settle_window(lambda _post: since, now)
            except Exception as exc:
                self._trouble("waking", exc)
                self.clockwork.call_at(now + TROUBLE_PAUSE, self.wake, "wake")
                self.next_wake = now + TROUBLE_PAUSE
                return
            self._watermark = now
            self._plan_next_wake(now)

    def _trouble(self, doing: str, exc: Exception) -> None:
        if isinstance(exc, SolidarityError):
            log.error(
                "%s failed: %s; trying again in %s", doing, exc, format_duration(TROUBLE_PAUSE)
            )
        else:  # a bug: keep its traceback for the report
            log.exception(
                "%s failed unexpectedly; trying again in %s", doing, format_duration(TROUBLE_PAUSE)
            )

    def _settle_window(self, since: Callable[[Post], datetime], now: datetime) -> None:
        """Queue every due occurrence in ``(since(post), now]`` without a row; record the rest."""
        project = self.project
        found: list[Located] = []
        for lc in project.campaigns:
            tz = lc.campaign.tz
            for post in lc.campaign.posts:
                lo, hi = since(post) + _TICK, now + _TICK
                if lo >= hi:
                    continue
                for occ in plan_post(lc.campaign, post, lo.astimezone(tz), hi.astimezone(tz)):
                    account = project.accounts.get(occ.account)
                    if account is not None:
                        found.append((lc, post, occ, account))
        if not found:
            return
        taken = self.ledger.existing([f[2].key for f in found])
        for lc, post, occ, account in sorted(
            (f for f in found if f[2].key not in taken and f[2].key not in self._pending),
            key=lambda f: order(f[2]),
        ):
            grace = grace_of(post)
            at = occ.scheduled_for + jitter_of(occ, post.jitter)
            late = now - at
            claim = claim_for(occ, account)
            if occ.status != "due":
                self._final(self.ledger.record(claim, "skipped", occ.reason, now))
            elif late > grace:
                reason = (
                    f"due {occ.scheduled_for:%Y-%m-%d %H:%M %Z} while no daemon ran; "
                    + past_grace(late, grace)
                )
                self._final(self.ledger.record(claim, "missed", reason, now))
            else:  # claimed by the lane as it sends: no write until then
                self._pending[claim.key] = _Pending(claim, project, (lc, post, occ, account))
                self._queue(claim.account, claim.key, at, now)

    def _queue(self, account: str, key: str, at: datetime, now: datetime) -> None:
        """Put an occurrence on its lane now, or at its jittered time."""
        if at > now:
            self.clockwork.call_at(at, lambda: self.lanes.put(account, key), f"jitter:{key}")
        else:
            self.lanes.put(account, key)

    def _plan_next_wake(self, now: datetime) -> None:
        upcoming = now + MAX_SLEEP
        for lc in self.project.campaigns:
            for post in lc.campaign.posts:
                when = next_instant(lc.campaign, post, (now + _TICK).astimezone(lc.campaign.tz))
                if when is not None and when < upcoming:
                    upcoming = when
        self.clockwork.call_at(upcoming, self.wake, "wake")
        self.next_wake = upcoming

    def _final(self, entry: Entry | None, duration: float = 0.0) -> None:
        if entry is None:
            return
        if entry.status in ("failed", "uncertain"):
            self.failed += 1
        if self.settled is not None:
            self.settled.append(entry)
        log_delivery(entry, duration)

    # -- sending -----------------------------------------------------------------

    def _retry_at(self, entry: Entry) -> None:
        assert entry.next_attempt_at is not None
        self.clockwork.call_at(
            entry.next_attempt_at,
            lambda: self.lanes.put(entry.account, entry.key),
            f"retry:{entry.key}",
        )

    def _locate(self, entry: Entry | Claim) -> Located | str:
        """Plan a row's occurrence again from the files in force, or say why it is gone.

        The answer depends on the files and the row alone, not on the time.
        """
        project = self.project
        lc = project.campaign(entry.campaign)
        if lc is None:
            return f"campaign '{entry.campaign}' is no longer in the campaign files"
        c = lc.campaign
        post = next((p for p in c.posts if p.id == entry.post), None)
        if post is None:
            return f"post '{entry.post}' was removed from {c.name}"
        account = project.accounts.get(entry.account)
        names = post.accounts if post.accounts is not None else c.accounts
        if account is None or entry.account not in names:
            return f"post '{entry.post}' no longer goes to {entry.account}"
        instant = entry.scheduled_for.astimezone(c.tz)
        fresh = list(plan_post(c, post, instant, instant + _TICK, entry.account))
        for occ in fresh:
            if occ.key == entry.key:
                return (lc, post, occ, account) if occ.status == "due" else occ.reason
        person = c.person(entry.person) if entry.person else None
        if person is not None and person.released_by(instant.date()):
            return f"{person.name} was released on {person.released_on}"
        if c.ends is not None and not fresh:
            return f"the campaign ended ({c.ends})"
        if fresh and all(o.status != "due" for o in fresh):
            return fresh[0].reason
        return f"post '{entry.post}' is no longer scheduled at {instant:%Y-%m-%d %H:%M %Z}"

    def _take(self, key: str) -> bool:
        with self._busy_lock:
            if key in self._busy:
                return False
            self._busy.add(key)
            return True

    def _release(self, key: str) -> None:
        with self._busy_lock:
            self._busy.discard(key)

    def _process(self, account: str, key: str) -> None:
        """Send one queued row (a lane's turn): re-check, read back if needed, try once."""
        if not self._take(key):
            return
        started = time.monotonic()
        try:
            self._deliver(key, started)
        except Exception as exc:  # the ledger or a bug: the row stays in flight, tried again
            self._trouble(f"delivering {key}", exc)
            self.clockwork.call_at(
                self.clockwork.now() + TROUBLE_PAUSE,
                lambda: self.lanes.put(account, key),
                f"trouble:{key}",
            )
        finally:
            self._release(key)

    def _deliver(self, key: str, started: float) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            try:
                entry = self._first(pending)
            except Exception:  # tried again after a pause; a row it wrote is found then
                self._pending.setdefault(key, pending)
                raise
            self._final(entry, time.monotonic() - started)
            return
        entry = self.ledger.get(key)
        if entry is None or entry.status not in ("claimed", "sending", "retrying"):
            return
        turned = self._turn(entry)
        if turned is None:  # not yet: its jittered time is ahead
            return
        entry = turned
        if entry.status in ("retrying", "sending") and entry.next_attempt_at is not None:
            self._retry_at(entry)
            return
        self._final(entry, time.monotonic() - started)

    def _first(self, pending: _Pending) -> Entry | None:
        """Send a queued occurrence for the first time: re-check it, claim it, try once."""
        claim = pending.claim
        # planned from the files in force? then _locate would say the same
        found = pending.located if pending.project is self.project else self._locate(claim)
        if isinstance(found, str):
            self._requeue_replacements(claim)
            return self.ledger.record(claim, "skipped", found, self.clockwork.now())
        entry = self.dispatcher.attempt_new(claim, *found)
        if entry is None:  # the key has a row: another process's, or this one's, half-done
            row = self.ledger.get(claim.key)
            if row is None or row.owner != self.owner or row.status not in IN_FLIGHT:
                return None
            entry = self._turn(row)  # a "sending" row is read back, never sent blindly
            if entry is None:
                return None
        if entry.status in ("retrying", "sending") and entry.next_attempt_at is not None:
            self._retry_at(entry)
            return None
        return entry

    def _turn(self, entry: Entry) -> Entry | None:
        now = self.clockwork.now()
        found = self._locate(entry)
        account = self.project.accounts.get(entry.account)
        if entry.status == "sending":  # a request may have gone out: never send blindly
            if account is None:
                return self.ledger.uncertain(
                    entry.id,
                    f"{entry.error or 'the process stopped mid-send'}; account {entry.account} is gone, so it cannot be read back",
                    now,
                )
            settled = self.dispatcher.verify(entry, account)
            if settled is not None:
                return settled
        if isinstance(found, str):
            self._requeue_replacements(entry)
            return self.ledger.settle(entry.id, "skipped", found, now)
        lc, post, occ, account = found
        if entry.status == "claimed" and entry.owner != self.owner:
            grace = grace_of(post)
            at = entry.scheduled_for + jitter_of(occ, post.jitter)
            late = now - at
            if at > now:
                self._queue(entry.account, entry.key, at, now)
                return None
            if late > grace:
                return self.ledger.settle(
                    entry.id,
                    "missed",
                    "claimed by a process that stopped before sending; " + past_grace(late, grace),
                    now,
                )
        if entry.owner != self.owner:
            entry = self.ledger.adopt(entry.id, self.owner, now)
        if entry.status != "claimed" and now > entry.created_at + self.retry_window:
            # a "sending" row got here only after reading back showed it was not posted
            return self.ledger.failed(
                entry.id,
                f"gave up after {entry.attempts} tries within {format_duration(self.retry_window)}: {entry.error}",
                now,
            )
        return self.dispatcher.attempt(entry, lc, post, occ, account)

    def _requeue_replacements(self, entry: Entry | Claim) -> None:
        """When a release changed whom a rotating slot features, claim the new person's post."""
        lc = self.project.campaign(entry.campaign)
        if lc is None or entry.person is None:
            return
        post = next((p for p in lc.campaign.posts if p.id == entry.post), None)
        account = self.project.accounts.get(entry.account)
        if post is None or account is None or not post.rotate:
            return  # for_each: the others of the slot have rows of their own already
        instant = entry.scheduled_for.astimezone(lc.campaign.tz)
        fresh = [
            o
            for o in plan_post(lc.campaign, post, instant, instant + _TICK, entry.account)
            if o.status == "due" and o.key != entry.key
        ]
        taken = self.ledger.existing([o.key for o in fresh])
        for occ in fresh:
            if occ.key not in taken and occ.key not in self._pending:
                located = (lc, post, occ, account)
                self._pending[occ.key] = _Pending(claim_for(occ, account), self.project, located)
                self.lanes.put(occ.account, occ.key)

    # -- live edits ----------------------------------------------------------------

    def reload(self, why: str = "files changed") -> bool:
        """Load the files again; put a valid version in force at once, else keep the last one."""
        if self.load is None:
            return False
        try:
            project = self.load()
        except (SolidarityError, OSError) as exc:
            log.error("reload (%s) failed: %s; the last valid version stays in force", why, exc)
            return False
        now = self.clockwork.now()
        problems = problems_of(project, now)
        if problems:
            for problem in problems:
                log.error("%s", problem)
            log.error(
                "reload (%s): %d problem(s); the last valid version stays in force",
                why,
                len(problems),
            )
            return False
        with self._wake_lock:
            self.project = project
            self.dispatcher = self._dispatcher(project, self.dispatcher)
            self.on_project(project)
            log.info(
                "reloaded (%s): %d campaign(s), %d account(s)",
                why,
                len(project.campaigns),
                len(project.accounts),
            )
            self._cancel_gone()
            watermark = self._watermark or now

            def since(post: Post) -> datetime:  # a post added or moved within its grace goes out
                grace = grace_of(post)
                return min(watermark, now - grace)

            self._settle_window(since, now)
            self._watermark = now
            self._plan_next_wake(now)
        return True

    def _cancel_gone(self) -> None:
        """Skip, with the reason, the unsent rows whose occurrence the new files no longer have."""
        now = self.clockwork.now()
        for entry in self.ledger.in_flight():
            if entry.status == "sending" or not self._take(entry.key):
                continue
            try:
                found = self._locate(entry)
                if isinstance(found, str):
                    self.clockwork.cancel(f"retry:{entry.key}")
                    self._final(self.ledger.settle(entry.id, "skipped", found, now))
            finally:
                self._release(entry.key)


# -- the single-daemon lock ------------------------------------------------------


@contextlib.contextmanager
def ledger_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock beside a SQLite ledger file, or refuse with who holds it.

    Several daemons are for PostgreSQL; on SQLite a second one is refused.
    """
    import fcntl

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        yield
        return
    path = Path(f"{database}.lock")
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise SolidarityError(
                f"another solidarity daemon ({holder}) is running on the ledger {database}; "
                "stop it first (several daemons need a PostgreSQL ledger)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}\n")
        handle.flush()
        yield
    finally:
        handle.close()


# -- serving ----------------------------------------------------------------------


def _watched(settings_paths: tuple[Path, Path, Path]) -> tuple[list[Path], list[Path], set[Path]]:
    """Return the folders to watch recursively, those to watch flat, and the loose files."""
    campaigns, templates, accounts = (p.resolve() for p in settings_paths)
    deep = [p for p in (campaigns, templates) if p.is_dir()]
    files = {accounts, Path(".env").resolve()}
    flat = sorted({f.parent for f in files if f.parent.is_dir()} - set(deep))
    return deep, flat, files


def _watch(
    deep: list[Path],
    flat: list[Path],
    files: set[Path],
    stop: threading.Event,
    changed: Callable[[str], None],
) -> list[threading.Thread]:
    """Watch the user's files (inotify through watchfiles); call ``changed`` with a path."""
    from watchfiles import watch

    def worth(path: str) -> bool:
        p = Path(path)
        if p in files:
            return True
        if p.name.startswith(".") or p.name.endswith("~"):
            return False
        return any(p.is_relative_to(d) for d in deep)

    def loop(paths: list[Path], recursive: bool) -> None:
        try:
            for changes in watch(
                *paths,
                stop_event=stop,
                recursive=recursive,
                debounce=400,
                watch_filter=lambda _change, path: worth(path),
                raise_interrupt=False,
            ):
                changed(sorted(path for _, path in changes)[0])
        except Exception as exc:  # the watcher died (a folder removed): SIGHUP still works
            log.warning("watching files stopped: %s; send SIGHUP to reload", exc)

    threads = []
    for paths, recursive in ((deep, True), (flat, False)):
        if paths:
            thread = threading.Thread(
                target=loop, args=(paths, recursive), name="watch", daemon=True
            )
            thread.start()
            threads.append(thread)
    return threads


def serve(
    daemon: Daemon,
    clockwork: SchedulerClockwork,
    paths: tuple[Path, Path, Path],
    stop_timeout: float = STOP_TIMEOUT,
) -> None:
    """Run until SIGTERM or SIGINT; reload on SIGHUP and when a watched file changes."""
    import signal

    wakeup = threading.Event()
    requests: deque[str] = deque()

    def ask(what: str) -> None:
        requests.append(what)
        wakeup.set()

    def on_signal(signum: int, _frame: object) -> None:
        ask("stop" if signum in (signal.SIGTERM, signal.SIGINT) else "SIGHUP")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    stop_watching = threading.Event()
    deep, flat, files = _watched(paths)
    _watch(deep, flat, files, stop_watching, lambda path: ask(f"{path} changed"))
    started = time.monotonic()
    daemon.start()
    clockwork.start()
    gc.freeze()  # what start-up built lives as long as the process: keep it out of collections
    log.info(
        "ready in %.2fs: %d campaign(s), %d account(s); next wake %s",
        time.monotonic() - started,
        len(daemon.project.campaigns),
        len(daemon.project.accounts),
        f"{daemon.next_wake:%Y-%m-%d %H:%M:%S %Z}" if daemon.next_wake else "-",
    )
    while True:
        wakeup.wait(3600)
        wakeup.clear()
        asked = []
        while requests:
            asked.append(requests.popleft())
        if "stop" in asked:
            break
        if asked:
            try:
                daemon.reload(asked[-1] if len(asked) == 1 else f"{asked[0]} and more")
            except Exception:  # a bug: report it, keep the version in force, keep running
                log.exception(
                    "reloading failed unexpectedly; the last valid version stays in force"
                )
    log.info("stopping: no new work; waiting up to %.0fs for requests in flight", stop_timeout)
    stop_watching.set()
    clockwork.shutdown()
    if not daemon.lanes.stop(stop_timeout):
        log.warning(
            "requests still in flight after %.0fs; the next start settles them", stop_timeout
        )
    left = daemon.lanes.queued()
    if left:
        log.info("%d occurrence(s) not sent yet; the next start sends them within grace", left)
    daemon.ledger.close()
    log.info("stopped")
