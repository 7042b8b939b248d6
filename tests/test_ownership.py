"""Rows in flight belong to their owner while it runs; one lock per SQLite file, however named."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.errors import RowTakenError, SolidarityError
from scheduler.owners import node, owner_alive
from scheduler.serve import ledger_lock
from tests.test_daemon import DAILY, World, claim, utc

REFUSED = r"another solidarity daemon .* is running"


@pytest.fixture
def live_owner() -> Iterator[str]:
    """Another solidarity-looking process on this host, running while the test does."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "solidarity", "run"]
    )
    cmdline = Path(f"/proc/{child.pid}/cmdline")
    for _ in range(500):  # until it runs its own command line, not the parent's fork
        if cmdline.exists() and b"solidarity" in cmdline.read_bytes():
            break
        time.sleep(0.01)
    try:
        yield f"{node()}:{child.pid}:live"
    finally:
        child.kill()
        child.wait()


def test_a_live_owner_is_alive_and_a_dead_or_foreign_one_is_not(live_owner: str) -> None:
    assert owner_alive(live_owner)
    assert not owner_alive(f"{node()}:{os.getpid()}")  # this very process
    assert not owner_alive(f"{node()}:999999999")
    assert not owner_alive("elsewhere:1")
    assert not owner_alive(None) and not owner_alive("")


def test_start_up_leaves_a_live_owners_rows_alone_and_settles_a_dead_ones(
    tmp_path: Path, live_owner: str
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 2, 6, 5))
    due = utc(2026, 7, 2, 6, 0)
    live = claim(w, "hr-telegram", "telegram", due, live_owner)
    w.ledger.sending(live, ["Day 954 for Sevinj Vagifgizi"], due)
    dead = claim(w, "hr-mastodon", "mastodon", due, f"{node()}:999999999")
    w.ledger.sending(dead, ["Day 954 for Sevinj Vagifgizi"], due)
    w.ledger.renew(live_owner, w.clock())  # a live owner renews its lease; a dead one cannot
    w.daemon().start()
    rows = {e.account: e for e in w.ledger.history() if e.scheduled_for == due}
    assert rows["hr-telegram"].status == "sending" and rows["hr-telegram"].owner == live_owner
    assert rows["hr-mastodon"].status != "sending"  # read back: not there, so sent once
    assert [p for p, _, _ in w.platforms.posts] == ["mastodon"]


def test_one_lock_per_sqlite_file_through_a_symlink_a_relative_path_or_a_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "ledger.db"
    real.write_bytes(b"")
    (tmp_path / "other").mkdir()
    link = tmp_path / "other" / "link.db"
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path)
    spellings = [
        f"sqlite:///{link}",
        "sqlite:///ledger.db",
        f"sqlite:///{tmp_path}/other/../ledger.db",
        f"sqlite:///file:{real}?mode=rwc&uri=true",
    ]
    for other in spellings:
        with (
            ledger_lock(f"sqlite:///{real}"),
            pytest.raises(SolidarityError, match=REFUSED),
            ledger_lock(other),
        ):
            pass


def test_another_hosts_rows_are_left_alone_while_its_lease_runs_and_adopted_after(
    tmp_path: Path,
) -> None:
    """An owner on another host cannot be asked: its lease says whether it runs."""
    w = World(tmp_path, DAILY, utc(2026, 7, 2, 6, 5))
    due = utc(2026, 7, 2, 6, 0)
    far = "db-host-2:4242:cafe0001"
    row = claim(w, "hr-mastodon", "mastodon", due, far)
    row = w.ledger.retrying(row, "429", utc(2026, 7, 2, 6, 5, 10), utc(2026, 7, 2, 6, 4, 50))
    assert row.lease_until == utc(2026, 7, 2, 6, 5, 20)  # its own write set the lease
    d = w.daemon()
    d.orphan_scan = timedelta(seconds=15)
    d.start()
    w.run_until(utc(2026, 7, 2, 6, 5, 15))
    found = w.ledger.get(row.key)
    assert found is not None and found.owner == far and found.status == "retrying"
    mastodon = [p for p, _, _ in w.platforms.posts if p == "mastodon"]
    assert mastodon == []  # the retry time came, but the row is not ours
    w.run_until(utc(2026, 7, 2, 6, 5, 40))  # the lease ran out at 06:05:20; a scan at :30
    found = w.ledger.get(row.key)
    assert found is not None and found.owner == "test:1" and found.status == "sent"
    assert [p for p, _, _ in w.platforms.posts if p == "mastodon"] == ["mastodon"]


def test_of_two_processes_adopting_one_orphan_one_wins(ledger_url: str) -> None:
    """Adoption is conditional on the row as read: the second finds it taken."""
    from scheduler.ledger import Claim, Ledger
    from scheduler.owners import adopt_orphans

    ledger = Ledger.open(ledger_url)
    now = utc(2026, 7, 2, 6, 0)
    c = Claim("c/daily/m/2026-07-02T06:00:00Z/-", "c", "daily", "m", "mastodon", None, now)
    row = ledger.claim_sending(c, ["text"], now, "gone-host:1:aa")
    assert row is not None
    later = now + timedelta(minutes=1)
    assert adopt_orphans(ledger, "one:1:bb", now + timedelta(seconds=10)) == []  # its lease runs
    ledger.release("gone-host:1:aa", later)  # as if it ran out
    row = ledger.get(c.key)
    assert row is not None
    first = adopt_orphans(ledger, "one:1:bb", later)
    second = adopt_orphans(ledger, "two:2:cc", later)
    assert [e.owner for e in first] == ["one:1:bb"] and second == []
    with pytest.raises(RowTakenError):  # the former owner, had it lived, can change nothing
        ledger.sent(row, ["1"], None, later)
    renewed = ledger.renew("one:1:bb", later + timedelta(seconds=5))
    found = ledger.get(c.key)
    assert renewed == 1 and found is not None and found.lease_until is not None
    assert found.lease_until == later + timedelta(seconds=35)
    assert ledger.release("one:1:bb", later + timedelta(seconds=6)) == 1
    assert adopt_orphans(ledger, "two:2:cc", later + timedelta(seconds=7))[0].owner == "two:2:cc"
    ledger.close()


def test_a_pid_is_trusted_only_within_its_own_pid_namespace() -> None:
    """Containers sharing a host name each run their daemon as pid 1: only leases tell them apart."""
    import os
    import socket
    from datetime import datetime

    from scheduler.ledger import Entry
    from scheduler.owners import orphaned

    now = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)

    def row(owner: str, lease: datetime | None) -> Entry:
        return Entry(
            1, "k", "c", "p", "m", "mastodon", None, now, "sending", (), None, None, 1,
            None, None, now, now, None, owner, None, (), lease,
        )  # fmt: skip

    me = f"{node()}:{os.getpid()}:mine"
    running = now + timedelta(seconds=20)
    # another container: the same host name, this very pid, another namespace
    twin = f"{socket.gethostname()}@1:{os.getpid()}:theirs"
    assert not orphaned(row(twin, running), me, now)
    assert orphaned(row(twin, now - timedelta(seconds=1)), me, now)  # its lease ran out
    # this namespace, this pid, another token: a former process, gone for sure
    assert orphaned(row(f"{node()}:{os.getpid()}:former", running), me, now)
    assert not orphaned(row(me, now - timedelta(days=1)), me, now)  # never its own
