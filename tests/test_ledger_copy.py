"""The real ``solidarity copy-ledger``: a SQLite ledger into PostgreSQL (and SQLite), whole."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from scheduler.holds import Hold, HoldStore
from scheduler.ledger import TABLE, Claim, Ledger
from scheduler.serve import ledger_lock
from tests.conftest import PostgresFactory

NOW = datetime(2026, 3, 10, 7, 5, tzinfo=UTC)
BAKU = timezone(timedelta(hours=4))
PASSWORD = "pw-never-printed-8421"

CAMPAIGN = """\
name: c
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
accounts: [m]
posts:
  - id: p
    cron: "0 12 * * *"
    text: "Journalism is not a crime."
"""


def solidarity(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    return subprocess.run(
        [*base, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def with_password(url: str) -> str:
    """The fixture's URL with a password in it (the test server trusts, and never asks for it)."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def row(n: int, status: str, **values: object) -> dict[str, object]:
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC) + timedelta(hours=n // 2)  # pairs share a time
    return {
        "key": f"c/p/m/{at:%Y-%m-%dT%H:%M:%SZ}/{n}",
        "campaign": "c",
        "post": "p",
        "account": "m",
        "platform": "mastodon",
        "person": None,
        "scheduled_for": at,
        "status": status,
        "attempts": n % 3,
        "owner": "",
        "created_at": at - timedelta(minutes=1),
        "updated_at": at + timedelta(seconds=n),
        **values,
    }


ROWS = [
    row(
        0,
        "sent",
        person="fatima",
        parts=["Fatimə Movlamlı: 1 079 gün həbsdə. #FatiməMovlamlı", "2/2 — Свобода 🕊️ 自由"],
        remote_id="110",
        remote_ids=["110", "111"],
        remote_url="https://mastodon.example/@hr/110",
        sent_at=datetime(2026, 3, 1, 12, 0, 1, 250000, tzinfo=BAKU),
    ),
    row(1, "failed", error="mastodon (HTTP 422): Validation failed: Text ist zu lang «»"),
    row(2, "missed", reason="due while no daemon ran, past its grace (15m)"),
    row(3, "skipped", reason="Sevinj Vagifgizi was released on 2026-02-28"),
    row(4, "uncertain", parts=["Ülvi Həsənli"], error="telegram (HTTP 502): Bad Gateway"),
    row(5, "held", reason="held: campaign c (why: family asked — ailə xahiş etdi)"),
    row(6, "claimed"),
    row(7, "sending", parts=["in flight"], attempts=1),
    row(
        8,
        "retrying",
        error="429",
        next_attempt_at=datetime(2026, 3, 1, 13, 0, tzinfo=UTC),
    ),
]


@pytest.fixture
def source(tmp_path: Path) -> str:
    """A real SQLite ledger: a row of every status, holds by a person and by a file."""
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'solidarity.db'}"
    ledger = Ledger.open(url)
    with ledger.engine.begin() as connection:
        for values in ROWS:  # one by one: each names only its own columns (the rest: NULL)
            connection.execute(insert(TABLE).values(values))
    store = HoldStore(ledger)
    store.add("c", "sevinj", None, "family asked — ailə xahiş etdi", NOW)
    store.add(None, None, None, "stop everything", NOW + timedelta(minutes=1))
    why = "template spotlight: 'x' is undefined"
    store.sync_files([Hold("c", None, None, why, NOW, source="templates/s.j2:3", post="p")], NOW)
    ledger.close()
    return url


def shown(folder: Path, url: str) -> list[str]:
    """What history (JSON and table) and holds print for a ledger."""
    outputs = []
    for args in (("history", "--format", "json"), ("history",), ("holds", "--format", "json")):
        result = solidarity(folder, *args, "--db", url)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    return outputs


def test_a_sqlite_ledger_copied_into_postgresql_shows_the_same(
    tmp_path: Path, source: str, postgres: PostgresFactory
) -> None:
    target = with_password(postgres())
    before = shown(tmp_path, source)
    assert len(before[0].splitlines()) == len(ROWS) and len(before[2].splitlines()) == 3

    result = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target)

    assert result.returncode == 0, result.stderr
    assert "deliveries" in result.stdout and "9 rows" in result.stdout
    assert "holds" in result.stdout and "3 rows" in result.stdout
    assert "(schema 0" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert "postgres:***@127.0.0.1" in result.stdout
    assert shown(tmp_path, target) == before
    assert shown(tmp_path, source) == before  # the source is left as it was


def test_a_row_claimed_after_the_copy_gets_a_fresh_id(
    tmp_path: Path, source: str, postgres: PostgresFactory
) -> None:
    target = postgres()
    assert solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target).returncode == 0
    ledger = Ledger.open(target)
    with ledger.engine.connect() as connection:
        highest = connection.execute(select(func.max(TABLE.c.id))).scalar_one()
    at = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    new = ledger.claim(Claim("c/p/m/new", "c", "p", "m", "mastodon", None, at), at, "me")
    assert new is not None and new.id == highest + 1
    HoldStore(ledger).add(None, None, "m", "a hold after the copy", at)  # holds' ids move on too
    assert len(HoldStore(ledger).all()) == 4
    ledger.close()


def test_a_second_copy_is_refused_and_changes_nothing(
    tmp_path: Path, source: str, postgres: PostgresFactory
) -> None:
    target = with_password(postgres())
    assert solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target).returncode == 0
    after = shown(tmp_path, target)

    again = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target)

    assert again.returncode == 1
    assert "is not empty: deliveries (9 rows), holds (3 rows)" in again.stderr
    assert "postgres:***@127.0.0.1" in again.stderr and PASSWORD not in again.stderr
    assert "Traceback" not in again.stderr
    assert shown(tmp_path, target) == after


def test_a_target_with_only_a_hold_is_not_empty(tmp_path: Path, source: str) -> None:
    target = f"sqlite:///{tmp_path / 'other.db'}"
    ledger = Ledger.open(target)
    HoldStore(ledger).add(None, None, None, "kill switch", NOW)
    ledger.close()
    result = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target)
    assert result.returncode == 1 and "holds (1 rows)" in result.stderr
    assert solidarity(tmp_path, "history", "--db", target).stdout == "Nothing in the ledger yet.\n"


def test_sqlite_to_sqlite_copies_everything(tmp_path: Path, source: str) -> None:
    target = f"sqlite:///{tmp_path / 'copy' / 'solidarity.db'}"
    (tmp_path / "copy").mkdir()
    result = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", target)
    assert result.returncode == 0, result.stderr
    assert shown(tmp_path, target) == shown(tmp_path, source)
    # a new row after the copy: SQLite gives the next id by itself
    ledger = Ledger.open(target)
    at = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    new = ledger.claim(Claim("c/p/m/new", "c", "p", "m", "mastodon", None, at), at, "me")
    assert new is not None and new.id == len(ROWS) + 1
    ledger.close()


def test_a_running_daemons_lock_makes_it_refuse(tmp_path: Path, source: str) -> None:
    target = tmp_path / "new.db"
    with ledger_lock(source):  # what `solidarity run` holds while it runs
        result = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", f"sqlite:///{target}")
    assert result.returncode == 1
    assert "a daemon is running on the source ledger" in result.stderr
    assert f"pid {os.getpid()}" in result.stderr  # who holds it
    assert "Traceback" not in result.stderr
    assert not target.exists()


def test_a_postgresql_source_a_daemon_still_sends_from_is_refused(
    tmp_path: Path, postgres: PostgresFactory
) -> None:
    """No lock tells on PostgreSQL: a row in flight whose lease runs (the server's clock) does."""
    url, target = postgres(), f"sqlite:///{tmp_path / 'new.db'}"
    ledger = Ledger.open(url)
    now = datetime.now(UTC)  # the daemon's clock agrees with the server's (check_clock)
    claim = Claim("c/p/m/2026-03-10T07:05:00Z/-", "c", "p", "m", "mastodon", None, NOW)
    entry = ledger.claim_sending(claim, ["on the wire"], now, "host-b:202:bbbb")
    assert entry is not None
    result = solidarity(tmp_path, "copy-ledger", "--db", url, "--to", target)
    assert result.returncode == 1, result.stdout
    assert "daemons still send from" in result.stderr and "host-b:202:bbbb" in result.stderr
    assert "Traceback" not in result.stderr
    with ledger.engine.begin() as connection:  # the daemon stopped: its lease ran out
        connection.execute(
            TABLE.update().values(lease_until=now - timedelta(seconds=1), updated_at=now)
        )
    ledger.close()
    result = solidarity(tmp_path, "copy-ledger", "--db", url, "--to", target)
    assert result.returncode == 0, result.stderr


def test_a_missing_source_is_an_error_not_an_empty_copy(tmp_path: Path) -> None:
    target = tmp_path / "new.db"
    result = solidarity(
        tmp_path, "copy-ledger", "--db", "sqlite:///nowhere.db", "--to", f"sqlite:///{target}"
    )
    assert result.returncode == 1
    assert "there is no ledger at sqlite:///nowhere.db: the file does not exist" in result.stderr
    assert not target.exists()


def test_the_same_database_is_refused(
    tmp_path: Path, source: str, postgres: PostgresFactory
) -> None:
    relative = "sqlite:///solidarity.db"  # the same file as `source`, from the working folder
    result = solidarity(tmp_path, "copy-ledger", "--db", source, "--to", relative)
    assert result.returncode == 1 and "are the same database" in result.stderr
    url = postgres()
    Ledger.open(url).close()
    # another spelling of one database: names cannot tell, the server can
    same = solidarity(tmp_path, "copy-ledger", "--db", url, "--to", url + "?application_name=x")
    assert same.returncode == 1 and "are the same database" in same.stderr, same.stderr


def test_postgresql_to_postgresql_and_a_failed_copy_leaves_nothing(
    tmp_path: Path, source: str, postgres: PostgresFactory
) -> None:
    middle, last = postgres(), postgres()
    assert solidarity(tmp_path, "copy-ledger", "--db", source, "--to", middle).returncode == 0
    ledger = Ledger.open(last)
    with ledger.engine.begin() as connection:  # the holds, copied after the rows, will fail
        connection.execute(
            text("ALTER TABLE holds ADD CONSTRAINT no_kill CHECK (why <> 'stop everything')")
        )
    ledger.close()

    failed = solidarity(tmp_path, "copy-ledger", "--db", middle, "--to", last)

    assert failed.returncode == 1, failed.stdout
    assert "nothing was copied" in failed.stderr and "rolled back" in failed.stderr
    assert solidarity(tmp_path, "history", "--db", last).stdout == "Nothing in the ledger yet.\n"
    ledger = Ledger.open(last)
    with ledger.engine.begin() as connection:
        connection.execute(text("ALTER TABLE holds DROP CONSTRAINT no_kill"))
    ledger.close()
    assert solidarity(tmp_path, "copy-ledger", "--db", middle, "--to", last).returncode == 0
    assert shown(tmp_path, last) == shown(tmp_path, source)


def test_the_source_file_is_not_touched_by_a_refusal(tmp_path: Path, source: str) -> None:
    path = tmp_path / "solidarity.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    ledger = Ledger.open(other)
    HoldStore(ledger).add(None, None, None, "a hold", NOW)
    ledger.close()
    assert solidarity(tmp_path, "copy-ledger", "--db", source, "--to", other).returncode == 1
    assert path.read_bytes() == before


def test_help_says_which_databases(tmp_path: Path) -> None:
    result = solidarity(tmp_path, "copy-ledger", "--help")
    assert result.returncode == 0
    words = " ".join(result.stdout.split())
    assert "SQLite to SQLite and PostgreSQL to PostgreSQL work too" in words
    assert "--to URL" in words
    assert solidarity(tmp_path, "copy-ledger").returncode == 2  # --to is required
