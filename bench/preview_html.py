"""Benchmark the HTML preview: written by the CLI, then opened in Chromium.

Builds 50 campaigns x 3 daily posts x 5 accounts (a two-part thread with an image of
its own per campaign, a post with a link card, a short note) and, over 14 days
(10,500 cards), times:

- ``solidarity preview --format html -o FILE`` as a whole process, beside the floor
  ``--format json -o FILE`` of the same window (the same dry run, no page);
- opening the file in Debian's Chromium (Playwright, /usr/bin/chromium), from the
  navigation's start to the first frame painted after the load event, beside a blank
  page opened the same way in the same browser.

Run: python bench/preview_html.py [--campaigns 50] [--days 14] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.preview_sample import png  # noqa: E402

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
X_KEYS = ("api_key", "api_secret", "access_token", "access_token_secret")
ACCOUNTS = "".join(
    f"{name}:\n  platform: {platform}\n{extra}"
    for name, platform, extra in (
        ("m", "mastodon", "  instance: http://127.0.0.1:9\n  access_token: ${T}\n"),
        ("b", "bluesky", "  handle: a.example\n  app_password: ${T}\n"),
        ("t", "telegram", "  bot_token: ${T}\n  chat: '@c'\n"),
        ("x", "x", "".join(f"  {k}: ${{T}}\n" for k in X_KEYS)),
        ("d", "discord", "  webhook_url: ${T}\n"),
    )
)


def campaign(i: int) -> str:
    people = "".join(
        f"  - id: p{j}\n    name: Journalist Number{j} Ə{i}\n    detained_on: 2024-0{1 + j}-1{j}\n"
        for j in range(5)
    )
    return (
        f"name: bench-{i}\ntitle: Bench campaign {i}\ntimezone: Asia/Baku\nstarts: 2026-01-01\n"
        f"language: en\naccounts: [m, b, t, x, d]\nvars: {{url: 'https://example.org/r/{i}'}}\n"
        f"people:\n{people}posts:\n"
        "  - id: spotlight\n    cron: '0 11 * * *'\n    rotate: people\n"
        f"    media: {{path: img/c{i}.png, alt: 'Portrait for campaign {i}, drawn in blue'}}\n"
        "    thread:\n"
        '      - "{{ person.name }} is behind bars.\\nDay {{ person.detained_on | days_since }}."\n'
        "      - 'Write to the authorities: {{ vars.url }} #PressFreedom'\n"
        "  - id: report\n    cron: '0 15 * * *'\n    text: 'Read the report: {{ vars.url }}'\n"
        "    link_card: {url: 'https://example.org/r', title: The report, description: Read it}\n"
        "  - id: note\n    cron: '30 19 * * *'\n    text: 'Share their names. {{ vars.url }}'\n"
    )


def build(root: Path, campaigns: int) -> Path:
    (root / "campaigns" / "img").mkdir(parents=True)
    (root / "templates").mkdir()
    for i in range(campaigns):
        (root / "campaigns" / f"c{i:03d}.yaml").write_text(campaign(i), encoding="utf-8")
        (root / "campaigns" / "img" / f"c{i}.png").write_bytes(png(160, 100, (40, 90, 20 + i)))
    (root / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    return root


def write(root: Path, fmt: str, days: int, runs: int) -> tuple[list[float], Path]:
    exe = shutil.which("solidarity")
    command = [exe] if exe else [sys.executable, "-m", "scheduler"]
    out = root / f"preview.{fmt}"
    args = ["preview", "--from", "2026-03-02", "--days", str(days), "--format", fmt, "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")} | {"T": "x"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*command, *args], cwd=root, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times, out


RENDERED = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
  () => done(performance.now()))))"""


def open_times(browser: Any, path: Path, runs: int) -> list[float]:
    """Seconds from the navigation's start to the first frame after the load event."""
    times = []
    for _ in range(runs):
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(path.as_uri(), wait_until="load")
        times.append(page.evaluate(RENDERED) / 1000)
        page.close()
    return times


def show(
    label: str, times: list[float], floor: list[float] | None = None, target: str = ""
) -> None:
    med = statistics.median(times)
    ratio = f"  {med / statistics.median(floor):5.2f}x the floor" if floor else ""
    print(f"{label:<44} median {med:6.3f} s  best {min(times):6.3f} s{ratio}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = build(Path(tmp), args.campaigns)
        json_times, json_file = write(root, "json", args.days, args.runs)
        html_times, html_file = write(root, "html", args.days, args.runs)
        cards = sum(1 for _ in json_file.open(encoding="utf-8"))
        blank = root / "blank.html"
        blank.write_text("<!doctype html><title>blank</title><p>blank</p>\n", encoding="utf-8")
        print(f"{args.campaigns} campaigns, {args.days} days: {cards:,} cards, "
              f"page {html_file.stat().st_size / 1e6:.1f} MB (JSON {json_file.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
        show("preview --format json -o (floor)", json_times)
        show("preview --format html -o", html_times, json_times, "(target < 2 s)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            open_times(browser, blank, 1)  # warm the browser up
            blank_times = open_times(browser, blank, args.runs)
            page_times = open_times(browser, html_file, args.runs)
            browser.close()
        show("Chromium: blank page, load to rendered", blank_times)
        show("Chromium: the preview, load to rendered", page_times, None, "(target < 2 s)")


if __name__ == "__main__":
    main()
