"""The ledger: one row per occurrence and account, claimed before anything is sent."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.errors import LedgerError, RowTakenError
from scheduler.ledger import Claim, Entry, Ledger

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def claim(key: str = "c/p/a/2026-07-01T09:00:00Z/-") -> Claim:
    return Claim(key, "c", "p", "a", "mastodon", None, NOW)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A new ledger, on SQLite and on PostgreSQL (conftest's ``ledger_url``)."""
    ledger = Ledger.open(ledger_url)
    yield ledger
    ledger.close()


def test_a_key_is_claimed_once(ledger: Ledger) -> None:
    first = ledger.claim(claim(), NOW, "one")
    assert first is not None and first.status == "claimed"
    assert ledger.claim(claim(), NOW, "two") is None


def test_concurrent_claims_let_exactly_one_win(ledger_url: str) -> None:
    url = ledger_url
    Ledger.open(url).close()
    winners: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        try:
            ledger = Ledger.open(url)
            start.wait()
            if ledger.claim(claim(), NOW, name) is not None:
                winners.append(name)
            ledger.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1


def test_lifecycle_keeps_text_ids_and_times(ledger: Ledger) -> None:
    entry = ledger.claim(claim(), NOW, "me")
    assert entry is not None
    entry = ledger.sending(entry, ["part one", "part two"], NOW + timedelta(seconds=1))
    assert entry.status == "sending" and entry.attempts == 1
    entry = ledger.sent(entry, ["1", "2"], "https://m.example/@a/1", NOW + timedelta(seconds=2))
    assert entry.status == "sent"
    assert entry.remote_id == "1" and entry.remote_url == "https://m.example/@a/1"
    assert entry.text == "part one\n\npart two"
    assert entry.scheduled_for == NOW and entry.sent_at == NOW + timedelta(seconds=2)
    assert entry.scheduled_for.tzinfo is not None


def test_what_writes_return_is_what_a_read_returns(ledger: Ledger) -> None:
    """Claims and updates skip SQLAlchemy's execution path; their rows must not differ."""
    from zoneinfo import ZoneInfo

    baku = ZoneInfo("Asia/Baku")
    local = NOW.astimezone(baku)  # aware, not UTC: stored and returned as UTC
    claims = [
        Claim(f"k{i}", "c", "p", f"a{i}", "bluesky", "Sevinj" if i % 2 else None, local)
        for i in range(4)
    ]
    at = local + timedelta(microseconds=7)
    assert ledger.claim(claims[3], NOW, "other") is not None
    got = [ledger.claim_sending(c, ["one", "twö"], at, "me") for c in claims]
    assert got[3] is None  # claimed before: nothing to send
    for entry in got[:3]:
        assert entry is not None and entry == ledger.get(entry.key)
        assert entry.status == "sending" and entry.attempts == 1
        assert entry.parts == ("one", "twö") and entry.owner == "me"
        assert entry.scheduled_for.tzinfo == UTC and entry.scheduled_for == NOW
        assert entry.created_at == NOW + timedelta(microseconds=7)
    first = got[0]
    assert first is not None
    steps = [ledger.retrying(first, "429", NOW + timedelta(minutes=2), NOW + timedelta(seconds=2))]
    steps.append(ledger.sending(steps[-1], ["one", "twö"], NOW + timedelta(minutes=2)))
    steps.append(ledger.sent(steps[-1], ["at://1", "at://2"], None, NOW + timedelta(minutes=3)))
    assert steps[1].attempts == 2 and steps[0].next_attempt_at == NOW + timedelta(minutes=2)
    assert steps[-1] == ledger.get(first.key)
    assert steps[-1].parts == ("one", "twö") and steps[-1].remote_id == "at://1"
    assert steps[-1].next_attempt_at is None and steps[-1].error is None
    with pytest.raises(RowTakenError, match="moved on in another process"):
        ledger.sent(dataclasses.replace(first, id=10_000), ["x"], None, NOW)


def test_a_failed_group_commit_tells_every_caller_and_stores_nothing(tmp_path: Path) -> None:
    """Updates queued together commit together: none may believe its row was stored.

    Group commit is SQLite's (one writer); on PostgreSQL each write commits alone.
    """
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    good, bad = ledger.claim(claim("good"), NOW, "me"), ledger.claim(claim("bad"), NOW, "me")
    assert good and bad
    outcomes: dict[str, object] = {}

    def write(name: str, entry: Entry, when: datetime) -> None:
        try:
            outcomes[name] = ledger.sending(entry, ["text"], when)
        except Exception as exc:
            outcomes[name] = exc

    with ledger._writing:  # hold the writer so that both updates queue for one commit
        threads = [
            threading.Thread(target=write, args=("good", good, NOW)),
            threading.Thread(target=write, args=("bad", bad, NOW.replace(tzinfo=None))),
        ]
        for t in threads:
            t.start()
        while len(ledger._queue) < 2:
            threading.Event().wait(0.001)
    for t in threads:
        t.join(5)
    assert isinstance(outcomes["good"], LedgerError)
    assert isinstance(outcomes["bad"], ValueError)  # the bug itself, with its traceback
    assert [e.status for e in ledger.history()] == ["claimed", "claimed"]
    assert ledger.sending(good, ["text"], NOW).status == "sending"  # the writer recovered
    ledger.close()


def test_failed_retrying_uncertain_and_recorded_rows(ledger: Ledger) -> None:
    a = ledger.claim(claim("a"), NOW, "me")
    b = ledger.claim(claim("b"), NOW, "me")
    assert a and b
    assert (
        ledger.failed(a, "mastodon (HTTP 401): The access token is invalid", NOW).status == "failed"
    )
    b = ledger.retrying(b, "429", NOW + timedelta(minutes=1), NOW)
    assert b.status == "retrying"
    assert ledger.uncertain(b, "timeout", NOW).status == "uncertain"
    missed = ledger.record(
        claim("c"), "missed", "due at 09:00 while no daemon ran; grace is 15m", NOW
    )
    assert missed is not None and missed.status == "missed" and "grace" in (missed.reason or "")
    assert ledger.record(claim("c"), "skipped", "again", NOW) is None
    assert [e.key for e in ledger.history()] == ["a", "b", "c"]
    assert [e.key for e in ledger.history(statuses=["failed"])] == ["a"]


def test_a_platforms_words_with_a_nul_are_stored(ledger: Ledger) -> None:
    """PostgreSQL's text cannot hold NUL; a hostile answer's must not stop the ledger."""
    entry = ledger.claim(claim(), NOW, "me")
    assert entry is not None
    failed = ledger.failed(entry, "mastodon (HTTP 422): bad\x00answer", NOW)
    stored = ledger.get(entry.key)
    assert stored is not None and stored.error == failed.error
    assert failed.error == "mastodon (HTTP 422): bad\ufffdanswer"
    missed = ledger.record(claim("other"), "missed", "due\x00", NOW)
    assert missed is not None and missed.reason == "due\ufffd"


def test_history_filters_by_campaign_and_since(ledger: Ledger) -> None:
    ledger.claim(Claim("k1", "one", "p", "a", "mastodon", None, NOW), NOW, "me")
    ledger.claim(Claim("k2", "two", "p", "a", "mastodon", None, NOW + timedelta(days=1)), NOW, "me")
    assert [e.key for e in ledger.history(campaign="two")] == ["k2"]
    assert [e.key for e in ledger.history(since=NOW + timedelta(hours=1))] == ["k2"]


def test_reopening_keeps_rows_and_does_not_migrate_twice(ledger_url: str) -> None:
    first = Ledger.open(ledger_url)
    first.claim(claim(), NOW, "me")
    first.close()
    again = Ledger.open(ledger_url)
    found = again.get(claim().key)
    again.close()
    assert found is not None and found.status == "claimed"


def test_unopenable_ledger_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(LedgerError) as info:
        Ledger.open(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    assert "cannot open the ledger" in str(info.value)
    with pytest.raises(LedgerError) as info:
        Ledger.open("postgresql+nosuchdriver://user:hunter2@127.0.0.1:9/db")
    assert "hunter2" not in str(info.value)


def test_the_schema_head_constant_is_alembics_newest_migration() -> None:
    from importlib import resources

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from scheduler.ledger import SCHEMA_HEAD

    config = Config()
    config.set_main_option("script_location", str(resources.files("scheduler") / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


# a daemon starting: everything imported, then Ledger.open at the parent's word
OPEN_ON_GO = """
import sys
import alembic.command, alembic.config, alembic.script  # what _migrate imports, beforehand
from scheduler.ledger import Ledger
print("ready", flush=True)
sys.stdin.readline()
Ledger.open(sys.argv[1]).close()
"""


def test_daemons_started_at_once_on_an_empty_database_create_the_schema_once(
    ledger_url: str,
) -> None:
    """Three processes open one new ledger at the same instant: one migrates, all start."""
    from sqlalchemy import create_engine, inspect, text

    daemons = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_ON_GO, ledger_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for daemon in daemons:
            assert daemon.stdout is not None and daemon.stdout.readline() == "ready\n"
        for daemon in daemons:  # as close to one instant as three pipes allow
            assert daemon.stdin is not None
            daemon.stdin.write("go\n")
            daemon.stdin.flush()
        outcomes = [daemon.communicate(timeout=60) for daemon in daemons]
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.kill()
    assert [d.returncode for d in daemons] == [0, 0, 0], [err for _out, err in outcomes]
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v for (v,) in versions] == ["0003"]
        assert {"alembic_version", "deliveries", "holds"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_one_the_code_declares(ledger_url: str) -> None:
    """Migrations and models cannot drift apart: Alembic's comparison finds no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import MetaData

    from scheduler.holds import HOLDS
    from scheduler.ledger import Base

    declared = MetaData()
    for table in (*Base.metadata.tables.values(), HOLDS):
        table.to_metadata(declared)
    ledger = Ledger.open(ledger_url)
    try:
        with ledger.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), declared)
            if connection.dialect.name == "sqlite":  # SQLite keeps no length: VARCHAR is TEXT
                diff = [d for d in diff if not (isinstance(d, list) and d[0][0] == "modify_type")]
    finally:
        ledger.close()
    assert diff == [], diff


def test_the_commands_migrate_in_a_child_and_never_import_alembic(ledger_url: str) -> None:
    """The daemon keeps what it imports for its life: Alembic stays in a child process."""
    script = (
        "import sys\n"
        "from scheduler.ledger import Ledger\n"
        "ledger = Ledger.open(sys.stdin.read(), apart=True)\n"
        "from scheduler.ledgermigrate import current\n"
        "print(current(ledger.engine), 'alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=ledger_url, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_a_migration_that_fails_in_its_child_says_why(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    db = tmp_path / "ro" / "ledger.db"
    db.write_bytes(b"this is not a database")
    with pytest.raises(LedgerError, match=r"cannot open the ledger .*file is not a database"):
        Ledger.open(f"sqlite:///{db}", apart=True)


def test_a_transient_failure_is_tried_again_and_what_committed_unanswered_is_found(
    ledger_url: str,
) -> None:
    """A deadlock or a lost connection must not lose a ``sent``: the write is tried again."""
    from sqlalchemy import event

    ledger = Ledger.open(ledger_url)
    entry = ledger.claim_sending(claim("t"), ["text"], NOW, "me")
    assert entry is not None
    failures = {"left": 2}

    def fail(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and failures["left"]:
            failures["left"] -= 1
            raise ledger.engine.dialect.loaded_dbapi.OperationalError("database is locked")

    event.listen(ledger.engine, "before_cursor_execute", fail)
    try:
        sent = ledger.sent(entry, ["1"], "https://m.example/1", NOW)
    finally:
        event.remove(ledger.engine, "before_cursor_execute", fail)
    assert failures["left"] == 0 and sent.status == "sent"
    found = ledger.get("t")
    assert found is not None and found.status == "sent"
    ledger.close()
