"""What bench/scale.py and bench/ledger_scale.py share: a throwaway PostgreSQL and its CPU,
the daemons as processes, the commit measured, a ledger of realistic shape, and a thin
adapter over the ledger's API (which is changing: ``sent`` taking the ``Entry`` instead
of its id, rows gaining ``lease_until``): the one place to follow such a change."""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from daemon import Broken, Daemon, solidarity_command  # bench/daemon.py, beside this file

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # last: PYTHONPATH may name another checkout's scheduler
    sys.path.append(str(ROOT))


# -- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def pg_server() -> Iterator[Any]:
    """Start a throwaway PostgreSQL (tests/pgserver.py: fsync off, loopback) and stop it after."""
    from tests.pgserver import PgServer

    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def postmaster(server: Any) -> psutil.Process:
    """The server's postmaster (its pid is the first line of postmaster.pid)."""
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


def server_cpu(server: Any) -> float:
    """CPU seconds (user + system) of the whole server: postmaster, live and reaped backends."""
    master = postmaster(server)
    t = master.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in master.children():
        with contextlib.suppress(psutil.Error):
            c = child.cpu_times()
            total += c.user + c.system
    return float(total)


# -- daemons on PostgreSQL -------------------------------------------------------------------


def spawn(root: Path, env: dict[str, str], url: str) -> Daemon:
    """`solidarity run --db URL --log-format json`, its log lines read as they come."""
    spawned = time.perf_counter()
    process = subprocess.Popen(
        [*solidarity_command(), "run", "--db", url, "--log-format", "json"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    daemon = Daemon(process, spawned)
    threading.Thread(target=daemon._read, daemon=True).start()
    return daemon


def wait(daemon: Daemon, timeout: float = 30) -> int:
    """The exit status of a daemon already sent SIGTERM (a second signal is not sent)."""
    try:
        return daemon.process.wait(timeout)
    except subprocess.TimeoutExpired:
        daemon.kill()
        raise Broken(f"a daemon did not stop on SIGTERM:\n{daemon.log_tail()}") from None


def owner_pid(owner: str, host: str) -> int | None:
    """The pid in an owner of this host: "host:pid", "host:pid:token", "host@pidns:pid:token"."""
    fields = owner.split(":")
    mine = fields[0].split("@")[0] == host and len(fields) > 1 and fields[1].isdigit()
    return int(fields[1]) if mine else None


def sent_by_owner(server: Any, url: str) -> Counter[tuple[str, str]]:
    """(owner, status) -> rows, read from the database itself."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(server.dsn(dbname)) as connection:
        rows = connection.execute(
            "SELECT coalesce(owner, ''), status, count(*) FROM deliveries GROUP BY 1, 2"
        ).fetchall()
    return Counter({(o, s): int(c) for o, s, c in rows})


def keep_logs(daemons: list[Daemon]) -> str:
    with tempfile.NamedTemporaryFile(
        "w", prefix="solidarity-scale-", suffix=".log", delete=False
    ) as log:
        for i, d in enumerate(daemons):
            log.write(f"== daemon {i + 1} (pid {d.process.pid})\n")
            log.writelines(line for _, line in d.lines)
    return log.name


# -- what was measured -----------------------------------------------------------------------


def commit(tree: Path = ROOT) -> str:
    """The checkout measured: HEAD's short hash, and how many files under scheduler/ differ."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True)
        return done.stdout.strip()

    changed = [line for line in git("status", "--short", "--", "scheduler").splitlines() if line]
    return f"{tree}: HEAD {git('rev-parse', '--short', 'HEAD')}" + (
        f" with {len(changed)} changed file(s) under scheduler/" if changed else ""
    )


# -- the ledger, through one thin adapter ----------------------------------------------------


class LedgerAdapter:
    """Call the ledger's writes and reads whatever their current signatures."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        params = list(inspect.signature(ledger.sent).parameters)
        # sent(entry_id, ...) today; sent(entry, ...) once leases land
        self._sent_takes_entry = bool(params) and params[0] in ("entry", "row")

    def claim_sending(self, claim: Any, parts: Sequence[str], now: datetime, owner: str) -> Any:
        return self.ledger.claim_sending(claim, tuple(parts), now, owner)

    def sent(self, entry: Any, remote_ids: Sequence[str], url: str | None, now: datetime) -> Any:
        first = entry if self._sent_takes_entry else entry.id
        return self.ledger.sent(first, list(remote_ids), url, now)

    def claim(self, key: str, campaign: str, post: str, account: str, when: datetime) -> Any:
        from scheduler.ledger import Claim

        return Claim(key, campaign, post, account, "webhook", None, when)

    def recent(self, campaign: str, post: str, account: str, now: datetime) -> Any:
        """``send``'s guard: did this post go to this account in the last 24 hours?"""
        from scheduler.manual import recent
        from scheduler.planning import Occurrence

        occ = Occurrence(campaign, post, account, now, None, 0)
        return recent(self.ledger, occ, False, now)

    def pages(self, **which: Any) -> list[Any] | None:
        """Every row ``history`` prints, read as it reads them (None: no paged reads yet)."""
        try:
            from scheduler.ledgerpages import pages
        except ImportError:
            return None
        return [e for page in pages(self.ledger, **which) for e in page]

    def status_rows(self, campaigns: list[str]) -> list[Any] | None:
        """The rows ``status`` reads of these campaigns (None: it reads every row instead)."""
        try:
            from scheduler.statusrows import status_rows
        except ImportError:
            return None
        import inspect
        from datetime import UTC, datetime

        if "now" in inspect.signature(status_rows).parameters:  # since 5f29ef5: recent refusals
            return status_rows(self.ledger, campaigns, datetime.now(UTC)).entries
        return status_rows(self.ledger, campaigns).entries  # type: ignore[call-arg]

    def table(self) -> Any:
        """The deliveries table as the ledger declares it."""
        from scheduler.ledger import TABLE

        return TABLE

    def columns(self) -> dict[str, Any]:
        """The deliveries table's columns, by name."""
        return {c.name: c for c in self.table().c}


def check_adapter(url: str) -> str:
    """Claim, send and read back one occurrence on a new ledger; say what was checked."""
    from datetime import UTC

    from scheduler.ledger import Ledger

    now = datetime.now(UTC).replace(microsecond=0)
    ledger = Ledger.open(url)
    try:
        me = LedgerAdapter(ledger)
        claim = me.claim("check/p/w000/2000-01-01T00:00:00Z/-", "check", "p", "w000", now)
        entry = me.claim_sending(claim, ["text"], now, "bench:1")
        assert entry is not None, "a fresh claim was refused"
        done = me.sent(entry, ["1"], "https://example.org/1", now)
        assert done.status == "sent", done
        assert me.claim_sending(claim, ["text"], now, "bench:2") is None, "claimed twice"
        assert [e.key for e in ledger.history(since=now)] == [claim.key], "history"
        assert [e.key for e in ledger.in_flight()] == [], "a sent row is in flight"
        me.recent("check", "p", "w000", now)  # send's guard runs
        extra = sorted(set(me.columns()) - KNOWN_COLUMNS)
        how = "sent(entry, ...)" if me._sent_takes_entry else "sent(entry_id, ...)"
        return f"ok: {how}; columns the filler leaves to their defaults: {extra or 'none'}"
    finally:
        ledger.close()


KNOWN_COLUMNS = frozenset(  # the columns ``rows`` fills; others are left to their defaults
    {
        *("id", "key", "campaign", "post", "account", "platform", "person", "scheduled_for"),
        *("status", "parts", "remote_id", "remote_url", "remote_ids", "attempts", "error"),
        *("reason", "owner", "created_at", "updated_at", "sent_at", "next_attempt_at"),
    }
)


# -- a ledger of realistic shape, filled fast --------------------------------------------------

RATE = 1_000_000 / (5 * 365.25 * 86400)  # rows a second: a million over five years
CAMPAIGNS, ACCOUNTS, IN_FLIGHT_ROWS = 200, 600, 300
POSTS = ["daily-spotlight"] * 6 + ["weekly-action"] * 2 + ["monthly-report", "note"]
PLATFORMS = ["mastodon", "bluesky", "telegram"]
# the final statuses' shares (the rest of 1.0 is sent); the newest rows are in flight
SHARES = {"failed": 0.015, "missed": 0.015, "skipped": 0.015, "held": 0.005, "uncertain": 0.005}
WORDS = {
    "failed": ("error", "HTTP 422: Validation failed: Text character limit of 500 exceeded"),
    "uncertain": ("error", "timed out after the request went out; no read-back found it"),
    "missed": ("reason", "due while no daemon ran, past its grace (15m)"),
    "skipped": ("reason", "the campaign is paused"),
    "held": ("reason", "held: --why the partner asked us to wait (solidarity hold)"),
}


def campaign_name(c: int) -> str:
    return f"campaign-{c:03d}"


def account_name(a: int) -> str:
    return f"acct-{a:03d}"


def rows(n: int, now: datetime, seed: int = 12) -> Iterator[dict[str, Any]]:
    """N rows as the ledger would hold them, the newest scheduled just before ``now``.

    A ledger that has grown at the same pace for ``n / RATE`` seconds (10,000 rows:
    18 days; 1,000,000: five years), so that "since yesterday" and "in flight" find
    the same rows at every size. Each occurrence goes to its campaign's three
    accounts at one instant; the newest IN_FLIGHT_ROWS are claimed, sending or
    retrying, of an owner that is gone.
    """
    import json
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    groups = -(-n // 3)
    step = n / RATE / groups
    first = now - timedelta(seconds=n / RATE)
    made = 0
    for g in range(groups):
        when = (first + timedelta(seconds=g * step)).replace(second=0, microsecond=0)
        c = (g * 7) % CAMPAIGNS
        post = POSTS[g % len(POSTS)]
        person = f"person-{g % 4}" if post == "daily-spotlight" else None
        text = (
            f"Day {g % 900} behind bars for {person or 'the journalists of Abzas Media'}: "
            "jailed for reporting on corruption in Azerbaijan. Share their names. "
            "https://www.amnesty.org/en/documents/eur55/0128/2025/en/ #PressFreedom"
        )
        for a in range(3 * c, 3 * c + 3):
            if made == n:
                return
            account, left = account_name(a), n - made
            key = f"{campaign_name(c)}/{post}/{account}/{when:%Y-%m-%dT%H:%M:%SZ}/{person or '-'}"
            row: dict[str, Any] = {
                "key": key,
                "campaign": campaign_name(c),
                "post": post,
                "account": account,
                "platform": PLATFORMS[a % 3],
                "person": person,
                "scheduled_for": when,
                "parts": json.dumps([text]),
                "attempts": 1,
                "owner": "gone-host:4242",
                "created_at": when,
                "updated_at": when + timedelta(seconds=2),
            }
            if left <= IN_FLIGHT_ROWS:
                row["status"] = ("claimed", "sending", "retrying")[left % 3]
                if row["status"] == "retrying":
                    row["next_attempt_at"] = now + timedelta(minutes=1)
            else:
                roll, row["status"] = rng.random(), "sent"
                for status, share in SHARES.items():
                    if roll < share:
                        row["status"] = status
                        break
                    roll -= share
            if row["status"] == "sent":
                remote = str(10**17 + made)
                row["remote_id"], row["remote_ids"] = remote, json.dumps([remote])
                row["remote_url"] = f"https://social.example/@{account}/{remote}"
                row["sent_at"] = when + timedelta(seconds=1)
            elif row["status"] in WORDS:
                column, words = WORDS[row["status"]]
                row[column] = words
            made += 1
            yield row


def fill(ledger: Any, n: int, now: datetime) -> None:
    """Write ``rows(n, now)`` into a new ledger: COPY on PostgreSQL, executemany on SQLite."""
    from datetime import UTC

    known = LedgerAdapter(ledger).columns()
    names = [name for name in KNOWN_COLUMNS if name in known and name != "id"]
    naive = {n for n in names if n.endswith(("_at", "_for"))}

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            row[k].astimezone(UTC).replace(tzinfo=None)
            if k in naive and row.get(k) is not None
            else row.get(k)
            for k in names
        )

    raw = ledger.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if ledger.engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY deliveries ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows(n, now):
                    copy.write_row(values(row))
        else:
            # SQLite keeps datetimes as text: SQLAlchemy's own format, so comparisons hold
            sql = f"INSERT INTO deliveries ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            batch: list[tuple[Any, ...]] = []
            for row in rows(n, now):
                batch.append(
                    tuple(
                        v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
                        for v in values(row)
                    )
                )
                if len(batch) == 50_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            cursor.executemany(sql, batch)
        raw.commit()
    finally:
        raw.close()


def project(root: Path, url: str, tree: Path) -> dict[str, str]:
    """Files for the commands: all 600 accounts, the last 20 campaigns still in the files."""
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "accounts.yaml").write_text(
        "".join(
            f"{account_name(a)}:\n  platform: webhook\n  url: http://127.0.0.1:9/hook/{a}\n"
            for a in range(ACCOUNTS)
        ),
        encoding="utf-8",
    )
    for c in range(CAMPAIGNS - 20, CAMPAIGNS):
        accounts = ", ".join(account_name(a) for a in range(3 * c, 3 * c + 3))
        (root / "campaigns" / f"{campaign_name(c)}.yaml").write_text(
            f"name: {campaign_name(c)}\ntitle: Campaign {c}\ntimezone: Asia/Baku\n"
            f"accounts: [{accounts}]\nposts:\n  - id: daily-spotlight\n"
            f'    cron: "0 11 * * *"\n    text: "Free the journalists of Abzas Media."\n',
            encoding="utf-8",
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(
        SOLIDARITY_CAMPAIGNS=str(root / "campaigns"),
        SOLIDARITY_TEMPLATES=str(root / "templates"),
        SOLIDARITY_ACCOUNTS=str(root / "accounts.yaml"),
        SOLIDARITY_DATABASE_URL=url,
        PYTHONPATH=str(tree),
    )
    return env
