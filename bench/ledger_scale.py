"""Benchmark the ledger as it grows (issue 12): claims, and the reads of `status` and `history`.

For each backend (PostgreSQL from tests/pgserver.py, fsync off; SQLite, a file with the
ledger's pragmas) a new ledger of each size (10,000 and 1,000,000 rows) is made by
``Ledger.open`` and filled by COPY / executemany with rows of realistic shape
(bench/_common.py ``rows``: 200 campaigns, 600 accounts, every status, 300 in flight, at
the pace of a million rows in five years, so "since yesterday" and "in flight" are the
same rows at every size). PostgreSQL's table is vacuumed and analysed after the load (as
autovacuum would); SQLite's is not analysed (the product never does).

Then each measure runs on every size in turn (the machine's noise falls on all alike):
the ledger's reads (``in_flight``, ``history`` with ``since``, ``campaign`` or ``limit``,
``history``'s keyset pages, ``manual.recent``, ``existing``, ``at``, ``renew``, and what
`status` reads: ``status_rows``, or every row before it); `solidarity status --format json` and
`solidarity history --since <yesterday> --format json` as whole processes; and
``claim_sending`` then ``sent`` for --posts new occurrences, one at a time. At the
largest size, each read's own SQL under EXPLAIN (ANALYZE, BUFFERS) / EXPLAIN QUERY PLAN,
and which reads scan the table. The ledger is called through _common's adapter, checked
in a fresh interpreter before and after. Broken (exit 1): a command or the adapter fails.

Run: python bench/ledger_scale.py [--sizes 10000,1000000] [--backends postgresql,sqlite]
     [--index campaign,scheduled_for]         # try an index (repeatable)
     PYTHONPATH=/some/checkout python bench/ledger_scale.py   # that checkout's ledger
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    CAMPAIGNS,
    LedgerAdapter,
    account_name,
    campaign_name,
    commit,
    fill,
    pg_server,
    project,
    server_cpu,
)
from daemon import Broken, machine
from sqlalchemy import event

import scheduler
from scheduler.ledger import Ledger

TREE = Path(scheduler.__file__).resolve().parents[1]  # the checkout whose ledger is measured


@dataclass
class Timing:
    wall: float  # seconds, median (so is cpu: this process's, or a command's)
    cpu: float
    rows: int


def once(fn: Callable[[], Any]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one call, and how many rows it returned."""
    w0, c0 = time.perf_counter(), time.process_time()
    found = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, len(found) if hasattr(found, "__len__") else int(found or 0)


class Samples:
    """Runs of each (size, measure), taken in turn across the sizes; medians at the end."""

    def __init__(self) -> None:
        self.runs: dict[tuple[int, str], list[tuple[float, float, int]]] = {}

    def add(self, n: int, name: str, run: tuple[float, float, int]) -> None:
        self.runs.setdefault((n, name), []).append(run)

    def enough(self, n: int, name: str) -> bool:
        """A measure over 5 s is not run more than twice."""
        found = self.runs.get((n, name), [])
        return len(found) >= 2 and found[-1][0] > 5

    def timing(self, n: int, name: str) -> Timing:
        found = self.runs[(n, name)]
        walls, cpus = ([r[i] for r in found] for i in (0, 1))
        return Timing(statistics.median(walls), statistics.median(cpus), found[-1][2])


def reads(ledger: Any, now: datetime) -> dict[str, Callable[[], Any]]:
    """The ledger's reads the commands and the daemon run, by what the table calls them."""
    me = LedgerAdapter(ledger)
    day = now - timedelta(days=1)
    busy = campaign_name(CAMPAIGNS - 1)
    keys = [f"{campaign_name(i % CAMPAIGNS)}/p/w/{i}" for i in range(3000)]
    found: dict[str, Callable[[], Any]] = {
        "in_flight()": ledger.in_flight,
        "history(since=a day ago)": lambda: ledger.history(since=day),
        "history(campaign=C, since=a day ago)": lambda: ledger.history(campaign=busy, since=day),
        "history(limit=1000)": lambda: ledger.history(limit=1000),
        "recent(): send's 24-hour guard": lambda: [
            e
            for e in [me.recent(busy, "daily-spotlight", account_name(3 * (CAMPAIGNS - 1)), now)]
            if e is not None
        ],
        "existing(3,000 keys): a wake": lambda: ledger.existing(keys),
        "at(account, instant)": lambda: ledger.at(account_name(7), now - timedelta(hours=3)),
    }
    if me.pages(since=now) is not None:  # history reads in keyset pages since fb7be4c
        found["pages(since=a day ago): history --since"] = lambda: me.pages(since=day)
        found["pages(limit=1000): history --limit 1000"] = lambda: me.pages(limit=1000)
    if hasattr(ledger, "renew"):  # leases: every daemon renews its rows in flight
        found["renew(owner): leases"] = lambda: ledger.renew("bench-host:1", now)
    names = [campaign_name(c) for c in range(CAMPAIGNS - 20, CAMPAIGNS)]
    if me.status_rows(names) is not None:  # status reads by index since 3f0e74b
        found["status_rows(20 campaigns): status"] = lambda: me.status_rows(names)
    else:
        found["history(): every row, as status reads"] = ledger.history
    return found


def command(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall time of a whole `solidarity` process, its CPU, and the lines it printed."""
    c0, w0 = os.times(), time.perf_counter()
    done = subprocess.run(  # not in a checkout: `-m` puts the working folder first on sys.path
        [sys.executable, "-m", "scheduler", *args],
        cwd=env["SOLIDARITY_ACCOUNTS"].rsplit("/", 1)[0],
        env=env,
        capture_output=True,
        text=True,
    )
    wall, c1 = time.perf_counter() - w0, os.times()
    if done.returncode != 0:
        raise Broken(f"solidarity {' '.join(args)} exited {done.returncode}: {done.stderr}")
    cpu = c1.children_user + c1.children_system - c0.children_user - c0.children_system
    return wall, cpu, len(done.stdout.splitlines())


def claims(ledger: Any, server: Any, first: int, posts: int, now: datetime) -> tuple[float, ...]:
    """claim_sending then sent for new occurrences, one at a time: wall, CPU, server CPU."""
    me = LedgerAdapter(ledger)
    todo = []
    for i in range(first, first + posts):
        c = i % CAMPAIGNS
        account = account_name(3 * c + i % 3)
        when = now + timedelta(hours=1, seconds=i)
        key = f"{campaign_name(c)}/bench/{account}/{when:%Y-%m-%dT%H:%M:%SZ}/-"
        todo.append(me.claim(key, campaign_name(c), "bench", account, when))
    pg0 = server_cpu(server) if server is not None else 0.0
    w0, c0 = time.perf_counter(), time.process_time()
    for claim in todo:
        entry = me.claim_sending(claim, ["Free the journalists of Abzas Media."], now, "bench:1")
        if entry is None:
            raise Broken(f"a new occurrence could not be claimed: {claim.key}")
        me.sent(entry, ["1"], "https://social.example/1", now)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return wall, cpu, (server_cpu(server) - pg0) if server is not None else 0.0


def explain(ledger: Any, n: int, fn: Callable[[], Any]) -> tuple[list[str], bool]:
    """The plans of the statements on deliveries that ``fn`` runs; True if one scans the table.

    Each distinct statement once, at most six (existing(): one chunk of 500 keys).
    """
    captured: list[tuple[str, Any]] = []

    def seen(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "deliveries" in statement:
            captured.append((statement, parameters))

    event.listen(ledger.engine, "before_cursor_execute", seen)
    try:
        fn()
    finally:
        event.remove(ledger.engine, "before_cursor_execute", seen)
    postgres = ledger.engine.dialect.name == "postgresql"
    lines, scans = [], False
    raw = ledger.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in list(dict(captured).items())[:6]:
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
            cursor.execute(prefix + statement, parameters)
            plan = [str(r[0] if postgres else r[-1]) for r in cursor.fetchall()]
            raw.rollback()  # EXPLAIN ANALYZE of an UPDATE wrote nothing that stays
            if postgres:
                plan.append(f"(rows of deliveries read: {examined(plan):,})")
            scans = scans or scanning(statement, plan, postgres, n)
            shown = re.sub(
                r"^SELECT .+? FROM", "SELECT <the row> FROM", " ".join(statement.split())
            )
            lines += [f"    {shown[:300]}", *(f"      {p}" for p in plan)]
    finally:
        raw.close()
    return lines, scans


def examined(plan: list[str]) -> int:
    """Rows of deliveries a PostgreSQL plan read: returned by its scans plus those filtered out."""
    text = "\n".join(plan)
    scans = re.findall(r" on deliveries .*actual time=\S+ rows=(\d+) loops=(\d+)", text)
    removed = re.findall(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", text)
    return sum(int(r) * int(loops) for r, loops in scans) + sum(map(int, removed))


def scanning(statement: str, plan: list[str], postgres: bool, n: int) -> bool:
    """Whether a plan reads the whole table (or all of an index) rather than what it returns.

    PostgreSQL: it read a tenth of the table or more (EXPLAIN ANALYZE's counts), by
    a Seq Scan or a whole index. SQLite: a "SCAN", except one under a LIMIT with no
    sort after it, which walks an index in order and stops at the limit.
    """
    if postgres:
        return examined(plan) >= n / 10
    scan = any(p.startswith("SCAN deliveries") for p in plan)
    bounded = " LIMIT " in statement.upper() and not any("TEMP B-TREE" in p for p in plan)
    return scan and not bounded


CLAIM = "claim_sending + sent, per post"
COMMANDS = {
    "solidarity status --format json": ["status"],
    "solidarity history --since <yesterday> --format json": ["history", "--since", "{day}"],
}


def measure(backend: str, server: Any, args: argparse.Namespace) -> dict[int, dict[str, Timing]]:
    """Fill a new ledger of each size, then time each measure on every size in turn."""
    now = datetime.now(UTC).replace(microsecond=0)
    day = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    samples, ledgers, envs = Samples(), {}, {}
    with tempfile.TemporaryDirectory(prefix="solidarity-ledger-scale-") as tmp:
        try:
            for n in args.sizes:
                folder = Path(tmp, str(n))
                folder.mkdir()
                url = server.database("ledger") if server else f"sqlite:///{folder / 'ledger.db'}"
                ledgers[n] = ledger = Ledger.open(url)
                envs[n] = project(folder, url, TREE)
                t0 = time.perf_counter()
                fill(ledger, n, now)
                for i, columns in enumerate(args.index):  # --index: an index to try
                    with ledger.engine.begin() as c:
                        c.exec_driver_sql(f"CREATE INDEX bench_ix_{i} ON deliveries ({columns})")
                if server is not None:  # what autovacuum does after a load
                    with ledger.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    ) as c:
                        c.exec_driver_sql("VACUUM ANALYZE deliveries")
                took = time.perf_counter() - t0
                print(f"  {backend} {n:>9,} rows: filled in {took:.1f} s", flush=True)
            calls = {n: reads(ledgers[n], now) for n in args.sizes}
            names = list(calls[args.sizes[0]])
            for _ in range(args.repeat):  # each read on every size in turn: the same noise
                for name in names:
                    for n in args.sizes:
                        if not samples.enough(n, name):
                            samples.add(n, name, once(calls[n][name]))
            for _ in range(args.command_repeat):
                for name, argv in COMMANDS.items():
                    for n in args.sizes:
                        if not samples.enough(n, name):
                            line = [*(a.replace("{day}", day) for a in argv), "--format", "json"]
                            samples.add(n, name, command(line, envs[n]))
            largest = max(args.sizes)
            print(f"  plans at {largest:,} rows ({backend}):")
            for name, fn in reads(ledgers[largest], now).items():
                plan, scans = explain(ledgers[largest], largest, fn)
                print(f"  {name}: {'SCANS THE TABLE' if scans else 'no table scan'}")
                print("\n".join(plan), flush=True)
                if scans:
                    SCANS.setdefault(backend, []).append(name)
            chunk = max(1, args.posts // 8)
            server_cpu_of = dict.fromkeys(args.sizes, 0.0)
            for k in range(0, args.posts, chunk):
                for n in args.sizes:
                    wall, cpu, pg = claims(ledgers[n], server, k, min(chunk, args.posts - k), now)
                    samples.add(n, CLAIM, (wall, cpu, 0))
                    server_cpu_of[n] += pg
            found: dict[int, dict[str, Timing]] = {}
            for n in args.sizes:
                found[n] = {}
                print(f"  {backend} {n:,} rows (medians; wall, then this process's CPU):")
                for name in [*names, *COMMANDS]:
                    found[n][name] = t = samples.timing(n, name)
                    print(f"    {name:<52} {report(t, 'lines' if name in COMMANDS else 'rows')}")
                runs = samples.runs[(n, CLAIM)]
                wall, cpu = (1000 * sum(r[i] for r in runs) / args.posts for i in (0, 1))
                found[n][CLAIM] = Timing(wall / 1000, cpu / 1000, args.posts)
                pg = f", server CPU {1000 * server_cpu_of[n] / args.posts:.3f} ms" if server else ""
                print(f"    {CLAIM:<52} wall {wall:7.3f} ms  CPU {cpu:7.3f} ms{pg}", flush=True)
        finally:
            for ledger in ledgers.values():
                ledger.close()
    return found


SCANS: dict[str, list[str]] = {}


def report(t: Timing, what: str = "rows") -> str:
    return f"wall {1000 * t.wall:9.2f} ms  CPU {1000 * t.cpu:9.2f} ms  {t.rows:>9,} {what}"


def summary(results: dict[tuple[str, int], dict[str, Timing]], sizes: list[int]) -> None:
    small, large = min(sizes), max(sizes)
    print(f"\nsummary: wall at {large:,} rows against {small:,} (target: within 1.5x)")
    for backend in dict.fromkeys(b for b, _ in results):
        print(f"  {backend}")
        a, b = results[(backend, small)], results[(backend, large)]
        for name in a:
            ratio = b[name].wall / a[name].wall if a[name].wall else float("inf")
            verdict = "met" if ratio <= 1.5 else "MISSED"
            print(
                f"    {name:<54} {1000 * a[name].wall:9.2f} -> {1000 * b[name].wall:9.2f} ms"
                f"  {ratio:7.2f}x  {verdict}"
            )
    for backend, names in SCANS.items():
        print(f"  {backend}: scan the table at {large:,} rows: {', '.join(names)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=lambda t: [int(x) for x in t.split(",")], default=[10**4, 10**6]
    )
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--posts", type=int, default=2000, help="claim_sending + sent calls")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each read (median)")
    parser.add_argument("--command-repeat", type=int, default=3, help="runs of each command")
    parser.add_argument("--index", action="append", default=[], help="columns of an index to try")
    args = parser.parse_args()
    print(f"the ledger at {', '.join(f'{n:,}' for n in args.sizes)} rows ({machine()})")
    print(f"(scheduler from {TREE}; {commit(TREE)})")
    if args.index:
        print(f"with the indexes to try: {'; '.join(f'({c})' for c in args.index)}")
    results: dict[tuple[str, int], dict[str, Timing]] = {}
    try:
        print(f"adapter on SQLite: {checked(None)}")
        for backend in args.backends.split(","):
            if backend == "postgresql":
                with pg_server() as server:
                    print(f"adapter on PostgreSQL: {checked(server)}")
                    found = measure(backend, server, args)
            else:
                found = measure(backend, None, args)
            results.update({(backend, n): timings for n, timings in found.items()})
        print(f"adapter on SQLite, again, in a fresh interpreter: {checked(None)}")
    except (Broken, AssertionError) as exc:
        print(f"broken run: {exc!r}", file=sys.stderr)
        return 1
    summary(results, args.sizes)
    return 0


def checked(server: Any) -> str:
    """The adapter's check in a fresh interpreter: the ledger module as it is on disk now."""
    with tempfile.TemporaryDirectory() as tmp:
        url = server.database("check") if server else f"sqlite:///{tmp}/check.db"
        code = "import sys; from _common import check_adapter; print(check_adapter(sys.argv[1]))"
        env = {**os.environ, "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{TREE}"}
        argv = [sys.executable, "-c", code, url]
        done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise Broken(f"the ledger adapter no longer works:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
