"""Benchmark holds (issue 9): `solidarity hold` stopping a running burst; fan-out with the check.

hold            The fan-out of bench/daemon.py (1,000 occurrences due at one instant over
                200 webhook accounts, a stand-in answering after 50 ms, a fresh SQLite
                ledger each round) under `solidarity run`; once the stand-in has received
                --after requests, `solidarity hold --why bench` runs as a subprocess on the
                same ledger. Measured: the instant the command returns to the last request
                the stand-in receives (negative: nothing arrived after it returned).
                Each round checks itself: exit status 0 on SIGTERM, nothing received after
                the --window (nor on shutdown), no key received twice, one `sent` row per
                request received and no other row but `held`, no error logged.
fanout-compare  The fan-out under the daemon of this tree (holds checked before every request)
                and under the daemon of the commit before the holds (--before, default
                794c3b7, checked out in a temporary git worktree), alternately in the
                same run, with the bare-httpx floor measured again in every round.

Run: python bench/holds.py hold [--rounds 20] [--after 100] [--window 3]
     python bench/holds.py fanout-compare [--repeat 9] [--before 794c3b7]
A broken run exits 1; a missed target does not.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import daemon as bench  # bench/daemon.py: this script's directory is first on sys.path
from daemon import (
    ROOT,
    Broken,
    Daemon,
    StandIn,
    environment,
    history,
    jobs,
    machine,
    measure_floor,
    pct,
    run_fanout_daemon,
    verdict,
    write_fanout,
)

# -- hold: from the command returning to the last request ----------------------------------


@dataclass
class Stop:
    """One round of `hold` during a burst."""

    before: int  # requests the stand-in had received when the hold command was started
    command: float  # seconds the hold command took, spawn to exit
    at_return: int  # requests received when it returned
    received: int  # requests received in all
    after: float  # last arrival minus the command's return, seconds
    rows: Counter[str]


def hold_round(standin: StandIn, args: argparse.Namespace) -> Stop:
    """One round; a broken one keeps the daemon's whole log in a file and names it."""
    spawned: list[Daemon] = []
    try:
        return _hold_round(standin, args, spawned)
    except Broken as exc:
        if not spawned:
            raise
        with tempfile.NamedTemporaryFile(
            "w", prefix="solidarity-hold-broken-", suffix=".log", delete=False
        ) as log:
            log.write("".join(line for _, line in spawned[0].lines))
        raise Broken(f"{exc}\nthe daemon's whole log: {log.name}") from None


def _hold_round(standin: StandIn, args: argparse.Namespace, spawned: list[Daemon]) -> Stop:
    n = args.accounts * args.posts
    standin.clear()
    with tempfile.TemporaryDirectory(prefix="solidarity-hold-") as tmp:
        root = Path(tmp)
        due_epoch = math.ceil(time.time() + args.lead)
        write_fanout(
            root, standin.url, args.accounts, args.posts, datetime.fromtimestamp(due_epoch, UTC)
        )
        env = environment(root, args.workers)
        daemon = Daemon.spawn(root, env)
        spawned.append(daemon)
        try:
            daemon.wait_ready()
            alive = lambda: daemon.process.poll() is None  # noqa: E731
            if not standin.wait_for(args.after, timeout=args.lead + 60, alive=alive):
                raise Broken(f"the burst never reached {args.after} requests\n{daemon.log_tail()}")
            before = standin.count()
            started = time.time()
            done = subprocess.run(
                [*bench.solidarity_command(), "hold", "--why", "bench"],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            returned = time.time()
            at_return = standin.count()
            if done.returncode != 0:
                raise Broken(f"solidarity hold exited {done.returncode}: {done.stderr}")
            time.sleep(args.window)
            in_window = standin.received()
            status = daemon.stop()
        finally:
            daemon.kill()
        received = standin.received()
        tail = daemon.log_tail()
        if status != 0:
            raise Broken(f"exit status {status} on SIGTERM\n{tail}")
        if len(received) != len(in_window):
            late = sorted(r["at"] - returned for r in received[len(in_window) :])
            raise Broken(
                f"{len(received) - len(in_window)} requests arrived after the {args.window:g} s"
                f" window (at +{late[0]:.2f}..+{late[-1]:.2f} s from the hold's return)\n{tail}"
            )
        keys = Counter(r["headers"].get("x-solidarity-key") for r in received)
        twice = [k for k, c in keys.items() if c > 1]
        if twice:
            raise Broken(f"{len(twice)} occurrences posted twice, e.g. {twice[:3]}\n{tail}")
        if any(r["status"] != 200 for r in received):
            raise Broken(f"requests not answered 200\n{tail}")
        rows = history(root, env)
        statuses = Counter(r["status"] for r in rows)
        sent = {r["key"] for r in rows if r["status"] == "sent"}
        if sent != set(keys):
            raise Broken(
                f"{len(sent)} sent rows for {len(keys)} keys received"
                f" ({len(sent - set(keys))} sent not received, {len(set(keys) - sent)} received"
                f" not sent)\n{tail}"
            )
        odd = {s: c for s, c in statuses.items() if s not in ("sent", "held")}
        if odd:
            raise Broken(f"rows neither sent nor held: {odd}\n{tail}")
        if len(rows) > n:
            raise Broken(f"{len(rows)} rows for {n} occurrences")
        errors = [m for m in daemon.messages() if m.get("level") in ("ERROR", "CRITICAL")]
        if errors:
            raise Broken(f"the daemon logged errors: {errors[:3]}")
    statuses["waiting (no row)"] = n - len(rows)
    last = max(r["at"] for r in received)
    return Stop(before, returned - started, at_return, len(received), last - returned, statuses)


def hold(args: argparse.Namespace) -> None:
    n = args.accounts * args.posts
    print(
        f"hold: {n:,} occurrences due at one instant ({args.accounts} accounts x {args.posts}),"
        f" stand-in answering after {args.latency * 1000:.0f} ms; `solidarity hold --why bench`"
        f" once {args.after} requests arrived ({machine()})"
    )
    print(f"this tree: {ROOT} at {revision()}")
    print("after: the last request's arrival at the stand-in minus the hold command's return")
    standin = StandIn(args.latency)
    stops: list[Stop] = []
    try:
        for i in range(args.rounds):
            stop = hold_round(standin, args)
            stops.append(stop)
            rows = ", ".join(f"{s} {c}" for s, c in sorted(stop.rows.items()) if c)
            print(
                f"  round {i + 1:>2}: hold started at {stop.before:>4} received, took"
                f" {stop.command:5.2f} s, returned at {stop.at_return:>4}; {stop.received:>4}"
                f" received in all; after {stop.after:+6.3f} s  (rows: {rows})"
                + ("  the burst ended before the hold was read" if stop.received >= n else "")
                + (" (and before the command returned)" if stop.at_return >= n else ""),
                flush=True,
            )
    finally:
        standin.stop()
    afters = [s.after for s in stops]
    median, worst = statistics.median(afters), max(afters)
    stopped = [s.after for s in stops if s.received < n]
    print()
    print(f"summary over {len(stops)} rounds:")
    print(f"  hold's return to the last request: median {median:+.3f} s, worst {worst:+.3f} s")
    if stopped and len(stopped) < len(stops):
        print(
            f"  of which the {len(stopped)} rounds the hold cut short: median"
            f" {statistics.median(stopped):+.3f} s, worst {max(stopped):+.3f} s (in the other"
            f" {len(stops) - len(stopped)}, the burst's last request came first)"
        )
    print(
        f"  the hold command itself: median {statistics.median(s.command for s in stops):.2f} s;"
        f" requests between its return and the stop: median"
        f" {statistics.median(s.received - s.at_return for s in stops):.0f},"
        f" most {max(s.received - s.at_return for s in stops)}"
    )
    print(
        f"  requests never sent (held back): median"
        f" {statistics.median(n - s.received for s in stops):.0f} of {n:,}"
    )
    verdict("last request under 1 s after hold (median)", f"{median:+.3f} s", median < 1)
    verdict("last request under 1 s after hold (worst)", f"{worst:+.3f} s", worst < 1)


# -- fanout-compare: the daemon of this tree against the one before the holds ----------------


def revision() -> str:
    """This tree's commit, and whether files differ from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def module_command(tree: Path) -> list[str]:
    """`python -m scheduler` importing the `scheduler` package of ``tree``."""
    return ["env", f"PYTHONPATH={tree}", sys.executable, "-m", "scheduler"]


WHERE = """
import sys
from pathlib import Path
import scheduler.cli, scheduler.daemon  # what `run` imports
tree = Path(sys.argv[1])
print(scheduler.__file__)
print((Path(scheduler.__file__).parent / "holdbook.py").exists())
for name, module in sorted(sys.modules.items()):
    file = getattr(module, "__file__", None)
    if name.partition(".")[0] == "scheduler" and file and not Path(file).is_relative_to(tree):
        print(name, file)
"""


def imported_from(tree: Path) -> str:
    """Where `python -m scheduler` of ``tree`` takes its modules from (cwd: a bare folder)."""
    with tempfile.TemporaryDirectory(prefix="solidarity-where-") as tmp:
        done = subprocess.run(
            [*module_command(tree)[:-2], "-c", WHERE, str(tree)],
            cwd=tmp,
            env=environment(Path(tmp)),
            capture_output=True,
            text=True,
            check=True,
        )
    path, holdbook, *elsewhere = done.stdout.splitlines()
    if elsewhere:  # an editable install's finder can fill in what the tree lacks
        raise Broken(f"PYTHONPATH={tree} imports modules from elsewhere: {elsewhere}")
    return f"{path} (has holdbook.py: {'yes' if holdbook == 'True' else 'no'})"


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="solidarity-before-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run(
            [*git, "add", "--detach", str(tree), commit], check=True, capture_output=True
        )
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)


@contextlib.contextmanager
def checkout(command: list[str]) -> Iterator[None]:
    saved, bench.COMMAND = bench.COMMAND, command
    try:
        yield
    finally:
        bench.COMMAND = saved


def fanout_compare(args: argparse.Namespace) -> None:
    accounts, posts = args.accounts, args.posts
    print(
        f"fan-out with the holds check against {args.before} (before it): {accounts * posts:,}"
        f" occurrences due at one instant, {accounts} accounts x {posts}, stand-in answering"
        f" after {args.latency * 1000:.0f} ms, workers={args.workers}; the two daemons"
        f" alternately, each round after the floor measured again ({machine()})"
    )
    with worktree(args.before) as tree:
        trees = {"this tree (holds checked)": ROOT, f"{args.before} (before)": tree}
        print(f"  this tree: {ROOT} at {revision()}")
        for label, where in trees.items():
            print(f"  {label:<28} python -m scheduler imports {imported_from(where)}")
        labels = list(trees)
        runs: dict[str, list[bench.DaemonRun]] = {label: [] for label in labels}
        standin = StandIn(args.latency)
        try:
            work = jobs(accounts, posts)
            for i in range(args.repeat):
                floor = measure_floor(
                    standin, work, [args.floor], accounts, kinds=("httpx threads",)
                )[0]
                for label in labels if i % 2 == 0 else labels[::-1]:
                    with checkout(module_command(trees[label])):
                        run = run_fanout_daemon(standin, accounts, posts, args.workers, args.lead)
                    run.floor, run.drain.label = floor.drain, label
                    runs[label].append(run)
                    print(f"{run.drain.row()}  ready {run.ready:.2f} s", flush=True)
        finally:
            standin.stop()
    print()
    floors = [r.floor for r in runs[labels[0]]]
    print(f"summary over {args.repeat} paired rounds (medians):")
    print(f"  floor (httpx threads x{args.floor})  drain {statistics.median(floors):6.3f} s")
    for label in labels:
        found = runs[label]
        print(
            f"  {label:<28} p50 {statistics.median(pct(r.drain.lateness, 50) for r in found):6.3f}"
            f"  p99 {statistics.median(pct(r.drain.lateness, 99) for r in found):6.3f}"
            f"  drain {statistics.median(r.drain.drain for r in found):6.3f} s"
            f"  = {statistics.median(r.drain.drain / r.floor for r in found):4.2f}x floor"
        )
    new, old = (runs[label] for label in labels)
    ratios = [a.drain.drain / b.drain.drain for a, b in zip(new, old, strict=True)]
    ratio = statistics.median(ratios)
    of_medians = statistics.median(r.drain.drain for r in new) / statistics.median(
        r.drain.drain for r in old
    )
    print(
        f"  this tree / before, per round: median {ratio:.3f}x ({min(ratios):.2f}x-"
        f"{max(ratios):.2f}x); ratio of the median drains {of_medians:.3f}x"
    )
    # the due instant to the first request (waking, planning, the first claim) apart from
    # the burst itself (first request to last)
    for label in labels:
        found = runs[label]
        first = statistics.median(min(r.drain.lateness) for r in found)
        burst = statistics.median(r.drain.drain - min(r.drain.lateness) for r in found)
        print(f"  {label:<28} due to first request {first:6.3f} s, first to last {burst:6.3f} s")
    spans = [
        (a.drain.drain - min(a.drain.lateness)) / (b.drain.drain - min(b.drain.lateness))
        for a, b in zip(new, old, strict=True)
    ]
    print(f"  first to last, this tree / before, per round: median {statistics.median(spans):.3f}x")
    verdict("drain within 5% of before (paired median)", f"{ratio:.3f}x", ratio <= 1.05)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    hold_parser = commands.add_parser("hold", help="hold's return to a burst's last request")
    compare = commands.add_parser("fanout-compare", help="fan-out: this tree against before")
    for p in (hold_parser, compare):
        p.add_argument("--accounts", type=int, default=200)
        p.add_argument("--posts", type=int, default=5, help="per account")
        p.add_argument("--latency", type=float, default=0.05, help="the stand-in's, seconds")
        p.add_argument("--lead", type=float, default=6.0, help="seconds from spawn to due")
    hold_parser.add_argument("--rounds", type=int, default=20)
    hold_parser.add_argument("--after", type=int, default=100, help="requests before the hold")
    hold_parser.add_argument("--window", type=float, default=3.0, help="seconds watched after")
    hold_parser.add_argument("--workers", type=int, default=None, help="the daemon's default")
    compare.add_argument("--repeat", type=int, default=9, help="paired rounds")
    compare.add_argument("--before", default="794c3b7", help="the commit before the holds")
    compare.add_argument("--workers", type=int, default=40)
    compare.add_argument("--floor", type=int, default=40, help="the floor's threads")
    args = parser.parse_args()
    try:
        if args.command == "hold":
            hold(args)
        else:
            fanout_compare(args)
    except Broken as exc:
        print(f"broken run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
