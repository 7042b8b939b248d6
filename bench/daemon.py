"""Benchmark the daemon (`solidarity run`) as a whole process: fan-out, idle, start-up.

fanout   1,000 occurrences due at one instant over 200 webhook accounts (5 each,
         ``pace: 0``) to a webhook stand-in (its own process, threaded server) that
         answers every request 50 ms after receiving it. Prints p50/p99 lateness (due
         instant to the stand-in receiving the request) and the time to drain, for each
         SOLIDARITY_WORKERS value; beside them the floor, measured in the same run: the
         same 1,000 requests sent to the same stand-in by a bare httpx loop (threads and
         asyncio, several concurrencies, the best one kept); and Apprise as the peer.
idle     50 campaigns loaded, nothing due: resident memory and CPU of the daemon over
         60 s (--seconds to shorten).
startup  spawning `solidarity run` to its "ready" log line, 100 campaigns; median and
         best of several starts.

Every run checks itself (exit status 0 on SIGTERM; in fan-out, 1,000 ``sent`` rows in
``solidarity history --format json`` and 1,000 distinct keys at the stand-in) and exits
non-zero only when a run is broken, never because a target is missed.

Run: python bench/daemon.py fanout [--workers 8,20,40,80] [--repeat 3]
     python bench/daemon.py idle [--seconds 60]
     python bench/daemon.py startup [--starts 7]
     python bench/daemon.py all
     python bench/daemon.py breakdown    # where the time goes: start-up phases, CPU per post
     add --profile DIR [--profile-clock cpu] to run the daemon under cProfile (every thread)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
READY = "ready in"


class Broken(Exception):
    """A run that did not do what it must (not a missed target)."""


# -- the daemon as a process ------------------------------------------------------------------


PROFILE_DIR: Path | None = None  # --profile: run the daemon under cProfile, every thread
PROFILE_CLOCK = "wall"  # or "cpu": each thread's CPU time (time.thread_time)


COMMAND: list[str] | None = None  # another checkout's CLI in place of this one's (holds.py)


def solidarity_command() -> list[str]:
    if COMMAND is not None:
        return list(COMMAND)
    exe = shutil.which("solidarity")
    return [exe] if exe else [sys.executable, "-m", "scheduler"]


def daemon_command() -> list[str]:
    if PROFILE_DIR is None:
        return [*solidarity_command(), "run", "--log-format", "json"]
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    return [
        *(sys.executable, __file__, "profiled", str(PROFILE_DIR), PROFILE_CLOCK),
        *("run", "--log-format", "json"),
    ]


def profiled(out: Path, clock: str, argv: list[str]) -> None:
    """Run the solidarity CLI in this process with a cProfile per thread, merged on exit.

    cProfile alone sees only the main thread; the daemon sends from worker threads.
    With clock "wall", a thread's waits (locks, sockets, SQLite's busy handler) count;
    with "cpu", only its CPU time.
    """
    timer = time.thread_time if clock == "cpu" else time.perf_counter
    import atexit
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(timer)
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]

    def dump() -> None:
        main_profile.disable()
        merged = pstats.Stats(main_profile)
        for profile in profiles:
            with contextlib.suppress(TypeError, ValueError):
                merged.add(profile)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"daemon-{os.getpid()}-{clock}.prof"
        merged.dump_stats(path)

    atexit.register(dump)
    main_profile = cProfile.Profile(timer)
    main_profile.enable()
    from scheduler.cli import main

    sys.argv = ["solidarity", *argv]
    main()


def environment(root: Path, workers: int | None = None, **extra: str) -> dict[str, str]:
    """The environment of a `solidarity` process working on the files under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(
        SOLIDARITY_CAMPAIGNS=str(root / "campaigns"),
        SOLIDARITY_TEMPLATES=str(root / "templates"),
        SOLIDARITY_ACCOUNTS=str(root / "accounts.yaml"),
        SOLIDARITY_DATABASE_URL=f"sqlite:///{root / 'ledger.db'}",
        **extra,
    )
    if workers is not None:
        env["SOLIDARITY_WORKERS"] = str(workers)
    return env


@dataclass
class Daemon:
    """A running `solidarity run --log-format json`, its log lines timestamped as they come."""

    process: subprocess.Popen[str]
    spawned: float  # time.perf_counter() just before spawning
    lines: list[tuple[float, str]] = field(default_factory=list)  # (perf_counter, line)
    ready: threading.Event = field(default_factory=threading.Event)
    ready_at: float | None = None

    @classmethod
    def spawn(cls, root: Path, env: dict[str, str]) -> Daemon:
        spawned = time.perf_counter()
        process = subprocess.Popen(
            daemon_command(),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        daemon = cls(process, spawned)
        threading.Thread(target=daemon._read, daemon=True).start()
        return daemon

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            now = time.perf_counter()
            self.lines.append((now, line))
            if not self.ready.is_set() and READY in line:
                self.ready_at = now
                self.ready.set()

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait for the "ready" line; return seconds from spawning to it."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise Broken(f"the daemon never said it was ready:\n{self.log_tail()}")
        assert self.ready_at is not None
        return self.ready_at - self.spawned

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit status."""
        if PROFILE_DIR is not None:
            timeout += 120  # writing the profile takes a while
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Broken(f"the daemon did not stop on SIGTERM:\n{self.log_tail()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for _, line in self.lines:
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    def log_tail(self, n: int = 15) -> str:
        return "".join(line for _, line in self.lines[-n:])


def history(root: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*solidarity_command(), "history", "--format", "json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Broken(f"solidarity history failed: {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


# -- figures ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def machine() -> str:
    import platform

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}; "
        f"load average {load}"
    )


# -- fan-out ----------------------------------------------------------------------------------


@dataclass
class Drain:
    """One way of sending the 1,000 requests, as the stand-in saw them."""

    label: str
    lateness: list[float]  # seconds from the due instant (or the loop's start) to received
    cpu: float | None = None  # CPU seconds of the sender while draining
    note: str = ""

    @property
    def drain(self) -> float:
        return max(self.lateness)

    def row(self) -> str:
        cpu = f"{self.cpu:6.2f}" if self.cpu is not None else "     -"
        return (
            f"  {self.label:<34} first {min(self.lateness):6.3f}  p50 {pct(self.lateness, 50):6.3f}"
            f"  p99 {pct(self.lateness, 99):6.3f}  drain {self.drain:6.3f} s  cpu {cpu} s"
            f"{'  ' + self.note if self.note else ''}"
        )


class StandIn:
    """The webhook stand-in in its own process: counts, clears, and what it received."""

    def __init__(self, latency: float) -> None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.standins.process import spawn

        self.process = spawn("webhook", "--path", "/hook/*", "--latency", str(latency))
        self.url = self.process.url
        self.ps = psutil.Process(self.process.process.pid)
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def count(self) -> int:
        return int(self._http.get("/__standin__/count").json()["requests"])

    def clear(self) -> None:
        self.process.knob("clear_requests")

    def received(self) -> list[dict[str, Any]]:
        return list(self._http.get("/__standin__/state").json()["requests"])

    def wait_for(self, n: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            if self.count() >= n:
                return True
            time.sleep(0.02)
        return self.count() >= n

    def stop(self) -> None:
        self._http.close()
        self.process.stop()


def check_received(requests: list[dict[str, Any]], n: int, paths: int, what: str) -> None:
    if len(requests) != n:
        raise Broken(f"{what}: the stand-in received {len(requests)} requests, not {n}")
    bad = [r for r in requests if r["status"] != 200]
    if bad:
        raise Broken(f"{what}: {len(bad)} requests were not answered 200, e.g. {bad[0]}")
    if len({r["path"] for r in requests}) != paths:
        raise Broken(f"{what}: expected {paths} distinct paths")


def account(i: int) -> str:
    return f"w{i:03d}"


def payload(key: str, text: str) -> bytes:
    """A body like the webhook platform's."""
    return json.dumps(
        {
            "key": key,
            "text": text,
            "parts": [text],
            "language": None,
            "content_warning": None,
            "link_card": None,
            "media": [],
            "created_at": datetime.now(UTC).isoformat(),
        },
        ensure_ascii=False,
    ).encode()


POST_TEXT = (
    "Post {n} of the day: journalists are behind bars in Azerbaijan for doing their work. "
    "Share their names. https://www.amnesty.org/en/documents/eur55/0128/2025/en/ #PressFreedom"
)


def jobs(accounts: int, posts: int) -> list[tuple[str, str, bytes]]:
    """The fan-out's requests (path, key, body), in the order the daemon claims them."""
    return [
        (
            f"/hook/{account(a)}",
            f"bench:p{p}:{account(a)}",
            payload(f"bench:p{p}:{account(a)}", POST_TEXT.format(n=p)),
        )
        for p in range(posts)
        for a in range(accounts)
    ]


def floor_threads(
    url: str,
    work: list[tuple[str, str, bytes]],
    concurrency: int,
    make: Callable[[ssl.SSLContext], httpx.Client] = lambda tls: httpx.Client(
        timeout=30, verify=tls
    ),
) -> float:
    """Send with ``concurrency`` threads, each with its own client; return the start."""
    local = threading.local()
    clients: list[httpx.Client] = []
    tls = httpx.create_ssl_context()  # shared: building one per client costs ~50 ms

    def one(job: tuple[str, str, bytes]) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = make(tls)
            clients.append(client)
        path, key, body = job
        headers = {"Content-Type": "application/json", "X-Solidarity-Key": key}
        client.post(url + path, content=body, headers=headers).raise_for_status()

    with ThreadPoolExecutor(concurrency) as pool:
        start = time.time()
        list(pool.map(one, work))
    for client in clients:
        client.close()
    return start


def floor_ours(url: str, work: list[tuple[str, str, bytes]], concurrency: int) -> float:
    """Like floor_threads, on the daemon's own HTTP stack (transport.api_client, Transport)."""
    from scheduler.transport import Transport, api_client

    return floor_threads(
        url,
        work,
        concurrency,
        lambda tls: api_client(Transport(tls), timeout=30),
    )


def floor_asyncio(url: str, work: list[tuple[str, str, bytes]], concurrency: int) -> float:
    """Send with one httpx.AsyncClient of ``concurrency`` connections; return the start."""

    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(job: tuple[str, str, bytes]) -> None:
                path, key, body = job
                headers = {"Content-Type": "application/json", "X-Solidarity-Key": key}
                async with gate:
                    reply = await client.post(url + path, content=body, headers=headers)
                reply.raise_for_status()

            start = time.time()
            await asyncio.gather(*(one(job) for job in work))
            return start

    return asyncio.run(run())


FLOORS: dict[str, Callable[[str, list[tuple[str, str, bytes]], int], float]] = {
    "httpx threads": floor_threads,
    "httpx asyncio": floor_asyncio,
    "daemon's HTTP stack, threads": floor_ours,
}


def measure_floor(
    standin: StandIn,
    work: list[tuple[str, str, bytes]],
    concurrencies: list[int],
    paths: int,
    kinds: tuple[str, ...] = ("httpx threads", "httpx asyncio"),
) -> list[Drain]:
    # warm up the stand-in and this process's imports, not counted
    floor_threads(standin.url, work[:50], 10)
    found = []
    for kind in kinds:
        for concurrency in concurrencies:
            standin.clear()
            me = psutil.Process()
            cpu0 = cpu_seconds(me)
            start = FLOORS[kind](standin.url, work, concurrency)
            cpu = cpu_seconds(me) - cpu0
            received = standin.received()
            check_received(received, len(work), paths, f"floor {kind} x{concurrency}")
            found.append(Drain(f"{kind} x{concurrency}", [r["at"] - start for r in received], cpu))
            print(found[-1].row(), flush=True)
    return found


def measure_apprise(
    standin: StandIn, accounts: int, posts: int, sequential_posts: int
) -> list[Drain]:
    import apprise

    port = standin.url.rsplit(":", 1)[1]
    found = []
    # one post at a time, each to its account's URL: how a scheduler would call Apprise
    standin.clear()
    per_account = {}
    for a in range(accounts):
        per_account[a] = apprise.Apprise()
        per_account[a].add(f"json://127.0.0.1:{port}/hook/apprise-{account(a)}")
    order = [(p, a) for p in range(posts) for a in range(accounts)][:sequential_posts]
    start = time.time()
    for p, a in order:
        if not per_account[a].notify(body=POST_TEXT.format(n=p), title=""):
            raise Broken("Apprise failed to notify the stand-in")
    received = standin.received()
    check_received(received, len(order), min(accounts, len(order)), "Apprise one at a time")
    lateness = [r["at"] - start for r in received]
    scale = accounts * posts / len(order)
    found.append(
        Drain(
            f"Apprise, one at a time ({len(order)} posts)",
            lateness,
            note=f"= {len(order) / max(lateness):.1f} posts/s; x{scale:g}: "
            f"{max(lateness) * scale:.1f} s for {accounts * posts:,}",
        )
    )
    print(found[-1].row(), flush=True)
    # each post's text is the same on every account: one notify() of 200 URLs per post,
    # which Apprise spreads over its own thread pool
    standin.clear()
    everyone = apprise.Apprise()
    for a in range(accounts):
        everyone.add(f"json://127.0.0.1:{port}/hook/apprise-{account(a)}")
    start = time.time()
    for p in range(posts):
        if not everyone.notify(body=POST_TEXT.format(n=p), title=""):
            raise Broken("Apprise failed to notify the stand-in")
    received = standin.received()
    check_received(received, accounts * posts, accounts, "Apprise, one notify per post")
    found.append(
        Drain(f"Apprise, {posts} notify() x {accounts} URLs", [r["at"] - start for r in received])
    )
    print(found[-1].row(), flush=True)
    return found


FANOUT_CAMPAIGN = """\
name: fanout
title: Fan-out benchmark
timezone: UTC
accounts: [{accounts}]
posts:
{posts}"""


def write_fanout(root: Path, url: str, accounts: int, posts: int, due: datetime) -> None:
    (root / "campaigns").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    names = [account(a) for a in range(accounts)]
    (root / "accounts.yaml").write_text(
        "".join(
            f"{name}:\n  platform: webhook\n  url: {url}/hook/{name}\n  pace: 0\n" for name in names
        ),
        encoding="utf-8",
    )
    body = "".join(
        f'  - id: p{p}\n    at: {due:%Y-%m-%d %H:%M:%S}\n    text: "{POST_TEXT.format(n=p)}"\n'
        for p in range(posts)
    )
    (root / "campaigns" / "fanout.yaml").write_text(
        FANOUT_CAMPAIGN.format(accounts=", ".join(names), posts=body), encoding="utf-8"
    )


@dataclass
class DaemonRun:
    workers: int
    drain: Drain
    ready: float  # seconds from spawning to ready
    lead: float  # seconds from ready to the due instant
    stand_in_cpu: float
    floor: float = math.nan  # drain of the floor measured in the same round


def run_fanout_daemon(
    standin: StandIn, accounts: int, posts: int, workers: int, lead: float
) -> DaemonRun:
    n = accounts * posts
    standin.clear()
    with tempfile.TemporaryDirectory(prefix="solidarity-fanout-") as tmp:
        root = Path(tmp)
        due_epoch = math.ceil(time.time() + lead)
        due = datetime.fromtimestamp(due_epoch, UTC)
        write_fanout(root, standin.url, accounts, posts, due)
        env = environment(root, workers)
        daemon = Daemon.spawn(root, env)
        try:
            ready = daemon.wait_ready()
            ready_lead = due_epoch - time.time()
            if ready_lead < 0.5:
                print(f"  (warning: ready only {ready_lead:.2f} s before the due instant)")
            proc = psutil.Process(daemon.process.pid)
            time.sleep(max(0.0, due_epoch - time.time() - 0.3))
            cpu0, standin_cpu0 = cpu_seconds(proc), cpu_seconds(standin.ps)
            alive = lambda: daemon.process.poll() is None  # noqa: E731
            if not standin.wait_for(n, timeout=max(lead, 0) + 180, alive=alive):
                raise Broken(
                    f"workers={workers}: the stand-in got {standin.count()} of {n} requests\n"
                    + daemon.log_tail()
                )
            cpu, standin_cpu = cpu_seconds(proc) - cpu0, cpu_seconds(standin.ps) - standin_cpu0
            status = daemon.stop()
        finally:
            daemon.kill()
        if status != 0:
            raise Broken(f"workers={workers}: exit status {status}\n{daemon.log_tail()}")
        rows = history(root, env)
        sent = sum(1 for r in rows if r["status"] == "sent")
        if sent != n or len(rows) != n:
            statuses = sorted({r["status"] for r in rows})
            raise Broken(f"workers={workers}: {sent} sent of {len(rows)} rows ({statuses})")
        errors = [m for m in daemon.messages() if m.get("level") in ("ERROR", "CRITICAL")]
        if errors:
            raise Broken(f"workers={workers}: the daemon logged errors: {errors[:3]}")
    received = standin.received()
    check_received(received, n, accounts, f"daemon workers={workers}")
    keys = {r["headers"].get("x-solidarity-key") for r in received}
    if len(keys) != n:
        raise Broken(f"workers={workers}: {n - len(keys)} occurrences arrived twice")
    drain = Drain(
        f"solidarity run, workers={workers}", [r["at"] - due_epoch for r in received], cpu
    )
    return DaemonRun(workers, drain, ready, ready_lead, standin_cpu)


def fanout(args: argparse.Namespace) -> None:
    accounts, posts = args.accounts, args.posts
    n = accounts * posts
    print(f"fan-out: {n:,} occurrences due at one instant, {accounts} accounts x {posts} posts,")
    print(f"stand-in answers after {args.latency * 1000:.0f} ms ({machine()})")
    print("lateness: due instant (or loop start) to the stand-in receiving the request, seconds")
    standin = StandIn(args.latency)
    paired: list[Drain] = []  # the floor measured again beside each round of daemon runs
    ours: list[Drain] = []
    try:
        work = jobs(accounts, posts)
        print("floor: bare httpx, same requests, same stand-in")
        floors = measure_floor(standin, work, args.floor, accounts)
        floor = min(floors, key=lambda d: d.drain)
        concurrency = int(floor.label.rsplit("x", 1)[1])
        print(f"  best floor: {floor.label}, drain {floor.drain:.3f} s")
        if floor.label.endswith(f"x{max(args.floor)}"):
            print("  (the best is the highest concurrency tried: try higher with --floor)")
        if args.apprise_posts:
            print("peer: Apprise (json:// URLs to the same stand-in)")
            measure_apprise(standin, accounts, posts, args.apprise_posts)
        print(
            "solidarity run (SOLIDARITY_WORKERS sweep; fresh SQLite ledger each run), each round"
            f" after the floor ({floor.label.rsplit(' ', 1)[0]} x{concurrency}) measured again"
        )
        runs: dict[int, list[DaemonRun]] = {}
        for _ in range(args.repeat):
            again = measure_floor(
                standin,
                work,
                [concurrency],
                accounts,
                kinds=(floor.label.rsplit(" x", 1)[0], "daemon's HTTP stack, threads"),
            )
            paired.append(again[0])
            ours.append(again[1])
            for workers in args.workers:
                run = run_fanout_daemon(standin, accounts, posts, workers, args.lead)
                run.floor = again[0].drain
                runs.setdefault(workers, []).append(run)
                print(
                    run.drain.row()
                    + f"  (ready {run.ready:.2f} s, stand-in cpu {run.stand_in_cpu:.2f} s)",
                    flush=True,
                )
    finally:
        standin.stop()
    print()
    floor_drain = statistics.median(d.drain for d in paired)
    ours_drain = statistics.median(d.drain for d in ours)
    print(f"summary over {args.repeat} round(s) (medians; each run against its round's floor):")
    print(f"  floor       ({floor.label}) drain {floor_drain:6.3f} s")
    print(f"  same requests on the daemon's HTTP stack, bare: drain {ours_drain:6.3f} s")
    best_workers, best_ratio = None, math.inf
    for workers, found in runs.items():
        drain = statistics.median(r.drain.drain for r in found)
        ratio = statistics.median(r.drain.drain / r.floor for r in found)
        p50 = statistics.median(pct(r.drain.lateness, 50) for r in found)
        p99 = statistics.median(pct(r.drain.lateness, 99) for r in found)
        print(
            f"  workers={workers:<4} p50 {p50:6.3f} s  p99 {p99:6.3f} s  drain {drain:6.3f} s"
            f"  = {ratio:4.2f}x floor"
        )
        if ratio < best_ratio:
            best_workers, best_ratio = workers, ratio
    assert best_workers is not None
    best = runs[best_workers]
    p99_margin = statistics.median(pct(r.drain.lateness, 99) - r.floor for r in best)
    print(f"best worker count: {best_workers}")
    verdict(
        "drain within 1.35x the floor",
        f"{best_ratio:.2f}x",
        best_ratio <= 1.35,
    )
    verdict(
        "p99 lateness under floor drain + 0.5 s",
        f"floor drain {p99_margin:+.3f} s",
        p99_margin < 0.5,
    )


def verdict(target: str, figure: str, met: bool) -> None:
    print(f"  target {target:<40} {figure:<28} {'met' if met else 'MISSED'}")


# -- realistic campaigns (idle, start-up) -----------------------------------------------------

CAMPAIGN = """\
# like campaigns/newsroom-to-cell.yaml: four people, four posts, per-platform templates
name: newsroom-to-cell-{i:03d}
title: "Azerbaijan: From Newsroom to Cell ({i})"
timezone: {zone}
starts: {starts}
language: en
accounts: [hr-mastodon, hr-bluesky, hr-telegram]

vars:
  report_title: "Azerbaijan: From Newsroom to Cell"
  report_url: https://www.amnesty.org/en/documents/eur55/0128/2025/en/?c={i}
  country: Azerbaijan
  tags: "#PressFreedom #Azerbaijan"

people:
  - id: sevinj
    name: Sevinj Vagifgizi {i}
    detained_on: 2023-11-21
    released_on: null
    vars:
      role: editor-in-chief of Abzas Media
  - id: nargiz
    name: Nargiz Absalamova {i}
    vars:
      role: journalist at Abzas Media
      detained: in November 2023
  - id: fatima
    name: Fatimə Movlamli {i}
    vars:
      role: journalist held in the Meydan TV case
      detained: in 2025
  - id: ulviyya
    name: Ulviyya Ali {i}
    detained_on: 2025-05-07
    vars:
      role: reporter held in the Meydan TV case

posts:
  - id: report-launch
    at: {launch}
    template: report-launch
    link_card:
      url: https://www.amnesty.org/en/documents/eur55/0128/2025/en/
      title: "Azerbaijan: From Newsroom to Cell"
      description: Amnesty International's report on journalists jailed in Azerbaijan.
  - id: daily-spotlight
    cron: "{minute} {hour} * * *"
    template: spotlight
    rotate: people
  - id: weekly-action
    cron: "{minute} {hour} * * 5"
    template: call-to-action
  - id: toplum-media
    cron: "{minute} {hour} 1 * *"
    template: toplum-media
"""

ACCOUNTS = """\
hr-mastodon:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${MASTODON_ACCESS_TOKEN}
hr-bluesky:
  platform: bluesky
  service: http://127.0.0.1:9
  handle: example.bsky.social
  app_password: ${BLUESKY_APP_PASSWORD}
hr-telegram:
  platform: telegram
  api: http://127.0.0.1:9
  bot_token: ${TELEGRAM_BOT_TOKEN}
  chat: "@example_channel"
"""

SECRETS = {
    "MASTODON_ACCESS_TOKEN": "bench-mastodon-token",
    "BLUESKY_APP_PASSWORD": "bench-app-password",
    "TELEGRAM_BOT_TOKEN": "123456789:AAbenchbenchbenchbenchbenchbenchbench",
}


def write_campaigns(root: Path, campaigns: int) -> None:
    """Realistic campaigns whose every post falls due hours from now (nothing due soon)."""
    (root / "campaigns").mkdir()
    shutil.copytree(ROOT / "templates", root / "templates")
    (root / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    zones = ["Asia/Baku", "Europe/London", "America/New_York", "UTC"]
    for i in range(campaigns):
        zone = zones[i % len(zones)]
        local = datetime.now(UTC).astimezone(_zone(zone))
        # starting tomorrow, at a time of day 6 hours from now: nothing fell due in the
        # catch-up window (no rows to write at start-up) and nothing falls due for hours
        far = (local + timedelta(hours=6)).replace(minute=15 * (i % 4))
        starts = (local + timedelta(days=1)).date().isoformat()
        launch = (local + timedelta(days=200)).strftime("%Y-%m-%d 10:00")
        (root / "campaigns" / f"c{i:03d}.yaml").write_text(
            CAMPAIGN.format(
                i=i, zone=zone, starts=starts, launch=launch, hour=far.hour, minute=far.minute
            ),
            encoding="utf-8",
        )


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


@contextlib.contextmanager
def project(campaigns: int) -> Iterator[tuple[Path, dict[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="solidarity-bench-") as tmp:
        root = Path(tmp)
        write_campaigns(root, campaigns)
        env = environment(root, None, **SECRETS)
        check = subprocess.run(
            [*solidarity_command(), "validate", "--days", "1"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise Broken(f"the generated campaigns do not validate:\n{check.stdout}{check.stderr}")
        yield root, env


def idle(args: argparse.Namespace) -> None:
    print(f"idle: {args.campaigns} campaigns loaded, nothing due; {args.seconds:g} s ({machine()})")
    with project(args.campaigns) as (root, env):
        daemon = Daemon.spawn(root, env)
        try:
            ready = daemon.wait_ready()
            proc = psutil.Process(daemon.process.pid)
            time.sleep(args.settle)
            rss_start = proc.memory_info().rss
            cpu0, t0 = cpu_seconds(proc), time.monotonic()
            peak = rss_start
            deadline = t0 + args.seconds
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                if daemon.process.poll() is not None:
                    raise Broken(f"the daemon exited while idle:\n{daemon.log_tail()}")
                peak = max(peak, proc.memory_info().rss)
            cpu, wall = cpu_seconds(proc) - cpu0, time.monotonic() - t0
            rss, threads = proc.memory_info().rss, proc.num_threads()
            status = daemon.stop()
        finally:
            daemon.kill()
        if status != 0:
            raise Broken(f"exit status {status} on SIGTERM:\n{daemon.log_tail()}")
        sends = [m for m in daemon.messages() if str(m.get("message", "")).startswith("delivery")]
        if sends:
            raise Broken(f"something fell due while idle: {sends[0]}")
    mb = 1024 * 1024
    percent = 100 * cpu / wall
    print(f"  ready after {ready:.2f} s; measured from {args.settle:g} s after ready")
    print(
        f"  resident memory  {rss / mb:6.1f} MB (at start {rss_start / mb:.1f}, peak {peak / mb:.1f})"
    )
    print(f"  CPU              {percent:6.3f} % of one core ({cpu:.3f} s over {wall:.1f} s)")
    print(f"  threads          {threads}")
    verdict("resident memory under 80 MB", f"{peak / mb:.1f} MB", peak < 80 * mb)
    verdict("CPU under 1% of a core", f"{percent:.3f} %", percent < 1)


def startup(args: argparse.Namespace) -> None:
    print(f"start-up: spawning `solidarity run` to its ready line, {args.campaigns} campaigns")
    print(f"({machine()})")
    times: list[float] = []
    inside: list[float] = []
    with project(args.campaigns) as (root, env):
        for i in range(args.repeat + 1):  # the first start creates the ledger
            daemon = Daemon.spawn(root, env)
            try:
                took = daemon.wait_ready()
                status = daemon.stop()
            finally:
                daemon.kill()
            if status != 0:
                raise Broken(f"exit status {status} on SIGTERM:\n{daemon.log_tail()}")
            said = next(m for m in daemon.messages() if READY in str(m.get("message")))
            own = float(str(said["message"]).split(READY, 1)[1].split("s", 1)[0])
            label = "first start (new ledger)" if i == 0 else f"start {i}"
            print(f"  {label:<26} {took:6.3f} s  (the daemon's own 'ready in' {own:.2f} s)")
            if i:
                times.append(took)
                inside.append(own)
    median = statistics.median(times)
    print(
        f"  median {median:.3f} s, best {min(times):.3f} s over {len(times)} starts with a ledger"
        f" (of which start-up settling and planning: median {statistics.median(inside):.2f} s)"
    )
    verdict("ready under 2 s (median)", f"{median:.3f} s", median < 2)


# -- where the time goes (for a missed target) ------------------------------------------------

STARTUP_PHASES = r"""
import os, sys, time
from datetime import UTC, datetime
from pathlib import Path
marks = [time.perf_counter()]
from scheduler import cli  # what the `solidarity` command imports before parsing
marks.append(time.perf_counter())
from scheduler import daemon as d  # what `run` imports: dispatch, ledger, SQLAlchemy, httpx
marks.append(time.perf_counter())
from scheduler.config import Settings, environment
from scheduler.ledger import Ledger
from scheduler.project import load_project
e = os.environ
settings = Settings(Path(e["SOLIDARITY_CAMPAIGNS"]), Path(e["SOLIDARITY_TEMPLATES"]),
                    Path(e["SOLIDARITY_ACCOUNTS"]), e["SOLIDARITY_DATABASE_URL"])
project = load_project(settings, environment())
marks.append(time.perf_counter())
assert not d.problems_of(project, datetime.now(UTC))
marks.append(time.perf_counter())
ledger = Ledger.open(settings.db)
marks.append(time.perf_counter())
clockwork = d.SchedulerClockwork(lambda: datetime.now(UTC))
daemon = d.Daemon(project, ledger, clockwork)
marks.append(time.perf_counter())
daemon.start()
clockwork.start()
import watchfiles
marks.append(time.perf_counter())
clockwork.shutdown()
daemon.lanes.stop(1)
print(" ".join(f"{b - a:.4f}" for a, b in zip(marks, marks[1:])))
"""

PHASES = [
    "import the CLI (click, pydantic, Jinja2, PyYAML, campaigns)",
    "import the daemon's side (SQLAlchemy, httpx, ledger)",
    "load_project: read and check the YAML files",
    "problems_of: render every post over a day, plan crons",
    "open the ledger (Alembic: is the schema current?)",
    "Daemon(): APScheduler, lanes, worker threads",
    "start: catch-up, next wake, scheduler, watchfiles",
]


def breakdown_startup(campaigns: int, repeat: int) -> None:
    print(
        f"start-up, phase by phase, {campaigns} campaigns (fresh interpreter; median of {repeat})"
    )
    with project(campaigns) as (root, env):
        spawn = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            spawn.append(time.perf_counter() - t0)
        print(f"  {'interpreter start (python -c pass)':<58} {statistics.median(spawn):6.3f} s")
        rows: list[list[float]] = []
        for _ in range(repeat):
            done = subprocess.run(
                [sys.executable, "-c", STARTUP_PHASES],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise Broken(f"the start-up phases failed:\n{done.stderr}")
            rows.append([float(x) for x in done.stdout.split()])
        for i, label in enumerate(PHASES):
            print(f"  {label:<58} {statistics.median(r[i] for r in rows):6.3f} s")
        total = statistics.median(spawn) + sum(
            statistics.median(r[i] for r in rows) for i in range(len(PHASES))
        )
        print(f"  {'sum':<58} {total:6.3f} s")


def breakdown_post(n_accounts: int, posts: int) -> None:
    """CPU per post of each piece of a daemon's delivery, one thread, no contention."""
    import io
    import logging

    from scheduler import daemon as d
    from scheduler import dispatch, logs
    from scheduler.config import Settings
    from scheduler.ledger import Ledger
    from scheduler.planning import plan_post
    from scheduler.project import load_project

    n = n_accounts * posts
    print(f"one delivery, piece by piece: CPU ms per post ({n:,} posts, one thread, no latency)")
    standin = StandIn(0.0)
    costs: dict[str, float] = {}

    def timed(label: str, count: int, fn: Callable[[], object]) -> None:
        c0 = time.process_time()
        fn()
        costs[label] = (time.process_time() - c0) * 1000 / count

    try:
        with tempfile.TemporaryDirectory(prefix="solidarity-breakdown-") as tmp:
            root = Path(tmp)
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
            write_fanout(root, standin.url, n_accounts, posts, due)
            settings = Settings(
                root / "campaigns",
                root / "templates",
                root / "accounts.yaml",
                f"sqlite:///{root / 'ledger.db'}",
            )
            project = load_project(settings, {})
            ledger = Ledger.open(settings.db)
            clock = lambda: due  # noqa: E731
            daemon = d.Daemon(project, ledger, d.ManualClockwork(clock), workers=0)
            lc = project.campaigns[0]
            c = lc.campaign
            posts_by_id = {p.id: p for p in c.posts}
            occs = [
                o
                for p in c.posts
                for o in plan_post(
                    c, p, due.astimezone(c.tz), due.astimezone(c.tz) + timedelta(seconds=1)
                )
            ]
            claims = [dispatch.claim_for(o, project.accounts[o.account]) for o in occs]
            by_key = {o.key: o for o in occs}
            found: list[Any] = []
            timed(
                "_locate (plan the occurrence again, after an edit)",
                n,
                lambda: found.extend(daemon._locate(c) for c in claims),
            )
            messages: list[Any] = []
            timed(
                "render the text",
                n,
                lambda: messages.extend(
                    project.renderer.message(
                        lc, posts_by_id[o.post], o, project.accounts[o.account]
                    )
                    for o in (by_key[c.key] for c in claims)
                ),
            )
            adapters: list[Any] = []
            timed(
                f"httpx.Client per account ({n_accounts} clients, ms per post)",
                n,
                lambda: adapters.extend(
                    daemon.dispatcher.adapter(a) for a in project.accounts.values()
                ),
            )
            entries: list[Any] = []
            timed(
                "ledger.claim_sending + ledger.sent (2 transactions)",
                n,
                lambda: [
                    entries.append(
                        ledger.sent(
                            ledger.claim_sending(c, ("x",), due, "bench").id, ["1"], None, due
                        )
                    )
                    for c in claims
                ],
            )
            outs = [
                dispatch.outgoing(
                    project, lc, posts_by_id[by_key[e.key].post], by_key[e.key], m.parts, due
                )
                for e, m in zip(entries, messages, strict=True)
            ]
            timed(
                "publish: the HTTP request (the daemon's HTTP stack, keep-alive)",
                n,
                lambda: [
                    daemon.dispatcher.adapter(project.accounts[e.account]).publish(out)
                    for e, out in zip(entries, outs, strict=True)
                ],
            )
            # the HTTP request alone, the same POST each time, beside the pieces (not summed)
            reference: dict[str, float] = {}
            hook = standin.url + "/hook/bench"
            body = payload("bench", "Günay Ismayıl, day 412")
            json_type = {"Content-Type": "application/json"}
            stacks: dict[str, Callable[[], httpx.Client]] = {
                "bare httpx.Client (its default transport, cookie jar)": lambda: httpx.Client(
                    timeout=httpx.Timeout(30.0, connect=10.0)
                ),
                "the daemon's HTTP stack (dispatch.http_client)": lambda: dispatch.http_client(
                    next(iter(project.accounts.values()))
                ),
            }
            for label, make in stacks.items():
                with make() as http_client:
                    for _ in range(20):  # connect and warm up, not counted
                        http_client.post(hook, content=body, headers=json_type)
                    c0 = time.process_time()
                    for _ in range(n):
                        http_client.post(hook, content=body, headers=json_type).raise_for_status()
                    reference[label] = (time.process_time() - c0) * 1000 / n
            logs.configure("json", stream=io.StringIO())
            final = [ledger.get(e.key) for e in entries]
            timed(
                "log the delivery (JSON, redacted)",
                n,
                lambda: [dispatch.log_delivery(e, 0.1) for e in final if e],
            )
            logging.getLogger().handlers.clear()
            ledger.close()
    finally:
        standin.stop()
    for label, ms in costs.items():
        print(f"  {label:<58} {ms:7.3f} ms")
    total = sum(costs.values())
    print(f"  {'sum':<58} {total:7.3f} ms  = {total * n / 1000:.1f} s of CPU for {n:,} posts")
    print("the HTTP request alone (one JSON POST, keep-alive), CPU ms per request:")
    for label, ms in reference.items():
        print(f"  {label:<58} {ms:7.3f} ms")


def breakdown(args: argparse.Namespace) -> None:
    breakdown_startup(args.campaigns, args.starts)
    print()
    breakdown_post(args.accounts, args.posts)


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    global PROFILE_DIR, PROFILE_CLOCK
    if sys.argv[1:2] == ["profiled"]:  # internal: the daemon under cProfile (--profile)
        profiled(Path(sys.argv[2]), sys.argv[3], sys.argv[4:])
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fan = commands.add_parser("fanout", help="1,000 occurrences due at one instant")
    for p in (fan, commands.add_parser("all", help="fanout, idle and startup in turn")):
        p.add_argument("--accounts", type=int, default=200)
        p.add_argument("--posts", type=int, default=5, help="per account")
        p.add_argument("--latency", type=float, default=0.05, help="the stand-in's, seconds")
        p.add_argument("--workers", type=numbers, default=[8, 20, 40, 80], help="e.g. 8,20,40")
        p.add_argument("--repeat", type=int, default=3, help="runs per worker count")
        p.add_argument(
            "--floor", type=numbers, default=[10, 20, 40, 80, 160], help="concurrencies to try"
        )
        p.add_argument(
            "--apprise-posts",
            type=int,
            default=200,
            help="posts Apprise sends one at a time (scaled to the whole; 0: skip Apprise)",
        )
        p.add_argument("--lead", type=float, default=6.0, help="seconds from spawn to due")
    idle_parser = commands.add_parser("idle", help="memory and CPU with nothing due")
    startup_parser = commands.add_parser("startup", help="spawn to ready")
    breakdown_parser = commands.add_parser(
        "breakdown", help="where the time goes: start-up phases, CPU per delivered post"
    )
    breakdown_parser.add_argument("--campaigns", type=int, default=100)
    breakdown_parser.add_argument("--starts", type=int, default=5)
    breakdown_parser.add_argument("--accounts", type=int, default=200)
    breakdown_parser.add_argument("--posts", type=int, default=5)
    for p in commands.choices.values():
        p.add_argument(
            "--profile",
            type=Path,
            metavar="DIR",
            help="run the daemon under cProfile (all threads); write DIR/daemon-PID-CLOCK.prof",
        )
        p.add_argument(
            "--profile-clock",
            choices=["wall", "cpu"],
            default="wall",
            help="wall: waits count too; cpu: each thread's CPU time",
        )
    for p in (idle_parser, commands.choices["all"]):
        p.add_argument("--seconds", type=float, default=60.0)
        p.add_argument("--settle", type=float, default=1.0, help="seconds after ready, unmeasured")
        p.add_argument("--idle-campaigns", dest="idle_campaigns", type=int, default=50)
    idle_parser.add_argument("--campaigns", type=int, default=50)
    startup_parser.add_argument("--campaigns", type=int, default=100)
    for p in (startup_parser, commands.choices["all"]):
        p.add_argument("--starts", dest="starts", type=int, default=7)
    args = parser.parse_args()
    PROFILE_DIR = getattr(args, "profile", None)
    PROFILE_CLOCK = getattr(args, "profile_clock", "wall")
    try:
        if args.command == "breakdown":
            breakdown(args)
        if args.command in ("fanout", "all"):
            fanout(args)
        if args.command in ("idle", "all"):
            if args.command == "all":
                print()
                args.campaigns = args.idle_campaigns
            idle(args)
        if args.command in ("startup", "all"):
            if args.command == "all":
                print()
                args.campaigns = 100
            args.repeat = args.starts
            startup(args)
    except Broken as exc:
        print(f"broken run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
