"""What becomes of one occurrence: each decision carried out, at a lane's turn or on a hold.

:class:`Turns` is the half of the daemon that acts on one occurrence at a time:
a first send (decide, claim as it goes out, try once), a row in flight (read
back, retry, settle), and what waits on a hold (until it is lifted or its grace
ends; of a repeating series only the newest waits). The other half,
:class:`scheduler.daemon.Daemon`, wakes, plans and reloads.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import NamedTuple

from scheduler import decision as d
from scheduler.alerts import Alerts
from scheduler.clockwork import Clockwork
from scheduler.dispatch import Dispatcher, claim_for, log_delivery
from scheduler.errors import RenderError, RowTakenError, SolidarityError
from scheduler.holdbook import HoldBook
from scheduler.lanes import Lanes
from scheduler.ledger import IN_FLIGHT, Claim, Entry, Ledger
from scheduler.locate import Located, due_of, locate, repeats, replacements
from scheduler.project import Project
from scheduler.silence import Silence
from scheduler.timeutil import format_duration

log = logging.getLogger("scheduler.daemon")

TROUBLE_PAUSE = timedelta(minutes=1)  # wait after the ledger failed, before trying again
HOLD_POLL = timedelta(seconds=1)  # while something waits on a hold: look for its lifting


class Pending(NamedTuple):
    """A due occurrence waiting in this process, not yet claimed, with the files it came from."""

    claim: Claim
    project: Project
    located: Located


class Turns:
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

    # -- holds -------------------------------------------------------------------

    def _hold_wait(
        self, key: str, account: str, reason: str, until: datetime, pending: Pending | None = None
    ) -> None:
        """Keep an occurrence waiting on a hold until it is lifted, or until ``until``."""
        if not self.wait_for_holds:  # the next run decides again
            self._pending.pop(key, None)
            self.left_held.append((key, reason))
            log.info("%s %s: %s; not sent by this run", key, account, reason)
            return
        now = self.clockwork.now()
        with self._busy_lock:
            if pending is not None:  # of a series, only the newest waits
                occ = pending.located[2]
                series = (occ.campaign, occ.post, occ.account, occ.person)
                older = self._series.get(series)
                if older is not None and older != key and repeats(pending.located[1]):
                    self._supersede(older, occ.scheduled_for, now)
                self._series[series] = key
            first = not self._held
            self._held[key] = (account, until)
        self.clockwork.call_at(until, lambda: self._unhold(key), f"held:{key}")
        if first:
            self.clockwork.call_at(now + HOLD_POLL, self._poll_holds, "holds")

    def _supersede(self, key: str, newer: datetime, now: datetime) -> None:
        """End a held first send that a newer occurrence of its series replaces (lock held)."""
        pending = self._pending.pop(key, None)
        self._held.pop(key, None)
        self.clockwork.cancel(f"held:{key}")
        if pending is not None:
            reason = f"superseded by the occurrence of {newer:%Y-%m-%d %H:%M %Z}"
            self._final(self.ledger.record(pending.claim, "missed", reason, now))

    def _unhold(self, key: str) -> None:
        """Decide again about one held occurrence (its grace or retry window is over)."""
        with self._busy_lock:
            found = self._held.pop(key, None)
        if found is not None:
            self.lanes.put(found[0], key)

    def _poll_holds(self) -> None:
        """While something waits on a hold, read the ledger's holds; a lifted one lets it go.

        Any request may read a change first: what counts is whether the holds
        changed since what waits was last decided, not whether this read saw it.
        """
        self.book.refresh()
        if self.book.changes != self._holds_seen:
            self.recheck_held()
        with self._busy_lock:
            waiting = bool(self._held)
        if waiting:
            self.clockwork.call_at(self.clockwork.now() + HOLD_POLL, self._poll_holds, "holds")

    def recheck_held(self) -> None:
        """Decide again about everything waiting on a hold (holds changed)."""
        self._holds_seen = self.book.changes
        with self._busy_lock:
            held, self._held, self._series = self._held, {}, {}
        for key, (account, _until) in held.items():
            self.clockwork.cancel(f"held:{key}")
            self.lanes.put(account, key)

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
        """Send one queued occurrence or row (a lane's turn): decide, read back if needed, try once."""
        if not self._take(key):
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
            entry = self.dispatcher.attempt_new(claim, *found)
        except RenderError as exc:  # a file problem: held until the template is fixed
            return self._render_problem(Pending(claim, self.project, found), due, exc, now)
        if entry is None:  # the key has a row: another process's, or this one's, half-done
            row = self.ledger.get(claim.key)
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
        if isinstance(decided, d.Hold):
            self._hold_wait(entry.key, entry.account, decided.reason, decided.until)
            return None
        if isinstance(decided, d.Miss):
            return self.ledger.settle(entry, "held", decided.reason, now)
        return self.dispatcher.attempt(entry, lc, post, occ, account)

    def _requeue_replacements(self, entry: Entry | Claim) -> None:
        """When a release changed whom a rotating slot features, queue the new person's post."""
        fresh = replacements(self.project, entry)
        taken = self.ledger.existing([f[2].key for f in fresh])
        for located in fresh:
            occ, account = located[2], located[3]
            if occ.key not in taken and occ.key not in self._pending:
                self._pending[occ.key] = Pending(claim_for(occ, account), self.project, located)
                self.lanes.put(occ.account, occ.key)
