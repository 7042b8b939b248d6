"""The three ways posts go out, on one path: the daemon, ``run --once`` and ``send``.

Each builds a :class:`~scheduler.daemon.Daemon` on the files and the ledger;
``run --once`` and ``send`` drive it with a manual clockwork on the real clock
(retries wait within a bound instead of in a loop of their own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from scheduler import daemon as d
from scheduler.alerts import Alerts
from scheduler.config import Settings, environment
from scheduler.errors import Problem, SolidarityError
from scheduler.ledger import Entry, Ledger
from scheduler.locate import Located
from scheduler.owners import Lease
from scheduler.project import Project, load_project

ONCE_WAIT = timedelta(minutes=5)  # how long `run --once` and `send` wait for retries


ORPHAN_SCAN = timedelta(seconds=15)  # how often the daemon looks for a gone daemon's rows


def running_clock(now: datetime) -> Callable[[], datetime]:
    """Return a clock that starts at ``now`` (tests set it) and runs on in real time."""
    started = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - started)


def loader(settings: Settings) -> Callable[[], Project]:
    """Return a function loading the files afresh, with the environment and .env of now."""
    return lambda: load_project(settings, environment())


def refuse_missing_secrets(project: Project, report: Callable[[list[Problem]], None]) -> None:
    """Refuse to start while a secret of an account in use is unset, naming each variable."""
    missing = d.missing_secrets(project)
    if missing:
        report(
            [
                Problem(p.path, p.line, p.message)
                for a in project.accounts_in_use()
                for p in a.unset_problems("run cannot send without it")
            ]
        )
        raise SolidarityError(
            f"missing secrets: {', '.join(missing)}; set them in the environment or .env"
        )


def serve_daemon(
    settings: Settings,
    project: Project,
    ledger: Ledger,
    clock: Callable[[], datetime],
    workers: int,
    on_project: Callable[[Project], None],
) -> None:
    """Run the daemon until SIGTERM or SIGINT (the caller holds the ledger lock)."""
    clockwork = d.SchedulerClockwork(clock)
    alerts = Alerts.from_environment(environment())
    daemon = d.Daemon(
        project,
        ledger,
        clockwork,
        load=loader(settings),
        on_project=on_project,
        workers=workers,
        alerts=alerts,
        orphan_scan=ORPHAN_SCAN,
    )
    daemon.lease = Lease(ledger, daemon.owner, clock).start()
    try:
        d.serve(daemon, clockwork, (settings.campaigns, settings.templates, settings.accounts))
    finally:
        alerts.flush()


def run_once(
    project: Project,
    ledger: Ledger,
    clock: Callable[[], datetime],
    on_project: Callable[[Project], None],
) -> tuple[d.Daemon, list[Entry]]:
    """Send what is due now (within grace), wait for retries within a bound, record the rest.

    Returns the daemon (its ``settled`` rows, ``failed`` count and file
    problems) and its own rows still in flight, for the next run (another
    daemon's rows in flight on a shared ledger are that daemon's to send).
    """
    manual = d.ManualClockwork(clock)
    alerts = Alerts.from_environment(environment())
    daemon = d.Daemon(
        project,
        ledger,
        manual,
        workers=0,
        on_project=on_project,
        wait_for_holds=False,
        alerts=alerts,
    )
    daemon.settled = []
    lease = Lease(ledger, daemon.owner, clock).start()
    try:
        daemon.start()
        manual.cancel("wake")  # once: what falls due later is the next run's
        manual.run_until(clock() + ONCE_WAIT)
    finally:
        lease.stop(release=True)  # one thread: nothing is on the wire once it returns
        alerts.flush()
    return daemon, [e for e in ledger.in_flight() if e.owner == daemon.owner]


def send_now(
    project: Project,
    ledger: Ledger,
    clock: Callable[[], datetime],
    located: Sequence[Located],
    on_project: Callable[[Project], None],
) -> list[Entry]:
    """Post occurrences now through the daemon's own path (decided, claimed, paced, retried)."""
    manual = d.ManualClockwork(clock)
    daemon = d.Daemon(
        project, ledger, manual, workers=0, on_project=on_project, wait_for_holds=False
    )
    daemon.settled = []
    lease = Lease(ledger, daemon.owner, clock).start()
    try:
        daemon.send_now(located)
        manual.cancel("wake")
        manual.run_until(clock() + ONCE_WAIT, stop=lambda: _all_settled(daemon, len(located)))
    finally:
        lease.stop(release=True)
    return [*daemon.settled, *(e for e in ledger.in_flight() if e.key in _keys(located))]


def _keys(located: Sequence[Located]) -> set[str]:
    return {occ.key for _lc, _post, occ, _account in located}


def _all_settled(daemon: d.Daemon, count: int) -> bool:
    return daemon.settled is not None and len(daemon.settled) >= count
