"""The hold store in the ledger's database, what a hold covers, and the 0002 migration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from scheduler.errors import LedgerError
from scheduler.holds import Hold, HoldStore
from scheduler.ledger import Claim, Ledger

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A new ledger, on SQLite and on PostgreSQL (conftest's ``ledger_url``)."""
    ledger = Ledger.open(ledger_url)
    yield ledger
    ledger.close()


@pytest.fixture
def store(ledger: Ledger) -> HoldStore:
    return HoldStore(ledger)


def file_hold(source: str, campaign: str | None = "c", post: str | None = None) -> Hold:
    return Hold(campaign, None, None, f"{source} is broken", NOW, source, post)


def test_add_upserts_keeping_since_and_updating_why(store: HoldStore) -> None:
    first = store.add("c", None, None, "the family asked us to stop", NOW)
    assert first.since == NOW and first.source == "command"
    again = store.add(
        "c", None, None, "the family asked us to stop, until Friday", NOW + timedelta(hours=1)
    )
    assert again.since == NOW
    assert store.all() == [Hold("c", None, None, "the family asked us to stop, until Friday", NOW)]
    store.add("c", "sevinj", None, "released?", NOW + timedelta(hours=2))
    assert [h.what for h in store.all()] == ["campaign c", "campaign c, person sevinj"]


def test_since_is_aware_utc_whatever_zone_now_is_in(store: HoldStore) -> None:
    from zoneinfo import ZoneInfo

    store.add(None, None, None, "stop", NOW.astimezone(ZoneInfo("Asia/Baku")))
    (found,) = store.all()
    assert found.since == NOW and found.since.tzinfo is not None
    assert found.since.utcoffset() == timedelta(0)


def test_remove_lifts_only_the_exact_command_hold(store: HoldStore) -> None:
    store.add("c", "sevinj", None, "one person", NOW)
    store.add("c", None, None, "the campaign", NOW + timedelta(seconds=1))
    store.add(None, None, None, "everything", NOW + timedelta(seconds=2))
    store.sync_files([file_hold("campaigns/c.yaml:3")], NOW)
    assert store.remove("c", None, "hr-x") == []
    assert store.remove(None, "sevinj", None) == []
    lifted = store.remove("c", None, None)
    assert [h.why for h in lifted] == ["the campaign"]
    assert store.remove("c", None, None) == []
    assert [h.why for h in store.all()] == [
        "one person",
        "campaigns/c.yaml:3 is broken",  # held since NOW, like the first
        "everything",
    ]
    assert [h.why for h in store.remove(None, None, None)] == ["everything"]
    # a file problem is not lifted by resume: fixing the file lifts it
    assert [h.source for h in store.all()] == ["command", "campaigns/c.yaml:3"]


def test_sync_files_replaces_file_holds_and_keeps_the_since_of_unchanged_ones(
    store: HoldStore,
) -> None:
    store.add("c", None, None, "by hand", NOW)
    a, b = file_hold("campaigns/c.yaml:3"), file_hold("templates/t.j2:1", post="p")
    added, lifted = store.sync_files([a, b], NOW)
    assert [h.source for h in added] == ["campaigns/c.yaml:3", "templates/t.j2:1"]
    assert lifted == []
    later = NOW + timedelta(minutes=5)
    c = file_hold("accounts.yaml:7", campaign=None)
    added, lifted = store.sync_files([b, c, c], later)
    assert [h.source for h in added] == ["accounts.yaml:7"] and added[0].since == later
    assert [h.source for h in lifted] == ["campaigns/c.yaml:3"]
    by_source = {h.source: h for h in store.all()}
    assert set(by_source) == {"command", "templates/t.j2:1", "accounts.yaml:7"}
    assert by_source["templates/t.j2:1"].since == NOW  # unchanged scope: its since is kept
    assert by_source["templates/t.j2:1"].post == "p"
    assert store.sync_files([b, c], later + timedelta(minutes=1)) == ([], [])
    _added, lifted = store.sync_files([], later)
    assert {h.source for h in lifted} == {"templates/t.j2:1", "accounts.yaml:7"}
    assert [h.source for h in store.all()] == ["command"]  # command holds are left alone


def test_all_is_oldest_first(store: HoldStore) -> None:
    store.add("b", None, None, "second", NOW + timedelta(minutes=1))
    store.add("a", None, None, "first", NOW)
    assert [h.campaign for h in store.all()] == ["a", "b"]


@pytest.mark.parametrize(
    ("hold", "occurrence", "covered"),
    [
        (Hold(None, None, None, "kill", NOW), ("c", "p", "m", None), True),
        (Hold(None, None, None, "kill", NOW), ("d", "q", "b", "sevinj"), True),
        (Hold("c", None, None, "", NOW), ("c", "p", "m", "sevinj"), True),
        (Hold("c", None, None, "", NOW), ("d", "p", "m", None), False),
        (Hold("c", "sevinj", None, "", NOW), ("c", "p", "m", "sevinj"), True),
        (Hold("c", "sevinj", None, "", NOW), ("c", "p", "m", "nargiz"), False),
        (Hold("c", "sevinj", None, "", NOW), ("c", "p", "m", None), False),
        (Hold(None, "sevinj", None, "", NOW), ("d", "p", "m", "sevinj"), True),
        (Hold(None, None, "m", "", NOW), ("c", "p", "m", None), True),
        (Hold(None, None, "m", "", NOW), ("c", "p", "b", None), False),
        (Hold("c", None, "m", "", NOW), ("c", "p", "b", None), False),
        (Hold("c", None, None, "", NOW, "templates/t.j2:1", "p"), ("c", "p", "m", None), True),
        (Hold("c", None, None, "", NOW, "templates/t.j2:1", "p"), ("c", "q", "m", None), False),
    ],
)
def test_covers(hold: Hold, occurrence: tuple[str, str, str, str | None], covered: bool) -> None:
    assert hold.covers(*occurrence) is covered


def test_what_says_what_is_held() -> None:
    assert Hold(None, None, None, "", NOW).what == "everything (kill switch)"
    assert Hold("c", "p", None, "", NOW).what == "campaign c, person p"
    assert Hold(None, None, "m", "", NOW, "x:1", "post").what == "post post, account m"


def test_a_ledger_of_0001_is_migrated_with_its_rows(ledger_url: str) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    url = ledger_url
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(resources.files("scheduler") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert "holds" not in inspect(engine).get_table_names()
    claim = Claim("c/p/m/2026-03-10T07:00:00Z/-", "c", "p", "m", "mastodon", None, NOW)
    with engine.begin() as connection:  # a row as version 0001 wrote it
        connection.execute(
            text(
                "INSERT INTO deliveries (key, campaign, post, account, platform, scheduled_for,"
                " status, remote_id, remote_url, attempts, owner, created_at, updated_at, sent_at)"
                " VALUES (:key, 'c', 'p', 'm', 'mastodon', :at, 'sent', '1',"
                " 'https://m.example/@x/1', 1, 'me', :at, :at, :at)"
            ),
            {"key": claim.key, "at": NOW.replace(tzinfo=None)},
        )
    old = Ledger(engine)
    with pytest.raises(LedgerError):
        HoldStore(old).all()  # no holds table yet: an error, never "no holds"
    old.close()

    ledger = Ledger.open(url)
    found = ledger.get(claim.key)
    assert found is not None and found.status == "sent"
    assert found.remote_url == "https://m.example/@x/1"
    store = HoldStore(ledger)
    assert store.all() == []
    store.add("c", None, None, "after the migration", NOW)
    assert [h.why for h in store.all()] == ["after the migration"]
    indexes = {i["name"] for i in inspect(ledger.engine).get_indexes("deliveries")}
    ledger.close()
    assert "ix_deliveries_recent" in indexes


def test_held_is_a_final_status_that_record_and_settle_write(ledger: Ledger) -> None:
    from scheduler.ledger import FINAL

    assert "held" in FINAL
    claim = Claim("c/p/m/2026-03-10T07:00:00Z/-", "c", "p", "m", "mastodon", None, NOW)
    recorded = ledger.record(claim, "held", "held by campaign c: stop", NOW)
    assert recorded is not None and recorded.status == "held"
    assert recorded.reason == "held by campaign c: stop"
    other = ledger.claim(Claim("k2", "c", "p", "m", "mastodon", None, NOW), NOW, "me")
    assert other is not None
    settled = ledger.settle(other, "held", "campaigns/c.yaml:3 is broken", NOW)
    assert settled.status == "held" and settled.reason == "campaigns/c.yaml:3 is broken"


def test_a_database_failure_is_a_ledger_error(ledger: Ledger) -> None:
    store = HoldStore(ledger)
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE holds")
    with pytest.raises(LedgerError, match="holds could not be read"):
        store.all()
    with pytest.raises(LedgerError, match="holds could not be written"):
        store.add("c", None, None, "stop", NOW)
    with pytest.raises(LedgerError):
        store.sync_files([file_hold("x:1")], NOW)


def test_manual_resolve_recent_and_free_instant_on_each_backend(
    ledger: Ledger, ledger_url: str
) -> None:
    """What ``resolve`` and ``send`` ask of the ledger (scheduler.manual), on SQLite and PostgreSQL."""
    from scheduler.errors import SolidarityError
    from scheduler.manual import free_instant, read_holds, recent, resolve
    from scheduler.planning import Occurrence

    occ = Occurrence("c", "p", "m", NOW, None, 0)
    row = ledger.claim(Claim(occ.key, "c", "p", "m", "mastodon", None, NOW), NOW, "me")
    assert row is not None
    with pytest.raises(SolidarityError, match="not uncertain"):
        resolve(ledger, occ.key, None, None, NOW)
    assert recent(ledger, occ, False, NOW + timedelta(hours=1)) == ledger.get(occ.key)
    ledger.uncertain(row, "timeout", NOW)
    settled = resolve(ledger, occ.key, "https://m.example/@x/1", "seen it", NOW)
    assert settled.status == "sent" and settled.reason == "seen it"
    assert recent(ledger, occ, False, NOW + timedelta(hours=25)) is None
    assert free_instant(ledger, [occ])[0].scheduled_for == NOW + timedelta(seconds=1)
    HoldStore(ledger).add("c", None, None, "stop", NOW)
    assert [h.why for h in read_holds(ledger_url)] == ["stop"]
