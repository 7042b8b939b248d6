"""Rows in flight belong to their owner while it runs; one lock per SQLite file, however named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.errors import SolidarityError
from scheduler.owners import owner_alive
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
        yield f"{socket.gethostname()}:{child.pid}"
    finally:
        child.kill()
        child.wait()


def test_a_live_owner_is_alive_and_a_dead_or_foreign_one_is_not(live_owner: str) -> None:
    assert owner_alive(live_owner)
    assert not owner_alive(f"{socket.gethostname()}:{os.getpid()}")  # this very process
    assert not owner_alive(f"{socket.gethostname()}:999999999")
    assert not owner_alive("elsewhere:1")
    assert not owner_alive(None) and not owner_alive("")


def test_start_up_leaves_a_live_owners_rows_alone_and_settles_a_dead_ones(
    tmp_path: Path, live_owner: str
) -> None:
    w = World(tmp_path, DAILY, utc(2026, 7, 2, 6, 5))
    due = utc(2026, 7, 2, 6, 0)
    live = claim(w, "hr-telegram", "telegram", due, live_owner)
    w.ledger.sending(live, ["Day 954 for Sevinj Vagifgizi"], due)
    dead = claim(w, "hr-mastodon", "mastodon", due, f"{socket.gethostname()}:999999999")
    w.ledger.sending(dead, ["Day 954 for Sevinj Vagifgizi"], due)
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
