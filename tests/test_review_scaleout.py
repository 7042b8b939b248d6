"""Review of the scale-out commits: several daemons on one ledger, attacked.

Each test here shows a way the SPEC's promises break when several daemons (or a
daemon and ``send`` / ``run --once``) share one ledger. Each is marked
``xfail(strict=True)`` with the break as its reason, so the suite stays green
until the code is fixed, and turns red (XPASS) once it is: then drop the mark.
"""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from sqlalchemy import create_engine, text

from scheduler.clockwork import ManualClockwork
from scheduler.config import Settings
from scheduler.daemon import Daemon
from scheduler.holdbook import HoldBook
from scheduler.holds import HoldStore
from scheduler.ledger import Claim, Entry, Ledger
from scheduler.owners import node
from scheduler.project import Project, load_project
from tests.conftest import PostgresFactory, write_project

T = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
KEY_OF_ONE = "c/one/hr-facebook/2026-07-01T06:00:00Z/-"


OPENED: list[Ledger] = []


def opened(url: str) -> Ledger:
    """Open a ledger (a process's connections of its own), closed when the test ends."""
    ledger = Ledger.open(url)
    OPENED.append(ledger)
    return ledger


@pytest.fixture(autouse=True)
def _close_ledgers() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


class Clock:
    """A clock the test moves; ``offset`` makes one daemon's clock run ahead of another's."""

    def __init__(self, base: Clock | None = None, offset: timedelta = timedelta(0)) -> None:
        self.base = base
        self.offset = offset
        self.now = T

    def __call__(self) -> datetime:
        return (self.base() if self.base is not None else self.now) + self.offset

    def sleep(self, seconds: float) -> None:
        if self.base is not None:
            self.base.sleep(seconds)
        else:
            self.now += timedelta(seconds=seconds)


# -- a Facebook Page: it can be read back, and it does not deduplicate by key -----------

FACEBOOK = """\
hr-facebook:
  platform: facebook
  api: http://127.0.0.1:9
  page_id: "1234567890"
  page_access_token: ${FB_PAGE_TOKEN}
  pace: 0
hr-mastodon:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${MASTODON_ACCESS_TOKEN}
  pace: 0
"""
SECRETS = {"FB_PAGE_TOKEN": "fb-token", "MASTODON_ACCESS_TOKEN": "m-token"}

ONE_POST = """\
name: c
title: C
timezone: UTC
accounts: [hr-facebook]
posts:
  - id: one
    at: 2026-07-01 06:00
    text: "Free the journalists"
"""


class Page:
    """A Facebook Page behind a MockTransport: feed posts, and its published posts read back."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.posts: list[tuple[str, datetime]] = []
        self._lock = threading.Lock()

    def transport(
        self,
        on_the_wire: threading.Event | None = None,
        lands: threading.Event | None = None,
    ) -> httpx.MockTransport:
        """One daemon's transport; with events, its first post waits on the wire until ``lands``."""

        def handle(request: httpx.Request) -> httpx.Response:
            path = request.url.path
            if request.method == "GET" and path.endswith("/published_posts"):
                with self._lock:
                    data = [
                        {"id": f"1234567890_{i}", "message": m, "created_time": t.isoformat()}
                        for i, (m, t) in enumerate(self.posts, 1)
                    ][::-1]
                return httpx.Response(200, json={"data": data})
            if request.method == "POST" and path.endswith("/feed"):
                message = parse_qs(request.read().decode())["message"][0]
                if on_the_wire is not None and lands is not None and not on_the_wire.is_set():
                    on_the_wire.set()
                    assert lands.wait(20), "the test never let the request land"
                with self._lock:
                    self.posts.append((message, self.clock()))
                    n = len(self.posts)
                return httpx.Response(200, json={"id": f"1234567890_{n}"})
            return httpx.Response(404, json={"error": {"message": "no such route", "code": 803}})

        return httpx.MockTransport(handle)


def settings_for(tmp_path: Path, campaign: str, url: str, accounts: str = FACEBOOK) -> Settings:
    written = write_project(tmp_path, campaign, accounts=accounts)
    return Settings(
        campaigns=written.campaigns,
        templates=written.templates,
        accounts=written.accounts,
        db=url,
    )


def loader(settings: Settings) -> Callable[[], Project]:
    return lambda: load_project(settings, SECRETS)


def daemon(
    settings: Settings,
    clock: Clock,
    transport: httpx.BaseTransport,
    owner: str,
    **options: object,
) -> Daemon:
    """A daemon of its own (its own ledger connection, clock and transport), as a process is."""
    load = loader(settings)
    return Daemon(
        load(),
        opened(settings.db),
        ManualClockwork(clock, clock.sleep),
        load=load,
        transport=transport,
        workers=0,
        owner=owner,
        **options,  # type: ignore[arg-type]
    )


def wait_until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def adopted_mid_request(
    tmp_path: Path,
    url: str,
    owner_a: str,
    owner_b: str,
    clock_b_offset: timedelta,
    answer_after: timedelta = timedelta(seconds=9),
) -> tuple[Page, Entry]:
    """A posts; while its request is on the wire, B starts on the same ledger. Return the Page."""
    base = Clock()
    page = Page(base)
    settings = settings_for(tmp_path, ONE_POST, url)
    on_the_wire, lands = threading.Event(), threading.Event()
    a = daemon(settings, base, page.transport(on_the_wire, lands), owner_a)
    sending = threading.Thread(target=a.start)
    sending.start()
    try:
        assert on_the_wire.wait(10)  # A claimed the row ("sending") and its request is out
        base.now += answer_after  # a slow answer; A's lease thread renews every 10 s
        b = daemon(settings, Clock(base, clock_b_offset), page.transport(), owner_b)
        b.start()  # B scans for orphans at start, as every 15 s
    finally:
        lands.set()  # A's request lands; A records it, if the row is still its own
        sending.join(20)
    row = a.ledger.get(KEY_OF_ONE)
    assert row is not None
    return page, row


def test_daemons_whose_clocks_agree_with_the_server_never_take_a_live_daemons_row(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    page, row = adopted_mid_request(
        tmp_path,
        postgres(),
        "host-a:101:aaaa",  # its clock 10 s behind the database server's
        "host-b:202:bbbb",  # its clock 10 s ahead
        clock_b_offset=timedelta(seconds=20),
        answer_after=timedelta(seconds=10.5),  # the renewal due at 10 s has not committed yet
    )
    assert [m for m, _ in page.posts] == ["Free the journalists"]  # posted once
    assert row.owner == "host-a:101:aaaa"


def a_dead_pid() -> int:
    """A pid that runs nothing here (as the pid of a process on another machine)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_two_machines_sharing_a_default_host_name_leave_each_others_rows_alone() -> None:
    """Machines both called "debian" differ by boot id: a pid is judged only on its own boot."""
    from scheduler.ledger import Entry
    from scheduler.owners import orphaned

    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    assert f"@{boot}." in node()
    other_machine = node().replace(boot, "0" * 8)  # the same host name and pid namespace
    row = Entry(
        1, "k", "c", "one", "hr-facebook", "facebook", None, T, "sending", (), None,
        None, 1, None, None, T, T, None, f"{other_machine}:{a_dead_pid()}:aaaa", None, (),
        T + timedelta(seconds=20),
    )  # fmt: skip
    assert not orphaned(row, f"{node()}:{os.getpid()}:bbbb", T)  # its lease runs


ONE = Claim(KEY_OF_ONE, "c", "one", "hr-facebook", "facebook", None, T)


def test_a_lease_renewed_after_an_adopter_read_it_keeps_its_row(ledger_url: str) -> None:
    mine, theirs = opened(ledger_url), opened(ledger_url)
    a, b = "host-a:101:aaaa", "host-b:202:bbbb"
    assert mine.claim_sending(ONE, ["Free the journalists"], T, a) is not None  # lease T+30
    mine.renew(a, T + timedelta(seconds=10))  # the lease thread, on time: lease T+40
    read = theirs.in_flight

    def in_flight_then_the_stalled_renewal_commits() -> list[Entry]:
        rows = read()  # B reads at T+41: the lease (T+40) ran out
        # A's renewal of T+20 waited 21 s for the database (a lock) and commits just now
        assert mine.renew(a, T + timedelta(seconds=20)) == 1  # lease T+50: A is alive
        return rows

    theirs.in_flight = in_flight_then_the_stalled_renewal_commits  # type: ignore[method-assign]
    from scheduler.owners import adopt_orphans

    adopted = adopt_orphans(theirs, b, T + timedelta(seconds=41))
    row = mine.get(KEY_OF_ONE)
    assert row is not None and row.owner == a, f"taken by {row and row.owner}"
    assert adopted == []


@pytest.fixture
def old_daemon_here() -> Iterator[str]:
    """A solidarity process of the version before 0003 on this host, named as it named itself."""
    import socket
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "solidarity", "run"]
    )
    cmdline = Path(f"/proc/{child.pid}/cmdline")
    wait_until(lambda: cmdline.exists() and b"solidarity" in cmdline.read_bytes())
    try:
        yield f"{socket.gethostname()}:{child.pid}"  # pre-0003 owners: gethostname():pid
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("where", ["another host", "this host"])
def test_a_live_pre_0003_daemons_row_is_not_adopted_at_once(
    postgres: PostgresFactory, old_daemon_here: str, where: str
) -> None:
    from sqlalchemy import update

    from scheduler.ledger import TABLE
    from scheduler.owners import adopt_orphans

    owner = "old-host:4242" if where == "another host" else old_daemon_here
    url = postgres()
    old, new = opened(url), opened(url)
    entry = old.claim(ONE, T, owner)  # the old format: host:pid, no token
    assert entry is not None
    with old.engine.begin() as connection:  # what the old version writes: no lease at all
        connection.execute(
            update(TABLE)
            .where(TABLE.c.id == entry.id)
            .values(
                status="retrying",
                lease_until=None,
                next_attempt_at=T + timedelta(minutes=2),
                updated_at=T,
            )
        )
    adopted = adopt_orphans(new, f"{node()}:{os.getpid()}:cccc", T + timedelta(seconds=1))
    row = new.get(KEY_OF_ONE)
    assert row is not None and row.owner == owner  # it retries the row a minute on
    assert adopted == []


# -- a hold made while a daemon is already past its check ------------------------------


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hold_made_while_the_instance_is_slow_to_answer_stops_the_post(
    tmp_path: Path, ledger_url: str
) -> None:
    from tests.test_daemon import Platforms

    settings = settings_for(tmp_path, ONE_POST.replace("hr-facebook", "hr-mastodon"), ledger_url)
    clock, tick = Clock(), Ticker()
    platforms = Platforms()
    platforms.clock = clock  # type: ignore[assignment]
    person = opened(ledger_url)  # `solidarity hold` is another process

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/instance":  # the live limit, asked before the first post
            HoldStore(person).add(None, None, None, "stop everything: a release", clock())
            clock.now += timedelta(seconds=5)  # the instance answers slowly
            tick.now += 5.0
        return platforms(request)

    ledger = opened(ledger_url)
    d = daemon(
        settings,
        clock,
        httpx.MockTransport(handle),
        "host-a:101:aaaa",
        holds=HoldBook(HoldStore(ledger), monotonic=tick),
    )
    d.start()
    assert platforms.texts("mastodon") == []  # held: nothing posted 5 s after the hold


# -- a ledger error in the shared turn -------------------------------------------------

PACED_TELEGRAM = """\
hr-telegram:
  platform: telegram
  api: http://127.0.0.1:9
  bot_token: ${TELEGRAM_BOT_TOKEN}
  chat: "@test"
  pace: 1m
"""


def terminate_connections(url: str) -> None:
    """Drop every other connection to the database, as a PostgreSQL restart or failover does."""
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    engine.dispose()


def test_a_database_blip_at_a_paced_accounts_turn_does_not_drop_the_row(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    from tests.test_daemon import Platforms, telegram_429

    url = postgres()
    settings = settings_for(
        tmp_path, ONE_POST.replace("hr-facebook", "hr-telegram"), url, PACED_TELEGRAM
    )
    clock = Clock()
    platforms = Platforms()
    platforms.clock = clock  # type: ignore[assignment]
    platforms.faults.append(telegram_429(30))
    load = lambda: load_project(settings, {"TELEGRAM_BOT_TOKEN": "1:tg"})  # noqa: E731
    clockwork = ManualClockwork(clock, clock.sleep)
    d = Daemon(
        load(),
        opened(url),
        clockwork,
        load=load,
        transport=httpx.MockTransport(platforms),
        workers=0,
        owner="host-a:101:aaaa",
    )
    d.start()
    key = "c/one/hr-telegram/2026-07-01T06:00:00Z/-"
    row = d.ledger.get(key)
    assert row is not None and row.status == "retrying"  # a 429: again in 30 s
    terminate_connections(url)  # PostgreSQL restarts while the row waits
    clockwork.run_until(T + timedelta(hours=2))
    row = d.ledger.get(key)
    assert row is not None and row.status == "sent", row.status
    assert platforms.texts("telegram") == ["Free the journalists"]


TWO_AT_ONCE = """\
name: c
title: C
timezone: UTC
accounts: [hr-telegram]
posts:
  - id: one
    at: 2026-07-01 06:00
    text: "Free the journalists"
  - id: two
    at: 2026-07-01 06:00
    text: "Free them all"
"""


def test_a_database_blip_at_a_paced_accounts_turn_does_not_drop_a_new_occurrence(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    from tests.test_daemon import Platforms

    url = postgres()
    settings = settings_for(tmp_path, TWO_AT_ONCE, url, PACED_TELEGRAM)
    clock = Clock()
    platforms = Platforms()
    platforms.clock = clock  # type: ignore[assignment]
    load = lambda: load_project(settings, {"TELEGRAM_BOT_TOKEN": "1:tg"})  # noqa: E731
    clockwork = ManualClockwork(clock, clock.sleep)
    d = Daemon(
        load(),
        opened(url),
        clockwork,
        load=load,
        transport=httpx.MockTransport(platforms),
        workers=0,
        owner="host-a:101:aaaa",
    )
    d.start()
    assert len(platforms.texts("telegram")) == 1  # the other waits a minute: the pace
    terminate_connections(url)  # PostgreSQL restarts meanwhile
    clockwork.run_until(T + timedelta(hours=2))
    assert sorted(platforms.texts("telegram")) == ["Free the journalists", "Free them all"]
    assert {e.status for e in d.ledger.history()} == {"sent"}


# -- a reload racing another daemon's ----------------------------------------------------


def test_a_reload_that_loses_a_row_to_another_daemons_reload_still_completes(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    url = postgres()
    settings = settings_for(tmp_path, ONE_POST, url)
    base = Clock()
    page = Page(base)
    gone = opened(url)  # a third daemon, killed: its row waits for a retry
    entry = gone.claim_sending(ONE, ["Free the journalists"], T, "host-c:303:cccc")
    assert entry is not None
    gone.retrying(entry, "a passing error", T + timedelta(minutes=10), T)
    base.now = T + timedelta(seconds=1)
    a = daemon(settings, base, page.transport(), "host-a:101:aaaa")
    b = daemon(settings, base, page.transport(), "host-b:202:bbbb")
    a.start()
    b.start()  # the gone daemon's lease still runs: neither takes its row yet
    base.now = T + timedelta(minutes=1)  # its lease ran out
    # one edit, seen by both daemons (shared files): post one removed, post two added
    (settings.campaigns / "c.yaml").write_text(
        textwrap.dedent(ONE_POST).replace(
            '  - id: one\n    at: 2026-07-01 06:00\n    text: "Free the journalists"',
            '  - id: two\n    at: 2026-07-01 06:01\n    text: "Free them all"',
        ),
        encoding="utf-8",
    )
    read = a.ledger.in_flight

    def in_flight_then_b_reloads() -> list[Entry]:
        rows = read()
        assert b.reload("c.yaml changed")  # B settles the gone daemon's row first
        return rows

    a.ledger.in_flight = in_flight_then_b_reloads  # type: ignore[method-assign]
    assert a.reload("c.yaml changed")  # no exception; the new files fully in force


# -- the shared pace across clocks that check_clock accepts -------------------------------


def test_the_default_pace_holds_between_daemons_whose_clocks_are_10_s_apart(
    postgres: PostgresFactory,
) -> None:
    from scheduler.paces import SharedPace

    url = postgres()
    tick, pace, skew = Ticker(), timedelta(seconds=2), timedelta(seconds=10)
    here, there = opened(url), opened(url)  # each daemon its own ledger, its own clock
    here.measure_skew(lambda: T)
    there.measure_skew(lambda: T + skew)
    behind, ahead = SharedPace(here, "host-a:1:aa", tick), SharedPace(there, "host-b:2:bb", tick)
    assert behind.turn("m", pace, T) is None  # A posts at T (its clock)
    # at the same instant, B (its clock 10 s ahead) asks: it must wait A's pace out
    assert ahead.turn("m", pace, T + skew) is not None


# -- file holds, as each daemon's files see them -----------------------------------------

BROKEN = ONE_POST.replace('    text: "Free the journalists"', '    text: "x"\n    colour: red')


def test_a_file_hold_of_one_daemon_stays_listed_when_another_starts(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    url = postgres()
    clock = Clock()
    page = Page(clock)
    broken = settings_for(tmp_path / "host-a", BROKEN, url)  # a bad commit, pulled here first
    fine = settings_for(tmp_path / "host-b", ONE_POST, url)
    a = daemon(broken, clock, page.transport(), "host-a:101:aaaa")
    a.start()
    assert a.book.files, "the broken file holds its campaign"
    listed = [h for h in HoldStore(a.ledger).all() if not h.is_command]
    assert listed, "`solidarity holds` lists it"
    b = daemon(fine, clock, page.transport(), "host-b:202:bbbb")
    b.start()
    assert a.book.files  # host A still holds the campaign ...
    listed = [h for h in HoldStore(a.ledger).all() if not h.is_command]
    assert listed, "... and `solidarity holds` no longer says so"


# -- a retry that falls due while a reload looks at its row --------------------------------


def test_a_retry_due_during_a_reload_still_goes_out(tmp_path: Path, ledger_url: str) -> None:
    from tests.test_daemon import Platforms, telegram_429

    campaign = ONE_POST.replace("hr-facebook", "hr-telegram")
    settings = settings_for(
        tmp_path, campaign, ledger_url, PACED_TELEGRAM.replace("pace: 1m", "pace: 0")
    )
    clock = Clock()
    platforms = Platforms()
    platforms.clock = clock  # type: ignore[assignment]
    platforms.faults.append(telegram_429(30))
    load = lambda: load_project(settings, {"TELEGRAM_BOT_TOKEN": "1:tg"})  # noqa: E731
    clockwork = ManualClockwork(clock, clock.sleep)
    d = Daemon(
        load(),
        opened(ledger_url),
        clockwork,
        load=load,
        transport=httpx.MockTransport(platforms),
        workers=0,
        owner="host-a:101:aaaa",
    )
    d.start()
    key = "c/one/hr-telegram/2026-07-01T06:00:00Z/-"
    row = d.ledger.get(key)
    assert row is not None and row.status == "retrying"  # again at 06:00:30
    clock.now = T + timedelta(seconds=30)  # the retry is due ...
    (settings.campaigns / "c.yaml").write_text(  # ... as a person edits the title
        textwrap.dedent(campaign).replace("title: C", "title: C, edited"), encoding="utf-8"
    )
    locate = d._locate
    fired: list[bool] = []

    def locate_while_the_retry_fires(entry: Entry | Claim) -> object:
        if not fired:  # the clockwork's thread runs the retry's timer at this moment
            fired.append(True)
            clockwork.run_due()
        return locate(entry)

    d._locate = locate_while_the_retry_fires  # type: ignore[assignment,method-assign]
    assert d.reload("c.yaml changed")
    d._locate = locate  # type: ignore[method-assign]
    clockwork.run_until(T + timedelta(hours=2))
    row = d.ledger.get(key)
    assert row is not None and row.status == "sent", row.status
