"""An account that had posts due and has posted nothing for its ``silence_alert``: tell a person.

Users of every scheduler name silent non-delivery as their worst pain: a token
expires, a platform starts refusing, and nothing says so. The watch is pure and
in memory: the daemon tells it when an account's occurrence fell due and when
one was sent; :meth:`Silence.check` says which accounts have gone silent, once
each until they post again.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class Silence:
    """When each account last posted, and since when it has had posts due without one."""

    def __init__(self) -> None:
        self._last_sent: dict[str, datetime] = {}
        self._due_since: dict[str, datetime] = {}
        self._due: dict[str, int] = {}
        self._told: set[str] = set()

    def sent(self, account: str, at: datetime) -> None:
        """An occurrence of the account went out: it is not silent."""
        if account not in self._last_sent or at > self._last_sent[account]:
            self._last_sent[account] = at
        self._due_since.pop(account, None)
        self._due.pop(account, 0)
        self._told.discard(account)

    def due(self, account: str, at: datetime) -> None:
        """An occurrence of the account fell due (whatever became of it)."""
        last = self._last_sent.get(account)
        if last is not None and at <= last:
            return
        self._due_since.setdefault(account, at)
        self._due[account] = self._due.get(account, 0) + 1

    def check(
        self, now: datetime, windows: dict[str, timedelta]
    ) -> list[tuple[str, datetime | None, int]]:
        """Return (account, last sent or None, posts due since) for each newly silent account."""
        found = []
        for account, since in sorted(self._due_since.items()):
            window = windows.get(account)
            if window is None or account in self._told or now - since < window:
                continue
            self._told.add(account)
            found.append((account, self._last_sent.get(account), self._due.get(account, 0)))
        return found
