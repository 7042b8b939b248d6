"""A corpus of broken files: each gets exit 1 and exact ``path:line`` messages, never a traceback.

Each folder under ``tests/broken/`` (except ``_base``) is laid over ``_base`` in a
temporary folder, and the real ``solidarity validate`` runs there. Its problem
lines must equal the folder's ``expected.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "broken"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))
PROBLEM_LINE = re.compile(r"^\S+:\d+: ")
FAKE_SECRETS = {
    "MASTODON_ACCESS_TOKEN": "test-mastodon-token",
    "BLUESKY_APP_PASSWORD": "test-bluesky-password",
    "TELEGRAM_BOT_TOKEN": "123:test-telegram-token",
}


def solidarity() -> list[str]:
    found = shutil.which("solidarity")
    return [found] if found else [sys.executable, "-m", "scheduler"]


def run_validate(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(FAKE_SECRETS)
    env["SOLIDARITY_NOW"] = "2026-06-01T00:00:00+00:00"
    return subprocess.run(
        [*solidarity(), "validate"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lay_out(case: str, tmp_path: Path) -> Path:
    shutil.copytree(CORPUS / "_base", tmp_path, dirs_exist_ok=True)
    shutil.copytree(CORPUS / case, tmp_path, dirs_exist_ok=True)
    (tmp_path / "expected.txt").unlink(missing_ok=True)
    return tmp_path


@pytest.mark.parametrize("case", CASES)
def test_broken_case_reports_every_problem_at_its_line(case: str, tmp_path: Path) -> None:
    result = run_validate(lay_out(case, tmp_path))
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 1, result.stderr
    found = [line for line in result.stderr.splitlines() if PROBLEM_LINE.match(line)]
    expected = (CORPUS / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert found == expected


def test_the_base_itself_is_valid(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "_base", tmp_path, dirs_exist_ok=True)
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    (campaigns / "ok.yaml").write_text(
        "name: ok\ntitle: OK\ntimezone: Asia/Baku\naccounts: [hr-mastodon]\n"
        "posts:\n  - id: p\n    cron: '0 11 * * *'\n    template: hello\n",
        encoding="utf-8",
    )
    result = run_validate(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
