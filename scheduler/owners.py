"""Who owns a row in flight, whether it still runs, and the lease a live owner renews.

A process names itself ``host:pid:token`` (the host is ``SOLIDARITY_NODE`` when
set; the token tells apart two processes that share a host name and pid, as
containers do). Every row it has in flight
carries that name and a lease (``lease_until``) that its :class:`Lease` thread
renews every ten seconds. Another process may adopt such a row only when its
owner is gone: the lease ran out, or the owner is a process on this host that no
longer runs. The adoption itself is conditional on the row as it was read, so of
several daemons finding one orphan, one adopts it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from scheduler.errors import LedgerError, SolidarityError
from scheduler.ledger import LEASE, Entry, Ledger

log = logging.getLogger("scheduler.daemon")

RENEW_EVERY = LEASE / 3  # a renewal may fail twice before the lease runs out


def node() -> str:
    """Name this host in the ledger: its name, its boot and its pid namespace.

    The name is ``SOLIDARITY_NODE`` or the host name. A pid means something only
    within one pid namespace of one running kernel: two machines may share a host
    name ("debian"), two containers a host name while each runs its daemon as
    pid 1. With the boot id and the namespace in the name, a process checks by pid
    only the owners that share both; any other owner is judged by its lease alone.
    """
    name = os.environ.get("SOLIDARITY_NODE", "").strip() or socket.gethostname()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        space = os.readlink("/proc/self/ns/pid").strip("pid:[]")  # "pid:[4026531836]"
    except OSError:  # not Linux: a pid is this machine's
        return name.replace(":", "-")
    return f"{name}@{boot}.{space}".replace(":", "-")


def owner_id() -> str:
    """Name this process in the ledger: host, pid and a token of its own."""
    return f"{node()}:{os.getpid()}:{secrets.token_hex(4)}"


def _host_and_pid(owner: str) -> tuple[str, int] | None:
    parts = owner.split(":")
    if len(parts) >= 3 and parts[-2].isdigit():
        return ":".join(parts[:-2]), int(parts[-2])
    if len(parts) >= 2 and parts[-1].isdigit():  # rows written before the token
        return ":".join(parts[:-1]), int(parts[-1])
    return None


def _local(owner: str) -> bool | None:
    """Say whether a process of this host named ``owner`` runs; None if it is not of this host."""
    found = _host_and_pid(owner)
    old = owner.count(":") == 1  # written before leases: host:pid, the bare host name
    if found is None or found[0] != (socket.gethostname() if old else node()):
        return None
    pid = found[1]
    if pid == os.getpid():
        return False  # this process did not write it (names differ): a former one did
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    try:  # a reused pid of an unrelated program is not the owner
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"solidarity" in command or b"scheduler" in command


def owner_alive(owner: str | None) -> bool:
    """Say whether another solidarity process on this host named ``owner`` still runs."""
    return bool(owner) and _local(owner or "") is True


def orphaned(entry: Entry, me: str, now: datetime) -> bool:
    """Say whether a row in flight belongs to no live process, so that ``me`` may adopt it.

    A row of this host's process that no longer runs is an orphan at once; any
    other owner's, once its lease ran out (``now`` in the clock leases are written
    in: ``Ledger.shared_time``). A row from before leases (none set) is judged by its
    process on this host, else as if its lease ran a lease after its last write.
    """
    if not entry.owner:
        return True
    if entry.owner == me:
        return False
    local = _local(entry.owner)
    if local is False:
        return True
    if entry.lease_until is None:  # written before leases: gone a lease after its last write
        return local is None and entry.updated_at + LEASE <= now
    return entry.lease_until <= now


def adopt_orphans(ledger: Ledger, me: str, now: datetime) -> list[Entry]:
    """Take over every row in flight whose owner is gone; return the rows now ``me``'s."""
    adopted = []
    now = ledger.shared_time(now)  # leases are judged by the clock they are written in
    for entry in ledger.in_flight():
        if orphaned(entry, me, now):
            mine = ledger.adopt(entry, me, now)  # None: another process adopted it first
            if mine is not None:
                adopted.append(mine)
    if adopted:
        log.info("took over %d row(s) in flight from stopped processes", len(adopted))
    return adopted


MAX_SKEW = timedelta(seconds=10)  # leases are compared across machines: clocks must agree


def check_clock(ledger: Ledger, clock: Callable[[], datetime]) -> None:
    """Refuse to run on a shared database whose server's clock this machine's disagrees with.

    Leases and turns are kept in the server's clock (``Ledger.shared_time``), but
    what falls due is decided by each daemon's own: clocks far apart would post
    one occurrence at different instants. SQLite is one machine's.
    """
    if ledger.engine.dialect.name != "postgresql":
        return
    try:
        skew = ledger.measure_skew(clock)
    except SolidarityError:
        raise
    except Exception as exc:
        raise LedgerError(f"the database's clock could not be read: {exc}") from None
    if abs(skew) > MAX_SKEW:
        raise SolidarityError(
            f"this machine's clock is {abs(skew).total_seconds():.0f} s "
            f"{'ahead of' if skew > timedelta(0) else 'behind'} the database server's; daemons "
            f"sharing a database must agree on the time within "
            f"{MAX_SKEW.total_seconds():.0f} s (set up NTP: timedatectl, chrony)"
        )


class Lease:
    """Renew the leases of this process's rows in flight, on a thread of its own.

    Its own thread, so that a burst that keeps every lane busy, or a slow
    request, never lets a live owner's lease run out. A renewal that fails (the
    database unreachable) is logged and tried again at the next turn.
    """

    def __init__(self, ledger: Ledger, owner: str, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.owner = owner
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)

    def start(self) -> Lease:
        """Start renewing, once this machine's clock is known to agree with the database's."""
        check_clock(self.ledger, self.clock)
        self._thread.start()
        return self

    def stop(self, *, release: bool) -> None:
        """Stop renewing; ``release`` (nothing is on the wire) ends the leases now."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if release:
            try:
                self.ledger.release(self.owner, self.clock())
            except SolidarityError as exc:
                log.warning("the leases of this process could not be released: %s", exc)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY.total_seconds()):
            try:
                self.ledger.measure_skew(self.clock)  # clocks drift: the server's is shared
                self.ledger.renew(self.owner, self.clock())
            except Exception as exc:  # the database may be away for a moment
                log.warning("renewing this process's leases failed: %s", exc)
