"""Benchmark: validate a rotating `every: 1m` post whose campaign started in 2000 (issue 10).

Counting a rotating post's occurrences one by one since its campaign's start took
minutes for such a post; it is now arithmetic (every) or by whole months (cron).
Prints the median of several whole-process `solidarity validate --days 1` runs of
that campaign beside the floor measured in the same run: the same campaign
starting yesterday (nothing to count).

Run: python bench/rotation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CAMPAIGN = """\
name: c
title: C
timezone: Europe/London
starts: {starts}
accounts: [m]
people:
  - id: a
    name: A
  - id: b
    name: B
posts:
  - id: p
    every: 1m
    rotate: people
    text: "Free {{{{ person.name }}}}"
  - id: q
    cron: "*/5 * * * *"
    rotate: people
    text: "Free {{{{ person.name }}}}"
"""


def project(root: Path, starts: str) -> Path:
    (root / "campaigns").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "accounts.yaml").write_text(
        "m:\n  platform: mastodon\n  instance: http://127.0.0.1:9\n  access_token: ${M}\n"
    )
    (root / "campaigns" / "c.yaml").write_text(CAMPAIGN.format(starts=starts))
    return root


def validate(root: Path) -> float:
    exe = shutil.which("solidarity")
    command = [exe] if exe else [sys.executable, "-m", "scheduler"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "validate", "--days", "1"], cwd=root, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"validate failed:\n{result.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with tempfile.TemporaryDirectory() as folder:
        old = project(Path(folder) / "since-2000", "2000-01-01")
        new = project(Path(folder) / "since-yesterday", yesterday)
        since, floor = [], []
        for _ in range(args.runs):  # paired, alternating: the machine is noisy
            since.append(validate(old))
            floor.append(validate(new))
    a, b = statistics.median(since), statistics.median(floor)
    print(f"validate, rotating every 1m + cron */5 since 2000: median {a:.2f} s ({args.runs} runs)")
    print(f"floor, the same campaign starting yesterday:        median {b:.2f} s")
    print(f"difference {a - b:+.2f} s; target: under 1 s in all -> {'met' if a < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
