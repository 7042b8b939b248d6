"""Benchmark the dry run, the hot path of campaign staff's day.

Builds 50 campaigns x 3 daily posts x 5 accounts over 365 days (about 270,000
rendered occurrences), times ``dryrun.rows`` (plan + render + measure), and, as
the floor, the same texts rendered by a bare Jinja2 loop over precomputed
contexts. Then times ``solidarity preview`` of the example campaign (14 days) as
a whole process, interpreter start included.

Run: python bench/preview.py [--campaigns 50] [--days 365]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import jinja2

from scheduler import dryrun
from scheduler.config import Settings
from scheduler.project import load_project

ROOT = Path(__file__).resolve().parents[1]

ACCOUNTS = """\
m:
  platform: mastodon
  access_token: ${T}
b:
  platform: bluesky
  handle: a.example
  app_password: ${T}
t:
  platform: telegram
  bot_token: ${T}
  chat: "@c"
x:
  platform: x
  api_key: ${T}
  api_secret: ${T}
  access_token: ${T}
  access_token_secret: ${T}
d:
  platform: discord
  webhook_url: ${T}
"""

SPOTLIGHT = (
    "{{ person.name }}, {{ person.vars.role }}, is behind bars in {{ vars.country }} for doing "
    "journalism. {% if person.detained_on %}Today is day {{ person.detained_on | days_since }} "
    "of detention.{% endif %}\n\nFree them: {{ vars.url }}\n\n{{ person.name | hashtag }} #PressFreedom\n"
)
DIGEST = (
    "Still behind bars in {{ vars.country }}: {{ detained | map(attribute='name') | join(', ') }}. "
    "Read the report: {{ vars.url }} {{ campaign.title }}\n"
)
NOTE = "{{ campaign.title }}: {{ scheduled_for.strftime('%d %B %Y') }}. Share their names. 📣 {{ vars.url }}\n"


def campaign_text(i: int) -> str:
    people = "".join(
        f"  - id: p{j}\n    name: Journalist Number{j} Ə{i}\n"
        + (f"    detained_on: 2024-0{1 + j}-1{j}\n" if j % 2 == 0 else "")
        + f"    vars: {{role: reporter at Outlet {j}}}\n"
        for j in range(5)
    )
    return (
        f"name: bench-{i}\ntitle: Bench campaign {i}\ntimezone: Asia/Baku\nstarts: 2026-01-01\n"
        "accounts: [m, b, t, x, d]\n"
        f"vars: {{country: Azerbaijan, url: 'https://example.org/report/{i}'}}\n"
        f"people:\n{people}"
        "posts:\n"
        "  - id: spotlight\n    cron: '0 11 * * *'\n    template: spotlight\n    rotate: people\n"
        "  - id: digest\n    cron: '0 15 * * *'\n    template: digest\n"
        "  - id: note\n    cron: '30 19 * * *'\n    template: note\n"
    )


def build(root: Path, campaigns: int) -> Settings:
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    for i in range(campaigns):
        (root / "campaigns" / f"c{i:03d}.yaml").write_text(campaign_text(i), encoding="utf-8")
    for name, body in (("spotlight", SPOTLIGHT), ("digest", DIGEST), ("note", NOTE)):
        (root / "templates" / f"{name}.j2").write_text(body, encoding="utf-8")
    (root / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    return Settings(root / "campaigns", root / "templates", root / "accounts.yaml")


def bench_rows(settings: Settings, days: int) -> None:
    start = datetime(2026, 1, 1)
    end = start + timedelta(days=days)
    t0 = time.perf_counter()
    project = load_project(settings, {"T": "x"})
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = dryrun.rows(project, start, end)
    t_rows = time.perf_counter() - t0
    assert all(r.status == "ok" for r in rows), {r.status for r in rows}

    # the floor: the same texts from a bare Jinja2 loop over precomputed contexts
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(settings.templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(project.renderer.env.filters)
    by_name = {lc.campaign.name: lc for lc in project.campaigns}
    jobs = []
    for r in rows:
        lc = by_name[r.occurrence.campaign]
        ctx = project.renderer.context(lc, r.occurrence, project.accounts[r.occurrence.account])
        jobs.append((env.get_template(f"{r.occurrence.post}.j2"), ctx))
    t0 = time.perf_counter()
    texts = [tmpl.render(ctx).strip() for tmpl, ctx in jobs]
    t_floor = time.perf_counter() - t0
    assert texts == [r.text for r in rows], "the floor must render the same texts"

    n = len(rows)
    print(f"occurrences rendered        {n:>10,}")
    print(f"load {len(project.campaigns)} campaigns            {t_load:>10.3f} s")
    print(f"dry run (plan+render+count) {t_rows:>10.3f} s   {n / t_rows:>10,.0f} occurrences/s")
    print(f"bare Jinja2 loop (floor)    {t_floor:>10.3f} s   {n / t_floor:>10,.0f} renders/s")
    print(f"ratio dry run / floor       {t_rows / t_floor:>10.2f} x   (target <= 2.0)")


def bench_example(repeats: int = 7) -> None:
    exe = shutil.which("solidarity")
    command = [exe] if exe else [sys.executable, "-m", "scheduler"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([*command, "preview"], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    print(
        f"`solidarity preview` (example, 14 days, whole process): median {statistics.median(times):.3f} s, "
        f"best {min(times):.3f} s over {repeats} runs   (target < 1 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_rows(build(Path(tmp), args.campaigns), args.days)
    bench_example()


if __name__ == "__main__":
    main()
