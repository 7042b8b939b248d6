"""The holds in force for one process: file holds, and command holds read from the ledger.

Asked before every request, so it must be cheap: the ledger's holds are read at
most once per ``ttl`` (half a second), whatever the burst; a ``hold`` command
is obeyed by every daemon on that database within about a second. If the
ledger cannot be read, the last holds known stay in force; until the first read
succeeds none is known, and a kill switch may be in force: everything is held
then (a hold of its own, :data:`UNREAD`), and released by the first good read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from scheduler.errors import SolidarityError
from scheduler.holds import Hold, HoldStore

log = logging.getLogger("scheduler.daemon")

TTL = 0.5  # seconds between two reads of the ledger's holds
UNREAD = "(reading the ledger's holds)"  # the source of the hold in force until the first read


def unread() -> Hold:
    """Return the hold of everything, in force until the ledger's holds are first read."""
    why = "the ledger's holds could not be read yet"
    return Hold(None, None, None, why, datetime.now(UTC), source=UNREAD)


class HoldBook:
    """Every hold in force: the files' (set on reload) and the commands' (from the ledger)."""

    def __init__(
        self,
        store: HoldStore | None,
        *,
        ttl: float = TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.monotonic = monotonic
        self._files: tuple[Hold, ...] = ()
        self._known = store is None  # whether the ledger's holds were ever read
        # until then a kill switch may be in force: everything is held
        self._commands: tuple[Hold, ...] = () if self._known else (unread(),)
        self._read_at: float | None = None
        self._lock = threading.Lock()
        self.changes = 0  # how often the command holds were seen to change

    def set_files(self, holds: Sequence[Hold]) -> None:
        """Put the file holds of the version just loaded in force."""
        self._files = tuple(holds)

    @property
    def files(self) -> tuple[Hold, ...]:
        """Return the file holds in force."""
        return self._files

    def current(self) -> tuple[Hold, ...]:
        """Return every hold in force, reading the ledger's if the last read is ``ttl`` old."""
        read_at = self._read_at
        if read_at is None or self.monotonic() - read_at >= self.ttl:
            self.refresh(force=False)
        return self._files + self._commands

    def refresh(self, *, force: bool = True) -> bool:
        """Read the ledger's command holds now; return whether they changed."""
        if self.store is None:
            return False
        with self._lock:
            read_at = self._read_at
            if not force and read_at is not None and self.monotonic() - read_at < self.ttl:
                return False  # another thread has just read them
            try:
                found = tuple(h for h in self.store.all() if h.source == "command")
            except SolidarityError as exc:
                self._read_at = self.monotonic()
                held = "the holds known stay" if self._known else "until they are, all is held"
                log.error("reading the holds failed: %s; %s", exc, held)
                return False
            changed = _scopes(found) != _scopes(self._commands)
            self._commands, self._known = found, True
            self.changes += changed
            self._read_at = self.monotonic()  # after the holds: current() reads without the lock
            return changed


def _scopes(holds: Sequence[Hold]) -> set[tuple[str | None, ...]]:
    return {(h.campaign, h.post, h.person, h.account, h.why) for h in holds}
