"""The real ``solidarity history`` reads the ledger in pages: nothing repeated, nothing lost."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from scheduler import reports
from scheduler.ledger import TABLE, Ledger

ROWS = 5000
PAGE = "7"  # rows a page: 715 pages, many edges inside runs of equal scheduled_for
STATUSES = ("sent", "failed", "missed", "skipped", "uncertain", "held")


def solidarity(
    folder: Path, *args: str, url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    environ.update(env)
    if url is not None:
        environ["SOLIDARITY_DATABASE_URL"] = url
    return subprocess.run(
        [*base, *args],
        cwd=folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def fill(url: str, count: int) -> None:
    """Write ``count`` rows, inserted out of order, most sharing their scheduled_for with others."""
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    rows = []
    for n in range(count):
        # runs of 1 to 13 rows at one instant; later ids often scheduled earlier
        at = start + timedelta(minutes=(n * 7919) % (count // 5 + 1))
        rows.append(
            {
                "key": f"c/p/a{n}/{at:%Y-%m-%dT%H:%M}Z/-",
                "campaign": "c" if n % 4 else "d",
                "post": "p",
                "account": f"a{n % 3}",
                "platform": "mastodon",
                "person": None,
                "scheduled_for": at,
                "status": STATUSES[n % len(STATUSES)],
                "parts": [f"Azadlıq {n}"],
                "remote_id": None,
                "remote_url": f"https://m.example/@hr/{n}" if n % 6 == 0 else None,
                "remote_ids": None,
                "attempts": 1,
                "error": "HTTP 422" if n % 6 == 1 else None,
                "reason": "a reason" if n % 6 > 1 else None,
                "owner": "",
                "created_at": at,
                "updated_at": at,
                "sent_at": at if n % 6 == 0 else None,
                "next_attempt_at": None,
            }
        )
    ledger = Ledger.open(url)
    with ledger.engine.begin() as connection:
        connection.execute(insert(TABLE), rows)
    ledger.close()


@pytest.fixture
def big(tmp_path: Path, ledger_url: str) -> tuple[Path, str]:
    """A folder whose ledger (SQLite, then PostgreSQL: SOLIDARITY_DATABASE_URL) has 5000 rows."""
    fill(ledger_url, ROWS)
    return tmp_path, ledger_url


def keys(stdout: str) -> list[str]:
    return [json.loads(line)["key"] for line in stdout.splitlines()]


def test_5000_rows_in_pages_of_7_come_out_in_order_each_once(big: tuple[Path, str]) -> None:
    folder, url = big
    ledger = Ledger.open(url)
    everything = ledger.history()
    ledger.close()
    assert len({e.scheduled_for for e in everything}) < ROWS / 4  # plenty of ties

    paged = solidarity(
        folder, "history", "--format", "json", url=url, SOLIDARITY_HISTORY_PAGE_SIZE=PAGE
    )
    whole = solidarity(folder, "history", "--format", "json", url=url)  # pages of 1000

    assert paged.returncode == 0, paged.stderr
    assert paged.stdout == reports.json_lines(everything, {})
    assert keys(paged.stdout) == [e.key for e in everything]
    assert len(set(keys(paged.stdout))) == ROWS
    assert whole.stdout == paged.stdout


def test_the_table_in_pages_is_the_table_of_every_row(big: tuple[Path, str]) -> None:
    folder, url = big
    ledger = Ledger.open(url)
    rows = ledger.history(campaign="c")
    ledger.close()
    paged = solidarity(
        folder, "history", "--campaign", "c", url=url, SOLIDARITY_HISTORY_PAGE_SIZE=PAGE
    )
    assert paged.returncode == 0, paged.stderr
    assert len(rows) == ROWS * 3 // 4
    assert paged.stdout == reports.table(rows, {})  # one count line, of every page's rows
    assert paged.stdout.count(" rows: ") == 1


def test_limit_keeps_the_newest_rows_oldest_first(big: tuple[Path, str]) -> None:
    folder, url = big
    ledger = Ledger.open(url)
    everything = ledger.history()
    since = everything[ROWS // 2].scheduled_for
    later = ledger.history(since=since)
    ledger.close()
    for limit in (1, 7, 8, 999, ROWS, ROWS + 1):
        result = solidarity(
            folder,
            "history",
            "--format",
            "json",
            "--limit",
            str(limit),
            url=url,
            SOLIDARITY_HISTORY_PAGE_SIZE=PAGE,
        )
        assert result.returncode == 0, result.stderr
        assert keys(result.stdout) == [e.key for e in everything[-limit:]], limit
    both = solidarity(
        folder,
        "history",
        "--format",
        "json",
        "--limit",
        "20",
        "--since",
        since.isoformat(),
        url=url,
        SOLIDARITY_HISTORY_PAGE_SIZE=PAGE,
    )
    assert keys(both.stdout) == [e.key for e in later[-20:]]
    assert solidarity(folder, "history", "--limit", "0", url=url).returncode == 2


def test_a_bad_page_size_is_a_clear_error(tmp_path: Path) -> None:
    fill(f"sqlite:///{tmp_path / 'solidarity.db'}", 3)
    result = solidarity(tmp_path, "history", SOLIDARITY_HISTORY_PAGE_SIZE="lots")
    assert result.returncode == 2 and "SOLIDARITY_HISTORY_PAGE_SIZE" in result.stderr


def on_a_terminal(folder: Path, *args: str, **env: str) -> int:
    """Run the command with its standard output on a pseudo-terminal; return its exit code."""
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    environ.update(env)
    main, other = pty.openpty()
    process = subprocess.Popen(
        [*base, *args], cwd=folder, env=environ, stdout=other, stderr=subprocess.DEVNULL
    )
    os.close(other)
    while True:  # drain the terminal, or the command would block on a full one
        try:
            if not os.read(main, 65536):
                break
        except OSError:  # EIO: the other side is closed
            break
    os.close(main)
    return process.wait(timeout=60)


def test_on_a_terminal_the_table_goes_through_the_pager(tmp_path: Path) -> None:
    fill(f"sqlite:///{tmp_path / 'solidarity.db'}", 30)
    paged = tmp_path / "paged.txt"
    env = {"PAGER": f"cat > {paged}", "NO_COLOR": "1", "COLUMNS": "100"}
    assert on_a_terminal(tmp_path, "history", SOLIDARITY_HISTORY_PAGE_SIZE="4", **env) == 0
    text = paged.read_text(encoding="utf-8")
    assert text.count("/p → a") == 30 and text.endswith(
        "30 rows: 5 failed, 5 held, 5 missed, 5 sent, 5 skipped, 5 uncertain\n"
    )
    paged.unlink()
    assert on_a_terminal(tmp_path, "history", "--format", "json", **env) == 0
    assert not paged.exists()  # JSON is never paged
    assert on_a_terminal(tmp_path, "history", **{**env, "PAGER": "cat"}) == 0
    assert not paged.exists()
