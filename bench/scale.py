"""Benchmark several daemons on one PostgreSQL (issue 12): 3 daemons, 3,000 due at once.

One throwaway PostgreSQL (tests/pgserver.py, fsync off), one webhook stand-in in its
own process answering every request 50 ms after it arrived, and one campaign as in
bench/daemon.py's fan-out: 600 webhook accounts with ``pace: 0``, 5 posts each ``at:``
the same instant a few seconds after spawning. Three `solidarity run --db
postgresql+psycopg://...` start at once on the same new, empty database (each round
its own); they migrate it (one of them, under the advisory lock) and share the burst.

Measured, by the stand-in's own clock: drain (the due instant to the last request
received), p50/p99 lateness, the CPU (user + sys) of each daemon from just before the
due instant to the drain, and each daemon's CPU per post it sent (the ``owner`` of
its rows); beside it the stand-in's and the PostgreSQL server's CPU.

The floor, in the same round right before the daemons: three processes of bare
httpx (40 threads each, a client per thread, as bench/daemon.py's floor), each
sending a third of the same requests (same paths, bodies of the same shape) to the
same stand-in, started at once; timed from the first one's start to the last
request received.

Each round checks itself: 3,000 distinct ``X-Solidarity-Key``s at the stand-in and
none twice, 3,000 ``sent`` rows (``solidarity history --format json``), exit status 0
of every daemon on SIGTERM. A broken round is measured and shown (BROKEN, the daemons'
logs kept in a file) and the run exits 1; a missed target does not.

Run: python bench/scale.py [--repeat 3] [--daemons 3] [--accounts 600] [--posts 5]
     [--linger 75]          # wait that long after the drain before SIGTERM (retries happen)
     [--tree /other/tree]   # the daemons of another checkout (a git worktree of a commit)
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import daemon as bench  # bench/daemon.py: this script's directory is first on sys.path
import psutil
from _common import (
    ROOT,
    commit,
    keep_logs,
    owner_pid,
    pg_server,
    sent_by_owner,
    server_cpu,
    spawn,
    wait,
)
from daemon import (
    Broken,
    Daemon,
    StandIn,
    cpu_seconds,
    environment,
    floor_threads,
    history,
    jobs,
    machine,
    pct,
    verdict,
    write_fanout,
)

# -- the floor: bare httpx in separate processes ---------------------------------------------


def sender(url: str, index: int, of: int, accounts: int, posts: int, threads: int) -> None:
    """One floor process (internal): its share of the requests, once told "go" on stdin."""
    work = [j for j in jobs(accounts, posts) if int(j[0].rsplit("w", 1)[1]) % of == index]
    warm = [
        (f"/hook/warm-{index}", f"warm:{index}:{i}", body)
        for i, (_, _, body) in enumerate(work[:3])
    ]
    floor_threads(url, warm, 1)  # imports and first-request costs, not counted
    print("ready", flush=True)
    sys.stdin.readline()
    me = psutil.Process()
    cpu0 = cpu_seconds(me)
    start = floor_threads(url, work, threads)
    print(json.dumps({"start": start, "cpu": cpu_seconds(me) - cpu0, "sent": len(work)}))


@dataclass
class Round:
    """What the stand-in saw of one way of sending the 3,000 requests."""

    lateness: list[float]
    cpus: list[float]  # per process, seconds
    sent: list[int]  # per process, posts it sent
    extra: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what makes the run broken (exit 1)
    notes: list[str] = field(default_factory=list)  # errors the daemons logged, and the like

    @property
    def drain(self) -> float:
        return max(self.lateness)

    def row(self, label: str) -> str:
        per_post = ", ".join(
            f"{1000 * c / s:.2f}" if s else "-" for c, s in zip(self.cpus, self.sent, strict=True)
        )
        return (
            f"  {label:<14} first {min(self.lateness):6.3f}  p50 {pct(self.lateness, 50):6.3f}"
            f"  p99 {pct(self.lateness, 99):6.3f}  drain {self.drain:6.3f} s"
            f"  cpu {'/'.join(f'{c:.2f}' for c in self.cpus)} s"
            f"  posts {'/'.join(map(str, self.sent))}  ms/post {per_post}"
        )


def check_keys(received: list[dict[str, Any]], n: int) -> list[str]:
    """Every key exactly once, every answer 200: say what is not (duplicates, missing sends)."""
    keys = Counter(r["headers"].get("x-solidarity-key") for r in received)
    twice = {k: c for k, c in keys.items() if c > 1}
    problems = []
    if twice:
        problems.append(f"{len(twice)} key(s) received more than once, e.g. {next(iter(twice))}")
    if len(keys) != n:
        problems.append(f"{len(keys)} distinct keys at the stand-in, not {n}")
    bad = [r for r in received if r["status"] != 200]
    if bad:
        problems.append(f"{len(bad)} requests were not answered 200, e.g. {bad[0]}")
    return problems


def run_floor(standin: StandIn, args: argparse.Namespace) -> Round:
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, __file__, "sender", standin.url, str(i), str(args.daemons)),
                *(str(args.accounts), str(args.posts), str(args.floor_threads)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(args.daemons)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise Broken("a floor sender did not start")
        standin.clear()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        said = []
        for p in procs:
            out, _ = p.communicate(timeout=300)
            if p.returncode != 0:
                raise Broken(f"a floor sender exited {p.returncode}")
            said.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    start = min(s["start"] for s in said)
    received = standin.received()
    problems = check_keys(received, args.accounts * args.posts)
    if problems:
        raise Broken(f"floor: {'; '.join(problems)}")
    return Round(
        [r["at"] - start for r in received], [s["cpu"] for s in said], [s["sent"] for s in said]
    )


# -- the daemons ---------------------------------------------------------------------------------


def run_daemons(server: Any, standin: StandIn, args: argparse.Namespace) -> Round:
    """One round of the daemons; a broken one keeps their whole logs in a file and names it."""
    spawned: list[Daemon] = []
    try:
        found = _run_daemons(server, standin, args, spawned)
    except Broken as exc:
        if not spawned:
            raise
        raise Broken(f"{exc}\n(the daemons' logs: {keep_logs(spawned)})") from None
    if found.problems or found.notes:
        found.notes.append(f"the daemons' logs: {keep_logs(spawned)}")
    return found


def _run_daemons(
    server: Any, standin: StandIn, args: argparse.Namespace, spawned: list[Daemon]
) -> Round:
    n = args.accounts * args.posts
    url = server.database("scale")
    standin.clear()
    with tempfile.TemporaryDirectory(prefix="solidarity-scale-") as tmp:
        root = Path(tmp)
        due_epoch = math.ceil(time.time() + args.lead)
        write_fanout(
            root, standin.url, args.accounts, args.posts, datetime.fromtimestamp(due_epoch, UTC)
        )
        env = environment(root, args.workers)
        env["SOLIDARITY_DATABASE_URL"] = url  # for `history`; `run` is given --db
        env["PYTHONPATH"] = str(args.tree)  # this checkout's scheduler, whatever is installed
        daemons = [spawn(root, env, url) for _ in range(args.daemons)]
        spawned.extend(daemons)
        try:
            ready = [d.wait_ready() for d in daemons]
            lead = due_epoch - time.time()
            if lead < 0.5:
                print(
                    f"  (warning: the last daemon was ready only {lead:.2f} s before the due instant)"
                )
            procs = [psutil.Process(d.process.pid) for d in daemons]
            time.sleep(max(0.0, due_epoch - time.time() - 0.3))
            cpu0 = [cpu_seconds(p) for p in procs]
            standin0, pg0 = cpu_seconds(standin.ps), server_cpu(server)
            alive = lambda: all(d.process.poll() is None for d in daemons)  # noqa: E731
            if not standin.wait_for(n, timeout=args.lead + 180, alive=alive):
                raise Broken(
                    f"the stand-in got {standin.count()} of {n} requests\n"
                    + "\n".join(d.log_tail(5) for d in daemons)
                )
            cpus = [cpu_seconds(p) - c for p, c in zip(procs, cpu0, strict=True)]
            standin_cpu, pg_cpu = cpu_seconds(standin.ps) - standin0, server_cpu(server) - pg0
            time.sleep(args.linger)  # --linger: let retries and read-backs happen first
            for d in daemons:  # SIGTERM to all at once, then wait for each
                d.process.send_signal(signal.SIGTERM)
            statuses = [wait(d) for d in daemons]
        finally:
            for d in daemons:
                d.kill()
        problems = [f"exit statuses {statuses} on SIGTERM"] if any(statuses) else []
        rows = history(root, env)
    received = standin.received()  # after every daemon has exited: a late duplicate shows
    problems += check_keys(received, n)
    statuses_seen = Counter(r["status"] for r in rows)
    if statuses_seen.get("sent") != n or len(rows) != n:
        odd = [r["key"] for r in rows if r["status"] != "sent"][:3]
        problems.append(f"{len(rows)} rows, {dict(statuses_seen)}; wanted {n} sent; e.g. {odd}")
    host = socket.gethostname()
    owners = sent_by_owner(server, url)
    sent = [
        sum(
            c
            for (o, st), c in owners.items()
            if st == "sent" and owner_pid(o, host) == d.process.pid
        )
        for d in daemons
    ]
    if sum(sent) != statuses_seen.get("sent", 0):
        problems.append(f"sent rows by owner do not add up: {dict(owners)}")
    notes = []
    for i, d in enumerate(daemons):
        errors = Counter(
            str(m.get("message", "")).split(": ", 1)[-1][:120]
            for m in d.messages()
            if m.get("level") in ("ERROR", "CRITICAL")
        )
        if errors:
            notes.append(f"daemon {i + 1} logged {sum(errors.values())} error(s): {dict(errors)}")
    return Round(
        [r["at"] - due_epoch for r in received],
        cpus,
        sent,
        {
            "standin_cpu": standin_cpu,
            "pg_cpu": pg_cpu,
            "ready": max(ready),
            "lead": lead,
        },
        problems,
        notes,
    )


# -- the benchmark ----------------------------------------------------------------------------


def main() -> int:
    if sys.argv[1:2] == ["sender"]:
        url, index, of, accounts, posts, threads = sys.argv[2:8]
        sender(url, int(index), int(of), int(accounts), int(posts), int(threads))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds (floor, then daemons)")
    parser.add_argument("--daemons", type=int, default=3, help="daemons (and floor processes)")
    parser.add_argument("--accounts", type=int, default=600)
    parser.add_argument("--posts", type=int, default=5, help="per account")
    parser.add_argument("--latency", type=float, default=0.05, help="the stand-in's, seconds")
    parser.add_argument("--workers", type=int, default=40, help="SOLIDARITY_WORKERS of each daemon")
    parser.add_argument("--floor-threads", type=int, default=40, help="threads per floor process")
    parser.add_argument("--lead", type=float, default=10.0, help="seconds from spawn to due")
    parser.add_argument(
        "--linger", type=float, default=0.0, help="seconds between the drain and SIGTERM"
    )
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose daemon runs")
    args = parser.parse_args()
    bench.COMMAND = [sys.executable, "-m", "scheduler"]  # imported from --tree (PYTHONPATH)
    n = args.accounts * args.posts
    print(
        f"{args.daemons} daemons on one PostgreSQL: {n:,} occurrences due at one instant over "
        f"{args.accounts} accounts x {args.posts} posts; stand-in answers after "
        f"{args.latency * 1000:.0f} ms"
    )
    print(f"({machine()}; {commit(args.tree)})")
    floors: list[Round] = []
    ours: list[Round] = []
    try:
        with pg_server() as server:
            standin = StandIn(args.latency)
            try:
                for i in range(args.repeat):
                    print(f"round {i + 1}")
                    floors.append(run_floor(standin, args))
                    print(floors[-1].row(f"floor x{args.daemons}"), flush=True)
                    ours.append(run_daemons(server, standin, args))
                    x = ours[-1].extra
                    print(
                        ours[-1].row(f"daemons x{args.daemons}")
                        + f"\n  {'':<14} = {ours[-1].drain / floors[-1].drain:.2f}x floor;"
                        f" stand-in cpu {x['standin_cpu']:.2f} s, PostgreSQL cpu {x['pg_cpu']:.2f} s,"
                        f" last ready {x['ready']:.2f} s after spawning ({x['lead']:.2f} s before due)",
                        flush=True,
                    )
                    for line in ours[-1].notes:
                        print(f"  note: {line}")
                    for line in ours[-1].problems:
                        print(f"  BROKEN: {line}")
            finally:
                standin.stop()
    except Broken as exc:
        print(f"broken run: {exc}", file=sys.stderr)
        return 1
    summary(floors, ours, args)
    broken = sum(1 for r in ours if r.problems)
    if broken:
        print(
            f"broken run: {broken} of {len(ours)} round(s) broken (BROKEN above)", file=sys.stderr
        )
    return 1 if broken else 0


def summary(floors: list[Round], ours: list[Round], args: argparse.Namespace) -> None:
    med = statistics.median
    n = args.accounts * args.posts
    ratios = [d.drain / f.drain for d, f in zip(ours, floors, strict=True)]
    print(f"\nsummary over {len(ours)} round(s) (medians; each round against its own floor):")
    for label, rounds in ((f"floor ({args.daemons} x bare httpx)", floors), ("daemons", ours)):
        print(
            f"  {label:<26} p50 {med(pct(r.lateness, 50) for r in rounds):6.3f} s"
            f"  p99 {med(pct(r.lateness, 99) for r in rounds):6.3f} s"
            f"  drain {med(r.drain for r in rounds):6.3f} s"
            f"  cpu per post {med(1000 * sum(r.cpus) / n for r in rounds):.2f} ms (all processes)"
        )
    per_daemon = [1000 * c / s for r in ours for c, s in zip(r.cpus, r.sent, strict=True) if s]
    per_daemon = per_daemon or [math.nan]  # no rows of a known owner: see BROKEN above
    shares = [s for r in ours for s in r.sent]
    print(
        f"  each daemon: cpu per post it sent {med(per_daemon):.2f} ms"
        f" ({min(per_daemon):.2f}-{max(per_daemon):.2f}); posts per daemon {min(shares)}-{max(shares)}"
    )
    print(
        f"  stand-in cpu {med(r.extra['standin_cpu'] for r in ours):.2f} s,"
        f" PostgreSQL cpu {med(r.extra['pg_cpu'] for r in ours):.2f} s"
        f" = {med(1000 * r.extra['pg_cpu'] / n for r in ours):.2f} ms per post"
    )
    print(f"  per-round ratios {', '.join(f'{r:.2f}x' for r in ratios)}")
    ratio = med(ratios)
    verdict("drain within 1.5x the floor", f"{ratio:.2f}x (median)", ratio <= 1.5)
    broken = [i + 1 for i, r in enumerate(ours) if r.problems]
    figure = f"broken in round(s) {broken}" if broken else "every round checked"
    verdict(f"0 duplicates, {n:,} sent, exit 0", figure, not broken)


if __name__ == "__main__":
    sys.exit(main())
