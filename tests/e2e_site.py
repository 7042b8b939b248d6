"""A project folder with stand-ins on 127.0.0.1, and the real `solidarity` processes run on it.

Shared by the end-to-end tests that start the daemon: every post's text is written as
``campaign|post|scheduled_for|person`` so that a test can tell from what a stand-in
received which occurrence it was. Every secret here is a fake test value.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from tests.standins.process import StandInProcess

TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "30"))
M_TOKEN = "test-access-token"  # what the Mastodon stand-in accepts
T_TOKEN = "123456789:AAStandInTokenForSolidarityTests00"


def command() -> list[str]:
    exe = shutil.which("solidarity")
    return [exe] if exe else [sys.executable, "-m", "scheduler"]


def stamp(moment: datetime) -> str:
    """Write an instant as a campaign file takes it (UTC campaigns in these tests)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def marker(campaign: str, post: str, *, person: bool = True) -> str:
    """Return the text of a post that says which occurrence it is (and whom it features)."""
    who = "{{ person.id }}" if person else "-"
    return f"{campaign}|{post}|{{{{ scheduled_for.isoformat() }}}}|{who}"


class Arrival(NamedTuple):
    """One post a stand-in received, read back from its marker text."""

    campaign: str
    post: str
    scheduled_for: datetime
    person: str
    account: str  # the stand-in's platform: mastodon or telegram


def wait_for(what: Callable[[], bool], timeout: float = TIMEOUT, why: str = "") -> None:
    """Poll until ``what()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {why or what}")
        time.sleep(0.05)


class Site:
    """A project folder, its stand-ins, and the daemon processes run on it."""

    def __init__(
        self,
        root: Path,
        start: Callable[..., StandInProcess],
        *,
        mastodon: Iterable[str] = ("m",),
        telegram: Iterable[str] = ("t",),
        latency: float = 0.0,
    ) -> None:
        self.root = root
        options = ("--latency", str(latency)) if latency else ()
        self.mastodon = start("mastodon", *options)
        self.telegram = start("telegram", *options)
        (root / "campaigns").mkdir()
        (root / "templates").mkdir()
        entries = [
            f"{name}:\n  platform: mastodon\n  instance: {self.mastodon.url}\n"
            f"  access_token: ${{M_TOKEN}}\n  pace: 0\n"
            for name in mastodon
        ] + [
            f"{name}:\n  platform: telegram\n  api: {self.telegram.url}\n"
            f'  bot_token: ${{T_TOKEN}}\n  chat: "@test"\n  pace: 0\n'
            for name in telegram
        ]
        (root / "accounts.yaml").write_text("".join(entries), encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
        self.env.update(
            M_TOKEN=M_TOKEN,
            T_TOKEN=str(self.telegram.info.get("token", T_TOKEN)),
            SOLIDARITY_WORKERS="4",
        )
        self.logs: list[Path] = []
        self.daemons: list[subprocess.Popen[str]] = []
        self.started: list[float] = []  # time.monotonic() at each Popen

    # -- the user's files, saved as editors save them: never half a file --------------
    def _save(self, path: Path, body: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, path)

    def campaign(self, name: str, body: str) -> None:
        self._save(self.root / "campaigns" / f"{name}.yaml", body)

    def template(self, name: str, body: str) -> None:
        self._save(self.root / "templates" / f"{name}.j2", body)

    # -- processes ----------------------------------------------------------------------
    def run(self, *args: str, now: str | None = None) -> subprocess.Popen[str]:
        log = self.root / f"daemon-{len(self.logs)}.log"
        self.logs.append(log)
        extra = ("--now", now) if now else ()
        self.started.append(time.monotonic())
        daemon = subprocess.Popen(
            [*command(), *extra, "run", *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
        self.daemons.append(daemon)
        return daemon

    def cli(
        self, *args: str, now: str | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        extra = ("--now", now) if now else ()
        return subprocess.run(
            [*command(), *extra, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ready(self, i: int = -1, timeout: float = TIMEOUT) -> None:
        """Wait until daemon ``i`` logged that it is ready (failing early if it exited)."""

        def up() -> bool:
            if self.daemons[i].poll() is not None:
                raise AssertionError(
                    f"the daemon exited {self.daemons[i].returncode}:\n{self.log(i)}"
                )
            return "ready in" in self.log(i)

        wait_for(up, timeout, "the daemon to be ready")

    def stop(self) -> None:
        """Stop every daemon still running: SIGTERM, then SIGKILL."""
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(10)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait(10)

    def log(self, i: int = -1) -> str:
        return self.logs[i].read_text(encoding="utf-8")

    def tail(self, lines: int = 30) -> str:
        """Return the end of the last daemon's log, for a failing assertion's message."""
        if not self.logs:
            return "(no daemon was started)"
        return "\n".join(["daemon log (end):", *self.log().splitlines()[-lines:]])

    # -- what arrived, and what the ledger says -------------------------------------------
    def texts(self, standin: StandInProcess) -> list[str]:
        return [str(p.get("text", "")) for p in standin.state()["posts"]]

    def arrivals(self) -> list[Arrival]:
        found = []
        for standin in (self.mastodon, self.telegram):
            for text in self.texts(standin):
                parts = text.split("|")
                if len(parts) == 4:
                    when = datetime.fromisoformat(parts[2])
                    found.append(
                        Arrival(parts[0], parts[1], when, parts[3], standin.info["platform"])
                    )
        return found

    def count(self, campaign: str | None = None, post: str | None = None) -> int:
        return sum(
            1
            for a in self.arrivals()
            if (campaign is None or a.campaign == campaign) and (post is None or a.post == post)
        )

    def rows(self) -> list[dict[str, Any]]:
        result = self.cli("history", "--format", "json")
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def holds(self) -> list[dict[str, Any]]:
        result = self.cli("holds", "--format", "json")
        assert result.returncode == 0, f"holds exited {result.returncode}: {result.stderr}"
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
