"""The real ``solidarity hold``, ``resume``, ``holds``, ``resolve``, ``status``, ``preview``
and ``send``'s guards, as subprocesses, against a Mastodon stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.ledger import Claim, Ledger
from tests.standins.fixtures import mastodon_standin  # noqa: F401 - a pytest fixture
from tests.standins.mastodon import Mastodon

NOW = "2026-03-10T11:05:00+04:00"

CAMPAIGN = """\
name: c
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
accounts: [m]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
posts:
  - id: p
    cron: "0 12 * * *"
    text: "Journalism is not a crime."
  - id: spot
    cron: "0 13 * * *"
    for_each: people
    text: "Free {{ person.name }}."
"""


@pytest.fixture
def world(tmp_path: Path, mastodon_standin: Mastodon) -> dict[str, object]:  # noqa: F811
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(
        f"m:\n  platform: mastodon\n  instance: {mastodon_standin.url}\n"
        "  access_token: ${M_TOKEN}\n  pace: 0\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(M_TOKEN="test-access-token", SOLIDARITY_NOW=NOW)
    return {"dir": tmp_path, "env": env, "m": mastodon_standin}


def solidarity(world: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    return subprocess.run(
        [*base, *args],
        cwd=world["dir"],  # type: ignore[arg-type]
        env=world["env"],  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def db(world: dict[str, object]) -> Path:
    folder = world["dir"]
    assert isinstance(folder, Path)
    return folder / "solidarity.db"


def posts(world: dict[str, object]) -> list[dict[str, object]]:
    standin = world["m"]
    assert isinstance(standin, Mastodon)
    return standin.posts


def json_rows(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_hold_then_holds_lists_it_as_json(world: dict[str, object]) -> None:
    result = solidarity(world, "hold", "--campaign", "c", "--person", "sevinj", "--why", "family")
    assert result.returncode == 0, result.stderr
    assert "held: campaign c, person sevinj" in result.stdout
    assert "solidarity resume --campaign c --person sevinj" in result.stdout
    assert result.stderr == ""  # both are in the files: no warning
    kill = solidarity(world, "hold", "--why", "we were hacked")
    assert kill.returncode == 0 and "everything is held (kill switch)" in kill.stdout
    rows = json_rows(solidarity(world, "holds", "--format", "json").stdout)
    assert rows == [
        {
            "campaign": "c",
            "person": "sevinj",
            "account": None,
            "post": None,
            "why": "family",
            "since": "2026-03-10T07:05:00+00:00",
            "source": "command",
        },
        {
            "campaign": None,
            "person": None,
            "account": None,
            "post": None,
            "why": "we were hacked",
            "since": "2026-03-10T07:05:00+00:00",
            "source": "command",
        },
    ]
    table = solidarity(world, "holds")
    assert "everything (kill switch)" in table.stdout and "why: we were hacked" in table.stdout


def test_hold_needs_why_and_warns_about_names_not_in_the_files(world: dict[str, object]) -> None:
    assert solidarity(world, "hold", "--campaign", "c").returncode == 2
    assert not db(world).exists()
    result = solidarity(world, "hold", "--campaign", "nope", "--account", "zz", "--why", "later")
    assert result.returncode == 0
    assert "no campaign 'nope'" in result.stderr and "no account 'zz'" in result.stderr
    assert json_rows(solidarity(world, "holds", "--format", "json").stdout)[0]["campaign"] == "nope"


def test_holds_without_a_ledger_creates_none(world: dict[str, object]) -> None:
    result = solidarity(world, "holds")
    assert result.returncode == 0 and result.stdout == "No holds.\n"
    assert solidarity(world, "holds", "--format", "json").stdout == ""
    assert not db(world).exists()


def test_resume_lifts_only_an_exact_match(world: dict[str, object]) -> None:
    solidarity(world, "hold", "--campaign", "c", "--person", "sevinj", "--why", "family")
    missed = solidarity(world, "resume", "--campaign", "c")
    assert missed.returncode == 1
    assert "no hold by a person names exactly campaign c" in missed.stderr
    assert "campaign c, person sevinj" in missed.stderr  # the holds in force are listed
    lifted = solidarity(world, "resume", "--campaign", "c", "--person", "sevinj")
    assert lifted.returncode == 0 and "lifted: campaign c, person sevinj" in lifted.stdout
    assert solidarity(world, "holds").stdout == "No holds.\n"
    assert solidarity(world, "resume", "--campaign", "c", "--person", "sevinj").returncode == 1


def uncertain_rows(world: dict[str, object], *keys: str) -> None:
    ledger = Ledger.open(f"sqlite:///{db(world)}")
    at = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    for key in keys:
        row = ledger.claim(Claim(key, "c", "p", "m", "mastodon", None, at), at, "me")
        assert row is not None
        ledger.uncertain(row, "telegram (HTTP 502): Bad Gateway", at)
    ledger.close()


def history(world: dict[str, object]) -> dict[str, dict[str, object]]:
    rows = json_rows(solidarity(world, "history", "--format", "json").stdout)
    return {str(r["key"]): r for r in rows}


def test_resolve_sent_and_not_sent_and_only_uncertain_rows(world: dict[str, object]) -> None:
    uncertain_rows(world, "k-sent", "k-not")
    url = "https://mastodon.example/@hr/1"
    status = solidarity(world, "status")
    assert "solidarity resolve k-sent --sent URL (or --not-sent)" in status.stdout
    both = solidarity(world, "resolve", "k-sent", "--sent", url, "--not-sent")
    assert both.returncode == 2
    assert solidarity(world, "resolve", "k-sent").returncode == 2
    sent = solidarity(world, "resolve", "k-sent", "--sent", url, "--why", "I saw it on the page")
    assert sent.returncode == 0, sent.stderr
    not_sent = solidarity(world, "resolve", "k-not", "--not-sent", "--why", "not on the channel")
    assert not_sent.returncode == 0, not_sent.stderr
    rows = history(world)
    assert rows["k-sent"]["status"] == "sent" and rows["k-sent"]["remote_url"] == url
    assert rows["k-sent"]["reason"] == "I saw it on the page"
    assert rows["k-sent"]["sent_at"] == "2026-03-10T07:05:00+00:00"
    assert rows["k-not"]["status"] == "failed"
    assert rows["k-not"]["error"] == "not sent, per a person: not on the channel"
    again = solidarity(world, "resolve", "k-sent", "--not-sent")
    assert again.returncode == 1 and "k-sent is sent, not uncertain" in again.stderr
    assert history(world)["k-sent"]["status"] == "sent"
    unknown = solidarity(world, "resolve", "nope", "--not-sent")
    assert unknown.returncode == 1 and "no ledger row" in unknown.stderr
    assert "solidarity resolve" not in solidarity(world, "status").stdout


def test_status_lists_the_holds_in_force(world: dict[str, object]) -> None:
    solidarity(world, "hold", "--campaign", "c", "--why", "the family asked")
    result = solidarity(world, "status")
    assert result.returncode == 0, result.stderr
    assert "Holds in force (1)" in result.stdout
    assert "campaign c: since 2026-03-10 07:05 UTC, by a person" in result.stdout
    assert "why: the family asked" in result.stdout
    assert "c: Azerbaijan: From Newsroom to Cell (Asia/Baku) [HELD]" in result.stdout


def test_send_twice_is_refused_with_the_url_then_again_sends(world: dict[str, object]) -> None:
    first = solidarity(world, "send", "c", "p", "--yes")
    assert first.returncode == 0, first.stderr
    assert len(posts(world)) == 1
    url = history(world).popitem()[1]["remote_url"]
    assert isinstance(url, str) and url.startswith("http://127.0.0.1")
    second = solidarity(world, "send", "c", "p", "--yes")
    assert second.returncode == 1
    assert "already went there at 2026-03-10 11:05 +04" in second.stderr
    assert url in second.stderr
    assert "next scheduled 2026-03-10 12:00 +04" in second.stderr
    assert "--again" in second.stderr
    assert len(posts(world)) == 1
    # without --yes it is refused before anyone is asked
    assert "Post this now" not in solidarity(world, "send", "c", "p").stderr
    again = solidarity(world, "send", "c", "p", "--yes", "--again")
    assert again.returncode == 0, again.stderr
    assert len(posts(world)) == 2
    assert len(history(world)) == 2  # two rows: a manual send is an occurrence of its own


def test_send_guard_counts_only_the_same_person_on_featuring_posts(
    world: dict[str, object],
) -> None:
    campaign = CAMPAIGN.replace(
        "    name: Sevinj Vagifgizi\n",
        "    name: Sevinj Vagifgizi\n  - id: nargiz\n    name: Nargiz Absalamova\n",
    )
    folder = world["dir"]
    assert isinstance(folder, Path)
    (folder / "campaigns" / "c.yaml").write_text(campaign, encoding="utf-8")
    assert solidarity(world, "send", "c", "spot", "--person", "sevinj", "--yes").returncode == 0
    other = solidarity(world, "send", "c", "spot", "--person", "nargiz", "--yes")
    assert other.returncode == 0, other.stderr
    same = solidarity(world, "send", "c", "spot", "--person", "sevinj", "--yes")
    assert same.returncode == 1 and "m [sevinj]: c/spot already went there" in same.stderr
    assert len(posts(world)) == 2


def test_send_person_on_a_post_featuring_nobody_is_a_usage_error(
    world: dict[str, object],
) -> None:
    result = solidarity(world, "send", "c", "p", "--person", "sevinj", "--yes")
    assert result.returncode == 2
    assert "features nobody" in result.stderr
    assert not posts(world)


def test_send_obeys_holds(world: dict[str, object]) -> None:
    solidarity(world, "hold", "--campaign", "c", "--why", "the family asked")
    result = solidarity(world, "send", "c", "p")  # refused before the prompt
    assert result.returncode == 1
    assert "held: campaign c: the family asked" in result.stderr
    assert "Post this now" not in result.stderr
    assert "nothing was sent" in result.stderr
    assert solidarity(world, "send", "c", "p", "--yes", "--again").returncode == 1
    assert not posts(world)
    solidarity(world, "resume", "--campaign", "c")
    solidarity(world, "hold", "--account", "m", "--person", "sevinj", "--why", "ask her lawyer")
    assert solidarity(world, "send", "c", "p", "--yes").returncode == 0  # features nobody
    held = solidarity(world, "send", "c", "spot", "--yes")
    assert held.returncode == 1 and "person sevinj, account m: ask her lawyer" in held.stderr
    assert len(posts(world)) == 1


def test_preview_shows_held_without_writing_the_ledger(world: dict[str, object]) -> None:
    args = ("preview", "--from", "2026-03-11", "--days", "1", "--format", "json")
    assert {r["status"] for r in json_rows(solidarity(world, *args).stdout)} == {"ok"}
    assert not db(world).exists()
    solidarity(world, "hold", "--campaign", "c", "--person", "sevinj", "--why", "family")
    before = db(world).read_bytes()
    result = solidarity(world, *args)
    assert result.returncode == 0, result.stderr
    rows = {str(r["post"]): r for r in json_rows(result.stdout)}
    assert rows["p"]["status"] == "ok"
    assert rows["spot"]["status"] == "held"
    assert any("family" in str(w) for w in rows["spot"]["warnings"])  # type: ignore[attr-defined]
    assert db(world).read_bytes() == before
    table = solidarity(world, "preview", "--from", "2026-03-11", "--days", "1")
    assert "HELD" in table.stdout


def test_preview_goes_on_when_the_holds_cannot_be_read(world: dict[str, object]) -> None:
    db(world).write_bytes(b"this is not a database")
    result = solidarity(world, "preview", "--from", "2026-03-11", "--days", "1", "--format", "json")
    assert result.returncode == 0
    assert "warning: the holds could not be read" in result.stderr
    assert {r["status"] for r in json_rows(result.stdout)} == {"ok"}


def test_run_once_under_a_hold_sends_nothing_says_so_and_a_resume_lets_it_go(
    world: dict[str, object],
) -> None:
    world["env"]["SOLIDARITY_NOW"] = "2026-03-10T12:05:00+04:00"  # type: ignore[index]
    assert solidarity(world, "hold", "--campaign", "c", "--why", "family asked").returncode == 0
    held = solidarity(world, "run", "--once")
    assert held.returncode == 0, held.stderr
    assert posts(world) == []
    assert "held" in held.stdout and "family asked" in held.stdout and "c/p/m/" in held.stdout
    assert solidarity(world, "resume", "--campaign", "c").returncode == 0
    sent = solidarity(world, "run", "--once")
    assert sent.returncode == 0, sent.stderr
    assert len(posts(world)) == 1 and "Journalism is not a crime." in str(posts(world)[0])


def test_status_as_json_has_each_campaign_its_next_occurrences_and_holds(
    world: dict[str, object],
) -> None:
    assert solidarity(world, "hold", "--campaign", "c", "--why", "family").returncode == 0
    result = solidarity(world, "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    (campaign,) = json_rows(result.stdout)
    assert campaign["campaign"] == "c" and campaign["timezone"] == "Asia/Baku"
    assert campaign["next"][0]["post"] == "p" and campaign["next"][0]["accounts"] == ["m"]
    assert [h["why"] for h in campaign["holds"]] == ["family"]
    assert campaign["need_a_human"] == [] and campaign["failed"] == []
