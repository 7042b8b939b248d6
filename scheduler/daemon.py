"""The daemon: wake at each occurrence, decide, send it at its account's pace, settle crashes.

The ledger is the truth. On waking, every occurrence that fell due since the
last wake and has no row is decided (:func:`scheduler.decision.decide`) and, if
it goes out, queued on its account's lane (:mod:`scheduler.lanes`). Right before
each request the lane decides again, from the files in force
(:mod:`scheduler.inforce`) and the holds in force (:mod:`scheduler.holdbook`):
what was paused, ended, released or removed meanwhile is ``skipped``; what a
hold or a file problem stops waits, and goes out when released within its
grace, else ends ``held``. The row is claimed already ``sending`` with its text,
in one write, before the request goes out. A queued occurrence has no row yet:
if the process dies, the next start finds it without one.

Time comes from a :class:`~scheduler.clockwork.Clockwork`: APScheduler in the
daemon, a manual one in tests, ``run --once`` and ``send``. All run this code.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from scheduler import decision as d
from scheduler import dryrun
from scheduler.alerts import Alerts
from scheduler.clockwork import Clockwork, ManualClockwork, SchedulerClockwork
from scheduler.dispatch import DEFAULT_RETRY_WINDOW, Dispatcher, claim_for
from scheduler.errors import Problem, SolidarityError
from scheduler.holdbook import HoldBook
from scheduler.holds import Hold, HoldStore, owner_node
from scheduler.inforce import InForce, assess, lifted
from scheduler.lanes import Lanes
from scheduler.ledger import Entry, Ledger
from scheduler.locate import (
    DEFAULT_GRACE,
    Located,
    due_of,
    grace_of,
    plan_window,
    repeats,
    touches,
    went_already,
)
from scheduler.owners import Lease, owner_id
from scheduler.paces import SharedPace
from scheduler.planning import next_instant, order
from scheduler.project import Project
from scheduler.serve import ledger_lock, serve
from scheduler.sharing import Sharing
from scheduler.silence import Silence
from scheduler.timeutil import format_duration
from scheduler.turns import TROUBLE_PAUSE, Pending, Turns

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_GRACE",
    "Daemon",
    "ManualClockwork",
    "SchedulerClockwork",
    "ledger_lock",
    "missing_secrets",
    "problems_of",
    "serve",
]

log = logging.getLogger("scheduler.daemon")

LOOKBACK = timedelta(days=7)  # how far back start-up gives a missed occurrence its row
DEFAULT_WORKERS = 40  # measured best of 8/20/40/80: see docs/benchmarks.md (fan-out)
MAX_SLEEP = timedelta(hours=1)  # wake at least this often, whatever the schedule says
_TICK = timedelta(microseconds=1)


def problems_of(project: Project, now: datetime, days: int = 1) -> list[Problem]:
    """Return what keeps a set of files from being run cleanly: errors, and unset secrets in use."""
    errors = [p for p in dryrun.validate(project, now, days) if p.severity == "error"]
    for account in project.accounts_in_use():
        errors.extend(
            Problem(p.path, p.line, p.message)
            for p in account.unset_problems("run cannot send without it")
        )
    return sorted(set(errors))


def missing_secrets(project: Project) -> list[str]:
    """Return the unset variables of the accounts in use, sorted."""
    return sorted({u.var for a in project.accounts_in_use() for u in a.unset})


class Daemon(Turns, Sharing):
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
        holds: HoldBook | None = None,
        wait_for_holds: bool = True,
        alerts: Alerts | None = None,
        orphan_scan: timedelta | None = None,
    ) -> None:
        self.ledger = ledger
        self.clockwork = clockwork
        self.load = load
        self.transport = transport
        self.lookback = lookback
        self.retry_window = retry_window
        self.owner = owner or owner_id()
        self.on_project = on_project or (lambda _project: None)
        self.book = holds if holds is not None else HoldBook(HoldStore(ledger))
        self.wait_for_holds = wait_for_holds  # run --once and send: the next run decides
        self.alerts = alerts or Alerts(None)
        self.orphan_scan = orphan_scan  # how often to look for a gone daemon's rows (serve)
        self.lease: Lease | None = None  # renews this process's leases (set by the runner)
        self.silence = Silence()
        self.files: InForce = assess(project, None, clockwork.now())
        self.project = self.files.project
        self.book.set_files(self.files.holds)
        self.dispatcher = self._dispatcher(self.project)
        ledger.measure_skew(clockwork.now)  # shared times are kept in the server's clock
        self.paces = SharedPace(ledger, self.owner)
        self.lanes = Lanes(self._process, clockwork, self._pace, workers, self._shared_turn)
        self._watermark: datetime | None = None
        self._started: tuple[datetime, datetime] | None = None  # start, and how far it looked back
        self._wake_lock = threading.RLock()
        self._init_turns()
        self._init_sharing()
        self.failed = 0  # rows this process ended failed or uncertain (run --once's exit code)
        self.settled: list[Entry] | None = None  # every row settled, when a caller wants them
        self.next_wake: datetime | None = None
        self.on_project(self.project)

    def _dispatcher(self, project: Project, before: Dispatcher | None = None) -> Dispatcher:
        new = Dispatcher(
            project,
            self.ledger,
            clock=self.clockwork.now,
            transport=self.transport,
            retry_window=self.retry_window,
            owner=self.owner,
            on_limit=lambda account, until, why: self.paces.limit(account, until, why),
        )
        if before is not None:  # keep sessions and live limits of accounts that did not change
            new.keep_from(before)
        return new

    def _pace(self, account: str) -> timedelta:
        found = self.project.accounts.get(account)
        return found.settings.pace if found is not None else timedelta(0)

    # -- start-up ------------------------------------------------------------

    def start(self) -> None:
        """Settle what a stopped process left in flight, then catch up and plan the next wake."""
        now = self.clockwork.now()
        self._report(self.files, InForce(self.project), "started")
        self.adopt_orphans()
        self._watermark = now - self.lookback
        self._started = (now, self._watermark)
        self.wake()
        self.clockwork.call_at(now, self.warm, "warm")

    def warm(self) -> None:
        """Build the HTTP client of every account in use, so that a burst does not wait for them."""
        project, dispatcher = self.project, self.dispatcher
        for account in sorted(project.accounts_in_use(), key=lambda a: a.name):
            dispatcher.adapter(account)

    def send_now(self, located: Sequence[Located]) -> None:
        """Send occurrences now through the lanes, deciding each like the daemon (``send``)."""
        for lc, post, occ, account in located:
            claim = claim_for(occ, account)
            self._adhoc[claim.key] = (lc, post, occ, account)
            self._pending[claim.key] = Pending(claim, self.project, (lc, post, occ, account))
            self.lanes.put(account.name, claim.key)

    # -- waking ----------------------------------------------------------------

    def wake(self) -> None:
        """Decide what fell due since the last wake; queue what goes out, record the rest.

        If the ledger cannot be written, the wake is tried again a minute later:
        the daemon never stops waking because of one failure.
        """
        with self._wake_lock:
            now = self.clockwork.now()
            since = self._watermark if self._watermark is not None else now
            try:
                self._settle_window(since, now)
            except Exception as exc:
                self._trouble("waking", exc)
                self.clockwork.call_at(now + TROUBLE_PAUSE, self.wake, "wake")
                self.next_wake = now + TROUBLE_PAUSE
                return
            self._watermark = now
            self._plan_next_wake(now)
            self._tell_silence(now)

    def _tell_silence(self, now: datetime) -> None:
        """Alert each account that had posts due and has posted nothing for its silence_alert."""
        windows = {a.name: a.settings.silence_alert for a in self.project.accounts.values()}
        for account, last, due in self.silence.check(now, windows):
            self.alerts.silent(account, last, due, format_duration(windows[account]))

    def _settle_window(
        self,
        since: dict[str, datetime] | datetime,
        now: datetime,
        *,
        lifted: Sequence[Hold] = (),
        late_before: datetime | None = None,
    ) -> None:
        """Decide every occurrence in ``(since, now]`` without a row: queue, wait or record it.

        ``lifted``: file holds just fixed; what they kept from going out past its
        grace ends ``held``. ``late_before``: the last wake; an occurrence from
        before it with a new identity (a campaign or post renamed, a rotation
        moved by a release) is not sent if its slot went out already.
        """
        project = self.project
        found = plan_window(project, since, now)
        if not found:
            return
        taken = self.ledger.existing([f[2].key for f in found])
        fresh = sorted(
            (f for f in found if f[2].key not in taken and f[2].key not in self._pending),
            key=lambda f: order(f[2]),
        )
        if self.ledger.engine.dialect.name == "postgresql":  # daemons may share it
            # accounts in an order of this daemon's own (each account's own order kept), so
            # that daemons sharing a ledger start a burst on different accounts
            fresh.sort(key=lambda f: _rank(self.owner, f[2].account))
        latest: dict[tuple[str, str, str, str | None], datetime] = {}
        for _lc, post, occ, _account in fresh:  # of a series, only the latest due catches up
            if repeats(post) and occ.status == "due" and due_of(occ, post).at <= now:
                latest[(occ.campaign, occ.post, occ.account, occ.person)] = occ.scheduled_for
        holds = self.book.current()
        for lc, post, occ, account in fresh:
            newest = latest.get((occ.campaign, occ.post, occ.account, occ.person))
            due = due_of(occ, post)
            decided = d.decide(
                due,
                now,
                stopped=occ.reason if occ.status != "due" else None,
                holds=holds,
                newer=newest if newest is not None and newest > occ.scheduled_for else None,
            )
            kept = d.covering([h for h in lifted if h.since <= due.at], due)
            if isinstance(decided, d.Miss) and decided.status == "missed" and kept is not None:
                decided = d.Miss(
                    f"held ({kept.what}: {kept.why}; source {kept.source}) until it was fixed; "
                    + d.late_by(now - due.at, due.grace),
                    "held",
                )
            if isinstance(decided, d.Send) and late_before and occ.scheduled_for <= late_before:
                went = went_already(
                    project, self.ledger.at(occ.account, occ.scheduled_for), lc, post, occ, account
                )
                if went is not None:
                    decided = d.Skip(went)
            if isinstance(decided, (d.Send, d.Wait)):  # meant to go out (not held, not missed)
                self.silence.due(occ.account, due.at)
            pending = Pending(claim_for(occ, account), project, (lc, post, occ, account))
            self._final(self._apply(decided, pending, now))

    def _plan_next_wake(self, now: datetime) -> None:
        upcoming = now + MAX_SLEEP
        for lc in self.project.campaigns:
            for post in lc.campaign.posts:
                when = next_instant(lc.campaign, post, (now + _TICK).astimezone(lc.campaign.tz))
                if when is not None and when < upcoming:
                    upcoming = when
        self.clockwork.call_at(upcoming, self.wake, "wake")
        self.next_wake = upcoming

    # -- live edits ----------------------------------------------------------------

    def reload(self, why: str = "files changed") -> bool:
        """Load the files again and put them in force at once, holding what a problem touches.

        Returns whether the new files have no problem.
        """
        if self.load is None:
            return False
        now = self.clockwork.now()
        try:
            files = assess(self.load(), self.files, now)
        except Exception as exc:  # nothing can be trusted: hold everything until a load works
            if isinstance(exc, (SolidarityError, OSError)):
                log.error(
                    "reload (%s) failed: %s; all posting is held until the files load", why, exc
                )
            else:  # a bug: keep its traceback for the report
                log.exception("reload (%s) failed unexpectedly; all posting is held", why)
            stop = Hold(
                None, None, None, str(exc) or type(exc).__name__, now, source="(loading the files)"
            )
            problem = Problem("(loading the files)", 0, stop.why)
            files = InForce(self.project, [stop], [problem], self.files.by_path)
        with self._wake_lock:
            before = self.files
            self.files, self.project = files, files.project
            self.dispatcher = self._dispatcher(files.project, self.dispatcher)
            self.on_project(files.project)
            self._report(files, before, f"reloaded ({why})")
            self._cancel_gone()
            watermark = self._watermark or now
            gone = lifted(before, files)
            since = {  # a post added or moved within its grace goes out; a fix looks back
                f"{lc.campaign.name}/{post.id}": min(
                    [watermark, now - grace_of(post)]
                    + [self._began(h) for h in gone if touches(h, lc, post)]
                )
                for lc in files.project.campaigns
                for post in lc.campaign.posts
            }
            self._settle_window(since, now, lifted=gone, late_before=watermark)
            self._watermark = now
            self._plan_next_wake(now)
        self.recheck_held()
        return not files.problems

    def _began(self, hold: Hold) -> datetime:
        """Return from when a lifted file hold kept occurrences from being planned."""
        if self._started is not None and hold.since <= self._started[0]:
            return self._started[1]  # in force since start-up: it also hid start-up's catch-up
        return hold.since

    def _report(self, files: InForce, before: InForce, doing: str) -> None:
        """Log each new problem once and each fixed one; put the file holds in force."""
        old = set(before.problems)
        for problem in files.problems:
            if problem not in old:
                log.error("%s", problem)
        for problem in sorted(old - set(files.problems)):
            log.info("fixed: %s", problem)
        self.book.set_files(files.holds)
        known = {(h.what, h.source) for h in before.holds}
        added = [h for h in files.holds if (h.what, h.source) not in known]
        for hold in added:
            log.warning("held: %s, by %s: %s", hold.what, hold.source, hold.why)
        now_held = {(h.what, h.source) for h in files.holds}
        self.alerts.holds(added, [h for h in before.holds if (h.what, h.source) not in now_held])
        project = files.project
        log.info(
            "%s: %d campaign(s), %d account(s), %d file problem(s) holding %d thing(s)",
            doing,
            len(project.campaigns),
            len(project.accounts),
            len(files.problems),
            len(files.holds),
        )
        if self.book.store is None:
            return
        try:
            now = self.clockwork.now()
            self.book.store.sync_files(files.holds, now, node=owner_node(self.owner))
        except SolidarityError as exc:
            log.error("the file holds could not be written to the ledger: %s", exc)


def _rank(owner: str, account: str) -> bytes:
    """Order accounts for one daemon: a hash of both names, so each daemon's order differs."""
    return hashlib.blake2b(f"{owner}\n{account}".encode(), digest_size=8).digest()
