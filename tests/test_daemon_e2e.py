"""The real daemon (``solidarity run``) as a process against stand-in processes on 127.0.0.1.

Killed in the middle of a burst and restarted, twice: nothing arrives twice, and
every due occurrence arrived or has an uncertain/failed/missed row. Live edits are
picked up, a broken file is reported while posting goes on, SIGTERM exits 0 promptly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.standins.fixtures import standin_process  # noqa: F401 - a pytest fixture
from tests.standins.process import StandInProcess

TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "60"))
PEOPLE = [f"p{i}" for i in range(8)]


def command() -> list[str]:
    exe = shutil.which("solidarity")
    return [exe] if exe else [sys.executable, "-m", "scheduler"]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class Site:
    """A project folder, its stand-ins, and the daemon processes run on it."""

    def __init__(self, root: Path, start: Callable[..., StandInProcess]) -> None:
        self.root = root
        self.mastodon = start("mastodon")
        self.telegram = start("telegram")
        (root / "campaigns").mkdir()
        (root / "templates").mkdir()
        (root / "accounts.yaml").write_text(
            f"""\
m:
  platform: mastodon
  instance: {self.mastodon.url}
  access_token: ${{M_TOKEN}}
  pace: 0
t:
  platform: telegram
  api: {self.telegram.url}
  bot_token: ${{T_TOKEN}}
  chat: "@test"
  pace: 0
""",
            encoding="utf-8",
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
        self.env.update(
            M_TOKEN="test-access-token",
            T_TOKEN=self.telegram.info.get("token", "123456789:AAStandInTokenForSolidarityTests00"),
            SOLIDARITY_WORKERS="4",
        )
        self.logs: list[Path] = []

    def campaign(self, name: str, body: str) -> None:
        path = self.root / "campaigns" / f"{name}.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)  # as editors save: the daemon never reads half a file

    def run(self, *args: str) -> subprocess.Popen[str]:
        log = self.root / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        return subprocess.Popen(
            [*command(), "run", *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command(), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def log(self, i: int = -1) -> str:
        return self.logs[i].read_text(encoding="utf-8")

    def posts(self, standin: StandInProcess) -> list[str]:
        return [str(p.get("text", "")) for p in standin.state()["posts"]]

    def rows(self) -> list[dict[str, Any]]:
        result = self.cli("history", "--format", "json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def wait_for(what: Callable[[], bool], timeout: float = TIMEOUT, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {why or what}")
        time.sleep(0.05)


def ready(site: Site, i: int = -1) -> Callable[[], bool]:
    return lambda: "ready in" in site.log(i)


@pytest.fixture
def site(tmp_path: Path, standin_process: Callable[..., StandInProcess]) -> Iterator[Site]:  # noqa: F811
    yield Site(tmp_path, standin_process)


def burst(at: datetime) -> str:
    people = "\n".join(f"  - id: {p}\n    name: Person {p.upper()}" for p in PEOPLE)
    return f"""\
name: burst
title: Burst
timezone: UTC
accounts: [m, t]
people:
{people}
posts:
  - id: a
    at: {stamp(at)}
    for_each: people
    text: "A: free {{{{ person.name }}}}"
  - id: b
    at: {stamp(at)}
    for_each: people
    text: "B: free {{{{ person.name }}}}"
"""


def test_killed_mid_burst_twice_nothing_twice_nothing_lost(site: Site) -> None:
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    site.campaign("burst", burst(due))
    expected = 2 * len(PEOPLE) * 2  # posts x people x accounts
    # each answer is held back 0.4 s after the post is created: kills land mid-request
    site.mastodon.knob("delay_next", seconds=0.4, n=expected)
    site.telegram.knob("delay_next", seconds=0.4, n=expected)

    def arrived() -> int:
        return len(site.posts(site.mastodon)) + len(site.posts(site.telegram))

    for kill_after in (4, 10):
        daemon = site.run()
        wait_for(lambda n=kill_after: arrived() >= n, why=f"{kill_after} posts")  # type: ignore[misc]
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(TIMEOUT)
    daemon = site.run()
    wait_for(ready(site), why="ready")

    def settled() -> bool:
        rows = site.rows()
        return len(rows) == expected and not any(
            r["status"] in ("claimed", "sending", "retrying") for r in rows
        )

    wait_for(settled, why="every row settled")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(TIMEOUT) == 0, site.log()

    for standin in (site.mastodon, site.telegram):
        texts = site.posts(standin)
        twice = [t for t, n in Counter(texts).items() if n > 1]
        assert not twice, f"posted twice on {standin.info['platform']}: {twice}"
    rows = site.rows()
    assert (
        len({r["account"] + r["scheduled_for"] + str(r["person"]) + r["post"] for r in rows})
        == expected
    )
    statuses = Counter(r["status"] for r in rows)
    assert set(statuses) <= {"sent", "uncertain", "failed", "missed"}, statuses
    assert statuses["sent"] >= expected - 4, statuses  # at most one in flight per lane per kill
    by_account = Counter(r["account"] for r in rows if r["status"] == "sent")
    # every sent row is on the platform; an uncertain row may or may not be
    assert len(site.posts(site.mastodon)) >= by_account["m"]
    assert len(site.posts(site.telegram)) >= by_account["t"]
    assert (
        len(site.posts(site.mastodon)) + len(site.posts(site.telegram))
        <= statuses["sent"] + statuses["uncertain"]
    )
    # Mastodon can be read back: a kill never leaves it uncertain
    assert not [r for r in rows if r["account"] == "m" and r["status"] == "uncertain"]


def quiet(at: datetime) -> str:
    return f"""\
name: quiet
title: Quiet
timezone: UTC
accounts: [t]
posts:
  - id: later
    at: {stamp(at)}
    text: "Much later"
"""


def test_live_edit_goes_out_broken_file_is_reported_and_sigterm_is_prompt(site: Site) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    site.campaign("quiet", quiet(now + timedelta(days=30)))
    daemon = site.run()
    wait_for(ready(site), why="ready")
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded (SIGHUP)" in site.log(), why="a reload on SIGHUP")

    # a post added while the daemon runs goes out
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    site.campaign(
        "quiet",
        quiet(now + timedelta(days=30))
        + f'  - id: added\n    at: {stamp(soon)}\n    text: "Added while running"\n',
    )
    wait_for(lambda: "Added while running" in site.posts(site.telegram), why="the added post")

    # a broken file is reported with path:line and holds its campaign; posting goes on
    site.campaign("broken", "name: broken\ntitle: B\ntimezone: Mars/Olympus\naccounts: [t]\n")
    wait_for(lambda: "broken.yaml:3" in site.log(), why="the problem reported")
    wait_for(lambda: "held: campaign broken" in site.log(), why="the campaign held")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    site.campaign(
        "quiet",
        quiet(now + timedelta(days=30))
        + f'  - id: added\n    at: {stamp(soon)}\n    text: "Added while running"\n'
        + f'  - id: more\n    at: {stamp(later)}\n    text: "Still posting"\n',
    )
    # the broken file holds only its own campaign: the other one's edit goes out
    wait_for(lambda: "Still posting" in site.posts(site.telegram), why="posting goes on")
    (site.root / "campaigns" / "broken.yaml").unlink()
    wait_for(lambda: "fixed: " in site.log(), why="the problem lifted")

    # a second daemon on the same SQLite ledger is refused
    second = site.cli("run")
    assert second.returncode == 1 and "another solidarity daemon" in second.stderr

    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(TIMEOUT) == 0
    assert time.monotonic() - started < 10
    assert Counter(site.posts(site.telegram)) == {"Added while running": 1, "Still posting": 1}
    assert "stopped" in site.log()
    assert site.env["T_TOKEN"].split(":")[1] not in site.log()  # the token is in Telegram's URLs


def test_the_example_campaign_runs_against_stand_ins_as_preview_shows(
    tmp_path: Path,
    standin_process: Callable[..., StandInProcess],  # noqa: F811
) -> None:
    from tests.standins.lexicon import LEXICONS

    if not LEXICONS.is_dir():
        pytest.skip(f"atproto lexicons not found at {LEXICONS}")
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "campaigns", tmp_path / "campaigns")
    shutil.copytree(repo / "templates", tmp_path / "templates")
    mastodon, bluesky, telegram = (standin_process(p) for p in ("mastodon", "bluesky", "telegram"))
    (tmp_path / "accounts.yaml").write_text(
        f"""\
hr-mastodon:
  platform: mastodon
  instance: {mastodon.url}
  access_token: ${{MASTODON_ACCESS_TOKEN}}
hr-bluesky:
  platform: bluesky
  service: {bluesky.url}
  handle: test.example
  app_password: ${{BLUESKY_APP_PASSWORD}}
hr-telegram:
  platform: telegram
  api: {telegram.url}
  bot_token: ${{TELEGRAM_BOT_TOKEN}}
  chat: "@test"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(
        MASTODON_ACCESS_TOKEN="test-access-token",
        BLUESKY_APP_PASSWORD="test-app-password",
        TELEGRAM_BOT_TOKEN=str(telegram.info["token"]),
        SOLIDARITY_NOW="2026-03-10T10:59:58+04:00",  # the daily spotlight is due at 11:00 Baku
    )
    preview = subprocess.run(
        [*command(), "preview", "--format", "json", "--days", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    expected = {
        (row["account"], row["text"])
        for row in map(json.loads, preview.stdout.splitlines())
        if row["post"] == "daily-spotlight" and row["scheduled_for"].startswith("2026-03-10T11:00")
    }
    assert len(expected) == 3
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [*command(), "run"], cwd=tmp_path, env=env, stderr=log.open("w"), text=True
    )
    try:
        wait_for(
            lambda: all(s.state()["posts"] for s in (mastodon, bluesky, telegram)),
            why="the spotlight on every account",
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(TIMEOUT) == 0, log.read_text()
    sent = {
        ("hr-mastodon", mastodon.state()["posts"][0]["text"]),
        ("hr-bluesky", bluesky.state()["posts"][0]["value"]["text"]),
        ("hr-telegram", telegram.state()["posts"][0]["text"]),
    }
    assert sent == expected
