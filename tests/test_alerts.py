"""Alerts reach a person: one message per kind of trouble, never a secret, never in the way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from scheduler.alerts import Alerts
from scheduler.ledger import Entry
from scheduler.redact import REDACTOR
from tests.standins.fixtures import telegram_standin  # noqa: F401 - a pytest fixture
from tests.standins.telegram import Telegram

NOW = "2026-03-10T12:05:00+04:00"


def entry(i: int, status: str = "failed", error: str = "mastodon (HTTP 422): too long") -> Entry:
    from datetime import UTC, datetime

    t = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    return Entry(
        i, f"c/p/m/2026-03-10T08:00:00Z/p{i}", "c", "p", "m", "mastodon", f"p{i}", t, status,
        (), None, None, 1, error, None, t, t, None,
    )  # fmt: skip


class Receiver:
    """Apprise's json:// target on 127.0.0.1: every alert it receives."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        received = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_a_burst_of_failures_is_one_message_with_the_count_and_the_first_few() -> None:
    sent: list[tuple[str, str]] = []
    alerts = Alerts(lambda title, body: sent.append((title, body)) or True, gather=60)
    for i in range(12):
        alerts.row(entry(i))
    alerts.row(entry(99, "sent"))  # not trouble
    alerts.flush()
    ((title, body),) = sent
    assert title == "solidarity: 12 posts failed"
    assert body.count("\n- c / p featuring") == 4 and body.startswith("- c / p featuring p0")
    assert "and 7 more" in body and "too long" in body


def test_kinds_go_in_messages_of_their_own() -> None:
    sent: list[tuple[str, str]] = []
    alerts = Alerts(lambda title, body: sent.append((title, body)) or True, gather=60)
    alerts.row(entry(1, "uncertain", "telegram (HTTP 502): Bad Gateway"))
    alerts.row(entry(2, "failed", "mastodon (HTTP 401): The access token is invalid"))
    alerts.flush()
    titles = sorted(t for t, _ in sent)
    assert titles == [
        "solidarity: a post may or may not have gone out",
        "solidarity: an account's credentials were refused",
    ]
    assert any("solidarity resolve" in b for _, b in sent)


def test_an_alert_never_carries_a_secret_and_a_failed_one_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    REDACTOR.set_secrets(["s3cr3t-token-value"])
    try:
        sent: list[str] = []
        alerts = Alerts(lambda _t, body: sent.append(body) or True, gather=60)
        alerts.row(entry(1, error="proxy page quoting Authorization: Bearer s3cr3t-token-value"))
        alerts.flush()
        assert sent and "s3cr3t-token-value" not in sent[0]

        def broken(_title: str, _body: str) -> bool:
            raise OSError("no route to the alert service")

        failing = Alerts(broken, gather=60)
        failing.row(entry(2))
        failing.flush()  # logged, not raised
        assert any("could not be delivered" in r.getMessage() for r in caplog.records)
    finally:
        REDACTOR.set_secrets([])


def solidarity(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    return subprocess.run(
        [*base, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def site(tmp_path: Path, telegram: Telegram, token: str, receiver: Receiver) -> dict[str, str]:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "c.yaml").write_text(
        "name: c\ntitle: C\ntimezone: Asia/Baku\naccounts: [t]\n"
        "posts:\n  - id: p\n    cron: '0 12 * * *'\n    text: 'Journalism is not a crime.'\n",
        encoding="utf-8",
    )
    (tmp_path / "accounts.yaml").write_text(
        f"t:\n  platform: telegram\n  api: {telegram.url}\n  bot_token: ${{T_TOKEN}}\n"
        '  chat: "@test"\n  pace: 0\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(T_TOKEN=token, SOLIDARITY_NOW=NOW, SOLIDARITY_ALERTS=receiver.url)
    return env


def test_run_once_alerts_a_refused_token_without_the_token(
    tmp_path: Path,
    telegram_standin: Telegram,  # noqa: F811
    receiver: Receiver,
) -> None:
    wrong = "123456789:AAWrongTokenWrongTokenWrongToken000"
    env = site(tmp_path, telegram_standin, wrong, receiver)
    result = solidarity(tmp_path, env, "run", "--once")
    assert result.returncode == 1, result.stdout + result.stderr
    (alert,) = receiver.alerts
    assert alert["title"] == "solidarity: an account's credentials were refused"
    assert "c / p → t" in alert["message"] and "Unauthorized" in alert["message"]
    assert wrong not in json.dumps(receiver.alerts) and wrong.split(":")[1] not in json.dumps(
        receiver.alerts
    )


def test_run_once_alerts_a_file_problem_with_its_line(
    tmp_path: Path,
    telegram_standin: Telegram,  # noqa: F811
    receiver: Receiver,
) -> None:
    env = site(tmp_path, telegram_standin, telegram_standin.token, receiver)
    (tmp_path / "campaigns" / "c.yaml").write_text(
        "name: c\ntitle: C\ntimezone: Asia/Baku\naccounts: [t]\ncolour: red\n"
        "posts:\n  - id: p\n    cron: '0 12 * * *'\n    text: 'x'\n",
        encoding="utf-8",
    )
    result = solidarity(tmp_path, env, "run", "--once")
    assert result.returncode == 1
    (alert,) = receiver.alerts
    assert alert["title"] == "solidarity: a file problem holds posts"
    assert "campaigns/c.yaml:5" in alert["message"] and "colour" in alert["message"]


def test_alerts_test_sends_one(tmp_path: Path, receiver: Receiver) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env["SOLIDARITY_ALERTS"] = receiver.url
    result = solidarity(tmp_path, env, "alerts", "test")
    assert result.returncode == 0, result.stderr
    assert [a["title"] for a in receiver.alerts] == ["solidarity: a test alert"]
    env["SOLIDARITY_ALERTS"] = "json://127.0.0.1:9/nothing-listens-here"
    assert solidarity(tmp_path, env, "alerts", "test").returncode == 1


def test_the_daemon_alerts_a_file_problem_and_its_fix(
    tmp_path: Path,
    telegram_standin: Telegram,  # noqa: F811
    receiver: Receiver,
) -> None:
    import time

    env = site(tmp_path, telegram_standin, telegram_standin.token, receiver)
    env.pop("SOLIDARITY_NOW")
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([*base, "run"], cwd=tmp_path, env=env, stdout=log, stderr=log)

    def wait_for(title: str) -> None:
        deadline = time.monotonic() + 30
        while not any(a["title"] == title for a in receiver.alerts):
            assert time.monotonic() < deadline, (
                receiver.alerts,
                (tmp_path / "daemon.log").read_text(),
            )
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
            time.sleep(0.1)

    try:
        deadline = time.monotonic() + 30
        while "ready in" not in (tmp_path / "daemon.log").read_text():
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.1)
        good = (tmp_path / "campaigns" / "c.yaml").read_text()
        broken = tmp_path / "campaigns" / "c.tmp"
        broken.write_text(good.replace("timezone: Asia/Baku", "timezone: Mars/Olympus"))
        broken.replace(tmp_path / "campaigns" / "c.yaml")
        wait_for("solidarity: a file problem holds posts")
        fixed = tmp_path / "campaigns" / "c.tmp"
        fixed.write_text(good)
        fixed.replace(tmp_path / "campaigns" / "c.yaml")
        wait_for("solidarity: a file problem is fixed")
        held = next(a for a in receiver.alerts if "holds" in a["title"])
        assert "campaigns/c.yaml:3" in held["message"] and "Mars/Olympus" in held["message"]
    finally:
        daemon.terminate()
        assert daemon.wait(15) == 0
        log.close()


def test_an_account_that_posts_nothing_for_its_silence_alert_is_told_once() -> None:
    from datetime import UTC, datetime, timedelta

    from scheduler.silence import Silence

    t = datetime(2026, 7, 1, 10, tzinfo=UTC)
    watch = Silence()
    watch.sent("m", t)
    watch.due("m", t + timedelta(hours=1))  # due, and never sent again
    watch.due("t", t + timedelta(hours=1))
    watch.sent("t", t + timedelta(hours=1))  # this one posted
    windows = {"m": timedelta(hours=24), "t": timedelta(hours=24)}
    assert watch.check(t + timedelta(hours=20), windows) == []
    assert watch.check(t + timedelta(hours=26), windows) == [("m", t, 1)]
    assert watch.check(t + timedelta(hours=30), windows) == []  # told once
    watch.sent("m", t + timedelta(hours=31))
    watch.due("m", t + timedelta(hours=32))
    assert watch.check(t + timedelta(hours=57), windows) == [("m", t + timedelta(hours=31), 1)]


def test_the_daemon_alerts_an_account_whose_posts_keep_failing(tmp_path: Path) -> None:
    import httpx

    from scheduler.holdbook import HoldBook
    from tests.test_daemon import DAILY, World, utc

    w = World(tmp_path, DAILY, utc(2026, 7, 1, 5, 0))
    sent: list[tuple[str, str]] = []
    from scheduler.daemon import Daemon, ManualClockwork

    w.clockwork = ManualClockwork(w.clock, w.clock.sleep)
    real = w.platforms.__call__

    def refuse_telegram(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sendMessage"):
            return httpx.Response(
                400,
                json={"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
            )
        return real(request)

    d = Daemon(
        w.load(),
        w.ledger,
        w.clockwork,
        transport=httpx.MockTransport(refuse_telegram),
        workers=0,
        owner="test:1",
        holds=HoldBook(None),
        alerts=Alerts(lambda title, body: sent.append((title, body)) or True, gather=3600),
    )
    d.start()
    w.run_until(utc(2026, 7, 2, 6, 30))  # two daily posts failed on Telegram; Mastodon posted
    d.alerts.flush()
    silent = [body for title, body in sent if "silent" in title]
    assert len(silent) == 1 and "hr-telegram has posted nothing" in silent[0]
    assert "hr-mastodon" not in silent[0]


def test_run_once_alerts_an_uncertain_post(
    tmp_path: Path,
    telegram_standin: Telegram,  # noqa: F811
    receiver: Receiver,
) -> None:
    env = site(tmp_path, telegram_standin, telegram_standin.token, receiver)
    telegram_standin.fail_next(status=502, after=True)  # created, then a 502: unknowable
    result = solidarity(tmp_path, env, "run", "--once")
    assert result.returncode == 1
    (alert,) = receiver.alerts
    assert alert["title"] == "solidarity: a post may or may not have gone out"
    assert "c / p → t" in alert["message"] and "solidarity resolve" in alert["message"]


def test_run_once_alerts_a_failed_post_in_the_platforms_words(
    tmp_path: Path,
    telegram_standin: Telegram,  # noqa: F811
    receiver: Receiver,
) -> None:
    env = site(tmp_path, telegram_standin, telegram_standin.token, receiver)
    (tmp_path / "accounts.yaml").write_text(
        (tmp_path / "accounts.yaml").read_text().replace('"@test"', '"@nowhere"'),
        encoding="utf-8",
    )
    result = solidarity(tmp_path, env, "run", "--once")
    assert result.returncode == 1
    (alert,) = receiver.alerts
    assert alert["title"] == "solidarity: a post failed", alert
    assert "chat not found" in alert["message"]
