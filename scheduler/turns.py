"""What becomes of one occurrence: each decision carried out, at a lane's turn or on a hold.

:class:`Turns` is the half of the daemon that acts on one occurrence at a time:
a first send (decide, claim as it goes out, try once), a row in flight (read
back, retry, settle), and what waits on a hold (:mod:`scheduler.holdwaits`).
The other half, :class:`scheduler.daemon.Daemon`, wakes, plans and reloads.

A send is decided twice: when its lane's turn comes, and again right before its
row is claimed or marked ``sending`` (the dispatcher's ``gate``), because
readying it may take a request of its own (the live limit, up to 30 s) and a
hold made meanwhile must still stop it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from scheduler import decision as d
from scheduler.alerts import Alerts
from scheduler.clockwork import Clockwork
from scheduler.dispatch import Dispatcher, claim_for, log_delivery
from scheduler.errors import RenderError, RowTakenError, SolidarityError
from scheduler.holdbook import HoldBook
from scheduler.holdwaits import HoldWaits, Pending
from scheduler.lanes import Lanes
from scheduler.ledger import IN_FLIGHT, Claim, Entry, Ledger
from scheduler.locate import Located, due_of, locate, replacements
from scheduler.owners import orphaned
from scheduler.project import Project
from scheduler.silence import Silence
from scheduler.timeutil import format_duration

__all__ = ["BUSY_PAUSE", "TROUBLE_PAUSE", "Pending", "Stopped", "Turns"]

log = logging.getLogger("scheduler.daemon")

TROUBLE_PAUSE = timedelta(minutes=1)  # wait after the ledger failed, before trying again
BUSY_PAUSE = timedelta(seconds=1)  # a key another thread looks at is queued again this soon


class Stopped(Exception):
    """A hold made while an occurrence was readied (its live limit asked for) stops it now."""

    def __init__(self, decision: d.Hold | d.Miss) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class Turns(HoldWaits):
    """Carry out decisions on occurrences and rows; the daemon builds the state it uses."""

    ledger: Ledger
    project: Project
    dispatcher: Dispatcher
    clockwork: Clockwork
    lanes: Lanes
    book: HoldBook
    owner: str
    retry_window: timedelta
    wait_for_holds: bool
    failed: int
    settled: list[Entry] | None
    alerts: Alerts
    silence: Silence
    _defer: Callable[[Pending], bool]  # Sharing's: an account another daemon is sending
    _taken_elsewhere: Callable[[str, Entry], None]  # Sharing's: another daemon has a key

    def _init_turns(self) -> None:
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._pending: dict[str, Pending] = {}  # occurrences without a row yet, by key
        self._held: dict[str, tuple[str, datetime]] = {}  # waiting on a hold: account, until
        self._series: dict[tuple[str, str, str, str | None], str] = {}  # held first sends
        self.left_held: list[tuple[str, str]] = []  # held, not waited for (--once): key, why
        self._holds_seen = 0  # the hold book's changes when what waits was last decided
        self._adhoc: dict[str, Located] = {}  # sends asked for by a person (``send``), by key

    def _locate(self, entry: Entry | Claim) -> Located | str:
        """Plan a row's occurrence from the files in force (or a person's ``send``)."""
        return self._adhoc.get(entry.key) or locate(self.project, entry)

    def _trouble(self, doing: str, exc: Exception) -> None:
        pause = format_duration(TROUBLE_PAUSE)
        if isinstance(exc, SolidarityError):
            log.error("%s failed: %s; trying again in %s", doing, exc, pause)
        else:  # a bug: keep its traceback for the report
            log.exception("%s failed unexpectedly; trying again in %s", doing, pause)

    def _apply(self, decided: d.Decision, pending: Pending, now: datetime) -> Entry | None:
        """Carry out a decision on an occurrence without a row; return the row it ends as."""
        claim = pending.claim
        if isinstance(decided, d.Skip):
            return self.ledger.record(claim, "skipped", decided.reason, now)
        if isinstance(decided, d.Miss):
            return self.ledger.record(claim, decided.status, decided.reason, now)
        self._pending[claim.key] = pending
        if isinstance(decided, d.Hold):
            self._hold_wait(claim.key, claim.account, decided.reason, decided.until, pending)
        elif isinstance(decided, d.Wait):
            until = decided.until
            self.clockwork.call_at(
                until, lambda: self.lanes.put(claim.account, claim.key), f"jitter:{claim.key}"
            )
        else:
            self.lanes.put(claim.account, claim.key)
        return None

    def _final(self, entry: Entry | None, duration: float = 0.0) -> None:
        if entry is None:
            return
        if entry.status in ("failed", "uncertain"):
            self.failed += 1
        if self.settled is not None:
            self.settled.append(entry)
        log_delivery(entry, duration)
        self.alerts.row(entry)
        if entry.status == "sent":
            self.silence.sent(entry.account, entry.sent_at or self.clockwork.now())

    # -- sending -----------------------------------------------------------------

    def _retry_at(self, entry: Entry) -> None:
        assert entry.next_attempt_at is not None
        self.clockwork.call_at(
            entry.next_attempt_at,
            lambda: self.lanes.put(entry.account, entry.key),
            f"retry:{entry.key}",
        )

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
        """Send one queued occurrence or row (a lane's turn): decide, read back if needed, try once.

        A key another thread looks at (a reload) is queued again a moment later:
        this turn may be a retry's, and nothing else would queue it again.
        """
        if not self._take(key):
            self.clockwork.call_at(
                self.clockwork.now() + BUSY_PAUSE,
                lambda: self.lanes.put(account, key),
                f"busy:{key}",
            )
            return
        started = time.monotonic()
        try:
            self._deliver(key, started)
        except RowTakenError as exc:  # another process moved the row on: it is theirs
            log.warning("%s", exc)
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
        if pending is not None and self._defer(pending):  # another daemon sends its account
            return
        if pending is not None:
            try:
                entry = self._first(pending)
            except Exception:  # tried again after a pause; a row it wrote is found then
                self._pending.setdefault(key, pending)
                raise
        else:
            row = self.ledger.get(key)
            if row is None or row.status not in IN_FLIGHT:
                return
            entry = self._turn(row)
        if entry is None:  # waits: its time, a hold, a retry
            return
        if entry.status in ("retrying", "sending") and entry.next_attempt_at is not None:
            self._retry_at(entry)
            return
        self._final(entry, time.monotonic() - started)

    def _first(self, pending: Pending) -> Entry | None:
        """Send a queued occurrence for the first time: decide, claim it, try once."""
        claim, now = pending.claim, self.clockwork.now()
        # planned from the files in force? then locate would say the same
        found = pending.located if pending.project is self.project else self._locate(claim)
        if isinstance(found, str):
            self._requeue_replacements(claim)
            return self.ledger.record(claim, "skipped", found, now)
        post, occ = found[1], found[2]
        due = due_of(occ, post)
        if claim.key in self._adhoc:  # a person asked for it now: as the files are now
            from scheduler.sendnow import stop_of

            lc_now = self.project.campaign(claim.campaign)
            stopped = "the campaign is gone" if lc_now is None else stop_of(lc_now, now)
            if stopped is not None:
                return self.ledger.record(claim, "skipped", stopped, now)
            due = dataclasses.replace(due, at=min(due.at, now))
        decided = d.decide(due, now, holds=self.book.current(), queued=True)
        if not isinstance(decided, d.Send):
            return self._apply(decided, Pending(claim, self.project, found), now)
        try:
            entry = self.dispatcher.attempt_new(claim, *found, gate=self._gate(due))
        except RenderError as exc:  # a file problem: held until the template is fixed
            return self._render_problem(Pending(claim, self.project, found), due, exc, now)
        except Stopped as exc:  # held while it was readied: nothing was written
            pending = Pending(claim, self.project, found)
            return self._apply(exc.decision, pending, self.clockwork.now())
        if entry is None:  # the key has a row: another process's, or this one's, half-done
            row = self.ledger.get(claim.key)
            if row is not None and row.owner != self.owner:
                self._taken_elsewhere(claim.account, row)
            if row is None or row.owner != self.owner or row.status not in IN_FLIGHT:
                return None
            return self._turn(row)  # a "sending" row is read back, never sent blindly
        return entry

    def _render_problem(
        self, pending: Pending, due: d.Due, exc: RenderError, now: datetime
    ) -> Entry | None:
        """Hold an occurrence whose template fails now; past its grace it ends ``held``."""
        claim, until = pending.claim, due.at + due.grace
        reason = f"held (its template fails: {exc.problem}; source {exc.problem.path}:{exc.problem.line})"
        if now >= until:
            return self.ledger.record(
                claim, "held", f"{reason}; {d.late_by(now - due.at, due.grace)}", now
            )
        log.error("%s", exc.problem)
        self._pending[claim.key] = pending
        self._hold_wait(claim.key, claim.account, reason, until, pending)
        return None

    def _turn(self, entry: Entry) -> Entry | None:
        """Take a row in flight one step on: read back, skip, wait, hold or try it once more.

        Only a row this process owns: another's is its owner's while its lease
        runs, and is adopted (``Daemon.adopt_orphans``) once it has run out.
        """
        now = self.clockwork.now()
        if entry.owner != self.owner:
            return None
        found = self._locate(entry)
        account = self.project.accounts.get(entry.account)
        if entry.status == "sending":  # a request may have gone out: never send blindly
            if account is None:
                return self.ledger.uncertain(
                    entry,
                    f"{entry.error or 'the process stopped mid-send'}; account {entry.account} is gone, so it cannot be read back",
                    now,
                )
            settled = self.dispatcher.verify(entry, account)
            if settled is not None:
                return settled
        if isinstance(found, str):
            self._requeue_replacements(entry)
            return self.ledger.settle(entry, "skipped", found, now)
        lc, post, occ, account = found
        due = due_of(occ, post)
        if entry.status == "claimed":  # a leftover: this process claims rows as they go out
            if due.at > now:
                self.clockwork.call_at(
                    due.at, lambda: self.lanes.put(entry.account, entry.key), f"jitter:{entry.key}"
                )
                return None
            if now - due.at > due.grace:
                return self.ledger.settle(
                    entry,
                    "missed",
                    "claimed by a process that stopped before sending; "
                    + d.late_by(now - due.at, due.grace),
                    now,
                )
        window_ends = entry.created_at + self.retry_window
        if entry.status != "claimed" and now > window_ends:
            # a "sending" row got here only after reading back showed it was not posted
            return self.ledger.failed(
                entry,
                f"gave up after {entry.attempts} tries within {format_duration(self.retry_window)}: {entry.error}",
                now,
            )
        decided = d.decide(due, now, holds=self.book.current(), in_flight_until=window_ends)
        if not isinstance(decided, (d.Hold, d.Miss)):
            try:
                gate = self._gate(due, window_ends)
                return self.dispatcher.attempt(entry, lc, post, occ, account, gate)
            except Stopped as exc:  # held while it was readied: the row is as it was
                decided, now = exc.decision, self.clockwork.now()
        if isinstance(decided, d.Hold):
            self._hold_wait(entry.key, entry.account, decided.reason, decided.until)
            return None
        return self.ledger.settle(entry, "held", decided.reason, now)

    def _gate(self, due: d.Due, in_flight_until: datetime | None = None) -> Callable[[], None]:
        """Return the last look before a request: it raises :class:`Stopped` if a hold now covers it.

        The holds in force are read from memory (the ledger's at most every half second).
        """

        def gate() -> None:
            decided = d.decide(
                due,
                self.clockwork.now(),
                holds=self.book.current(),
                in_flight_until=in_flight_until,
                queued=in_flight_until is None,
            )
            if isinstance(decided, (d.Hold, d.Miss)):
                raise Stopped(decided)

        return gate

    def _requeue_replacements(self, entry: Entry | Claim) -> None:
        """When a release changed whom a rotating slot features, queue the new person's post."""
        fresh = replacements(self.project, entry)
        taken = self.ledger.existing([f[2].key for f in fresh])
        for located in fresh:
            occ, account = located[2], located[3]
            if occ.key not in taken and occ.key not in self._pending:
                self._pending[occ.key] = Pending(claim_for(occ, account), self.project, located)
                self.lanes.put(occ.account, occ.key)

    def _cancel_gone(self) -> None:
        """Skip, with the reason, the unsent rows whose occurrence the new files no longer have.

        Each row on its own: one another daemon settled or took first is theirs
        (each daemon's reload looks at the gone daemons' rows), and one that
        cannot be written now is skipped at its next turn; the reload goes on.
        """
        now = self.clockwork.now()
        try:
            rows = self.ledger.in_flight()
        except SolidarityError as exc:  # each row is skipped at its turn instead
            log.error("reload: the rows in flight could not be read: %s", exc)
            return
        shared = self.ledger.shared_time(now)  # leases are in the ledger's clock
        for entry in rows:
            theirs = entry.owner != self.owner and not orphaned(entry, self.owner, shared)
            if entry.status == "sending" or theirs or not self._take(entry.key):
                continue
            try:
                found = self._locate(entry)
                if isinstance(found, str):
                    settled = self.ledger.settle(entry, "skipped", found, now)
                    self.clockwork.cancel(f"retry:{entry.key}")  # only once it is settled
                    self._final(settled)
            except RowTakenError as exc:  # another daemon settled or adopted it first
                log.info("%s", exc)
            except SolidarityError as exc:
                log.error("reload: %s could not be skipped now: %s", entry.key, exc)
            finally:
                self._release(entry.key)
