"""The real ``solidarity`` command on the example campaign and on small projects."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_project

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = shutil.which("solidarity")
    base = [command] if command else [sys.executable, "-m", "scheduler"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    for var in ("MASTODON_ACCESS_TOKEN", "BLUESKY_APP_PASSWORD", "TELEGRAM_BOT_TOKEN"):
        clean.pop(var, None)
    clean.update(env or {})
    return subprocess.run(
        [*base, *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def json_rows(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example project, so that no test writes into the repository."""
    for name in ("campaigns", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "accounts.yaml", tmp_path / "accounts.yaml")
    return tmp_path


def test_validate_example_without_secrets(example: Path) -> None:
    result = run("validate", cwd=example)
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout
    # missing secrets are warnings naming the variable, never errors
    assert "warning: hr-mastodon.access_token needs ${MASTODON_ACCESS_TOKEN}" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_example_json_has_spec_fields(example: Path) -> None:
    result = run("preview", "--from", "2025-12-01", "--days", "7", "--format", "json", cwd=example)
    assert result.returncode == 0, result.stderr
    rows = json_rows(result.stdout)
    assert rows
    for row in rows:
        for key in (
            "campaign",
            "post",
            "account",
            "platform",
            "scheduled_for",
            "person",
            "text",
            "length",
            "limit",
            "status",
            "warnings",
        ):
            assert key in row
    launch = [r for r in rows if r["post"] == "report-launch"]
    assert {r["account"] for r in launch} == {"hr-mastodon", "hr-bluesky", "hr-telegram"}
    assert launch[0]["scheduled_for"] == "2025-12-03T10:00:00+04:00"
    spotlight = [
        r for r in rows if r["post"] == "daily-spotlight" and r["account"] == "hr-mastodon"
    ]
    assert [r["person"] for r in spotlight[:5]] == [
        "sevinj",
        "nargiz",
        "fatima",
        "ulviyya",
        "sevinj",
    ]
    first = spotlight[0]
    assert "day 741" in str(first["text"])  # 2023-11-21 to 2025-12-01
    assert all(r["status"] == "ok" for r in rows)
    assert all(int(str(r["length"])) <= int(str(r["limit"])) for r in rows)


def test_preview_table_fits_80_columns_and_groups_by_day(example: Path) -> None:
    result = run("preview", "--from", "2025-12-01", "--days", "3", cwd=example)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.strip().startswith("Mon 01 Dec 2025") for line in lines)
    assert any("daily-spotlight → hr-bluesky (bluesky)" in line for line in lines)
    assert "Sevinj Vagifgizi" in result.stdout


def test_preview_defaults_to_now_and_14_days(example: Path) -> None:
    result = run(
        "preview",
        "--format",
        "json",
        cwd=example,
        env={"SOLIDARITY_NOW": "2026-01-10T00:00:00+00:00"},
    )
    rows = json_rows(result.stdout)
    days = sorted({str(r["scheduled_for"])[:10] for r in rows})
    assert days[0] == "2026-01-10" and days[-1] == "2026-01-23"


def test_preview_filters_by_campaign_and_account(example: Path) -> None:
    result = run(
        "preview",
        "--from",
        "2025-12-01",
        "--account",
        "hr-bluesky",
        "--campaign",
        "newsroom-to-cell",
        "--format",
        "json",
        cwd=example,
    )
    rows = json_rows(result.stdout)
    assert rows and {r["account"] for r in rows} == {"hr-bluesky"}


def test_preview_unknown_campaign_is_a_usage_error(example: Path) -> None:
    result = run("preview", "--campaign", "nope", cwd=example)
    assert result.returncode == 2
    assert "no campaign 'nope'" in result.stderr


def test_unknown_option_is_a_usage_error(example: Path) -> None:
    assert run("preview", "--dayz", "3", cwd=example).returncode == 2


def test_preview_html_to_file_and_no_ledger_written(example: Path) -> None:
    out = example / "preview.html"
    result = run("preview", "--from", "2025-12-01", "--format", "html", "-o", str(out), cwd=example)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "Fatimə Movlamli" in page
    assert not list(example.glob("*.db")), "preview must not write the ledger"


def test_global_options_before_or_after_the_command(tmp_path: Path, example: Path) -> None:
    before = run(
        "--campaigns",
        str(example / "campaigns"),
        "--templates",
        str(example / "templates"),
        "--accounts",
        str(example / "accounts.yaml"),
        "preview",
        "--from",
        "2025-12-01",
        "--days",
        "1",
        "--format",
        "json",
        cwd=tmp_path,
    )
    after = run(
        "preview",
        "--campaigns",
        str(example / "campaigns"),
        "--templates",
        str(example / "templates"),
        "--accounts",
        str(example / "accounts.yaml"),
        "--from",
        "2025-12-01",
        "--days",
        "1",
        "--format",
        "json",
        cwd=tmp_path,
    )
    via_env = run(
        "preview",
        "--from",
        "2025-12-01",
        "--days",
        "1",
        "--format",
        "json",
        cwd=tmp_path,
        env={
            "SOLIDARITY_CAMPAIGNS": str(example / "campaigns"),
            "SOLIDARITY_TEMPLATES": str(example / "templates"),
            "SOLIDARITY_ACCOUNTS": str(example / "accounts.yaml"),
        },
    )
    assert before.stdout and before.stdout == after.stdout == via_env.stdout


def test_paused_campaign_preview_says_so(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        "name: c\ntitle: C\ntimezone: Asia/Baku\npaused: true\naccounts: [hr-mastodon]\nposts:\n  - id: p\n    cron: '0 11 * * *'\n    text: hello\n",
    )
    result = run("preview", "--from", "2026-01-01", "--days", "2", "--format", "json", cwd=tmp_path)
    assert {r["status"] for r in json_rows(result.stdout)} == {"paused"}
    table = run("preview", "--from", "2026-01-01", "--days", "2", cwd=tmp_path)
    assert "PAUSED" in table.stdout


def test_too_long_and_overflow_in_preview(tmp_path: Path) -> None:
    long_text = " ".join(["Journalists are behind bars for telling the truth."] * 8)
    write_project(
        tmp_path,
        f"name: c\ntitle: C\ntimezone: Asia/Baku\naccounts: [hr-bluesky]\nposts:\n  - id: p\n    at: 2026-01-01 10:00\n    text: {long_text}\n  - id: q\n    at: 2026-01-01 11:00\n    text: {long_text}\n    overflow: thread\n  - id: r\n    at: 2026-01-01 12:00\n    text: {long_text}\n    overflow: truncate\n",
    )
    result = run("preview", "--from", "2026-01-01", "--days", "1", "--format", "json", cwd=tmp_path)
    rows = {r["post"]: r for r in json_rows(result.stdout)}
    assert rows["p"]["status"] == "too_long" and rows["p"]["limit"] == 300
    assert rows["q"]["status"] == "ok" and len(rows["q"]["parts"]) == 2  # type: ignore[arg-type]
    assert rows["r"]["status"] == "ok" and str(rows["r"]["text"]).endswith("…")
    check = run("validate", cwd=tmp_path, env={"SOLIDARITY_NOW": "2025-12-15T00:00:00+00:00"})
    assert check.returncode == 1
    assert "campaigns/c.yaml:8: post 'p' is too long for hr-bluesky (bluesky)" in check.stderr
    assert "'q'" not in check.stderr and "'r'" not in check.stderr


def test_python_dash_m_scheduler_works(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "preview" in result.stdout


def test_dotenv_supplies_secrets_and_the_environment_wins(example: Path) -> None:
    (example / ".env").write_text(
        "MASTODON_ACCESS_TOKEN=from-dotenv\nBLUESKY_APP_PASSWORD=\n", encoding="utf-8"
    )
    result = run("validate", cwd=example, env={"TELEGRAM_BOT_TOKEN": "123:from-env"})
    assert result.returncode == 0, result.stderr
    assert "MASTODON_ACCESS_TOKEN" not in result.stderr  # set by .env
    assert "TELEGRAM_BOT_TOKEN" not in result.stderr  # set by the environment
    assert "${BLUESKY_APP_PASSWORD}" in result.stderr  # empty in .env counts as unset
    assert "from-dotenv" not in result.stderr + result.stdout


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    from scheduler.config import environment

    env_file = tmp_path / ".env"
    env_file.write_text("A=from-file\nB=only-in-file\nC=\n", encoding="utf-8")
    merged = environment(env_file, base={"A": "real", "D": ""})
    assert merged["A"] == "real"
    assert merged["B"] == "only-in-file"
    assert "C" not in merged and "D" not in merged


def test_secret_values_never_printed(example: Path) -> None:
    secrets = {
        "MASTODON_ACCESS_TOKEN": "s3cr3t-mastodon",
        "BLUESKY_APP_PASSWORD": "s3cr3t-bsky",
        "TELEGRAM_BOT_TOKEN": "123:s3cr3t-tg",
    }
    for args in (
        ["validate"],
        ["preview", "--from", "2025-12-01", "--format", "json"],
        ["preview", "--from", "2025-12-01"],
    ):
        result = run(*args, cwd=example, env=secrets)
        for value in secrets.values():
            assert value not in result.stdout + result.stderr


def test_history_since_yesterday_and_a_bad_since_names_the_option(tmp_path: Path) -> None:
    ok = run("history", "--since", "yesterday", cwd=tmp_path)
    assert ok.returncode == 0 and "Nothing in the ledger yet." in ok.stdout
    bad = run("history", "--since", "nonsense", cwd=tmp_path)
    assert bad.returncode == 2 and "Invalid value for --since" in bad.stderr


def test_history_of_a_campaign_no_one_knows_is_a_usage_error_listing_the_campaigns() -> None:
    result = run("history", "--campaign", "nope")
    assert result.returncode == 2
    assert "no campaign 'nope'; campaigns: newsroom-to-cell" in result.stderr
