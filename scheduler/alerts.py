"""Alerts that reach a person: through Apprise, to the URLs in ``SOLIDARITY_ALERTS``.

The daemon and ``run --once`` tell :class:`Alerts` what happened; it sends one
message per kind of trouble, not one per occurrence: what arrives within
``GATHER`` seconds goes out together, with the count and the first few. Kinds:
a row ended ``failed`` or ``uncertain``; an account's credentials were refused; a
file problem holds something (its ``path:line``), and when it is fixed.

Every message is masked (:mod:`scheduler.redact`) and names the campaign, post,
account, reason and public URL where there is one. Sending happens on a thread
of its own; an alert that cannot be delivered is logged and never stops posting.
Apprise is imported only when there is somewhere to send.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from scheduler.redact import redact

if TYPE_CHECKING:  # every command imports this module: keep SQLAlchemy out of preview's path
    from scheduler.holds import Hold
    from scheduler.ledger import Entry

log = logging.getLogger("scheduler.alerts")

VARIABLE = "SOLIDARITY_ALERTS"
GATHER = 2.0  # seconds: what goes wrong together is told together
SHOWN = 5  # items listed in one message; the rest are counted
_REFUSED = re.compile(
    r"\(HTTP 40[13]\)|unauthori[sz]ed|invalid (access )?token|M_UNKNOWN_TOKEN", re.I
)

Sender = Callable[[str, str], bool]  # (title, body) -> delivered


@dataclass(frozen=True)
class _Event:
    kind: str  # failed, uncertain, refused, held, fixed
    line: str


def urls_of(environ: Mapping[str, str]) -> list[str]:
    """Return the Apprise URLs of ``SOLIDARITY_ALERTS`` (space-separated)."""
    return environ.get(VARIABLE, "").split()


def apprise_sender(urls: Sequence[str]) -> Sender:
    """Send through Apprise to every URL; True if every one took it."""
    state: dict[str, object] = {}

    def send(title: str, body: str) -> bool:
        notifier = state.get("apprise")
        if notifier is None:
            import apprise

            logging.getLogger("apprise").setLevel(logging.WARNING)  # not a line per message
            notifier = apprise.Apprise()
            for url in urls:
                if not notifier.add(url):
                    log.error("alerts: %s is not an Apprise URL; it is left out", redact(url))
            state["apprise"] = notifier
        return bool(notifier.notify(title=title, body=body))  # type: ignore[attr-defined]

    return send


class Alerts:
    """Gather what needs a person and send it, a message per kind, off the posting threads."""

    def __init__(self, send: Sender | None, *, gather: float = GATHER) -> None:
        self.send = send
        self.gather = gather
        self._events: list[_Event] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.sent: list[tuple[str, str]] = []  # what went out (title, body), for run --once

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Alerts:
        """Alerts to ``SOLIDARITY_ALERTS``, or none (nothing is gathered) when it is unset."""
        urls = urls_of(environ)
        return cls(apprise_sender(urls) if urls else None)

    # -- what happened ---------------------------------------------------------------

    def row(self, entry: Entry) -> None:
        """A row ended: a failed or uncertain one needs a person."""
        if entry.status not in ("failed", "uncertain"):
            return
        why = entry.error or entry.reason or ""
        kind = "refused" if entry.status == "failed" and _REFUSED.search(why) else entry.status
        where = f" ({entry.remote_url})" if entry.remote_url else ""
        who = f" featuring {entry.person}" if entry.person else ""
        self._add(
            kind,
            f"{entry.campaign} / {entry.post}{who} → {entry.account}: {why}{where} [{entry.key}]",
        )

    def silent(self, account: str, last: datetime | None, due: int, window: str) -> None:
        """An account that had posts due has posted nothing for its silence_alert."""
        when = f"since {last:%Y-%m-%d %H:%M %Z}" if last else "since this daemon started"
        self._add(
            "silent",
            f"{account} has posted nothing {when} ({window} or more), though {due} "
            "post(s) fell due; see `solidarity status` and `solidarity accounts check`",
        )

    def holds(self, added: Sequence[Hold], lifted: Sequence[Hold]) -> None:
        """File problems began or stopped holding something."""
        for hold in added:
            self._add("held", f"{hold.what}: held by {hold.source}: {hold.why}")
        for hold in lifted:
            self._add("fixed", f"{hold.what}: no longer held ({hold.source} is fixed)")

    # -- sending ---------------------------------------------------------------------

    def _add(self, kind: str, line: str) -> None:
        if self.send is None:
            return
        with self._lock:
            self._events.append(_Event(kind, redact(line)))
            if self._timer is None:
                self._timer = threading.Timer(self.gather, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Send what was gathered now: one message per kind."""
        with self._lock:
            events, self._events = self._events, []
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
        for kind in ("refused", "silent", "failed", "uncertain", "held", "fixed"):
            lines = [e.line for e in events if e.kind == kind]
            if lines:
                self.deliver(*_message(kind, lines))

    def deliver(self, title: str, body: str) -> None:
        """Send one message now (logged, never raised, if it cannot be delivered)."""
        assert self.send is not None
        try:
            delivered = self.send(title, body)
        except Exception as exc:  # an alert must never stop posting
            log.error("alert %r could not be delivered: %s", title, redact(str(exc)))
            return
        if not delivered:
            log.error("alert %r could not be delivered (Apprise said no)", title)
            return
        self.sent.append((title, body))
        log.info("alert sent: %s", title)


_TITLES = {
    "refused": ("an account's credentials were refused", "accounts' credentials were refused"),
    "failed": ("a post failed", "posts failed"),
    "silent": ("an account has gone silent", "accounts have gone silent"),
    "uncertain": (
        "a post may or may not have gone out",
        "posts may or may not have gone out",
    ),
    "held": ("a file problem holds posts", "file problems hold posts"),
    "fixed": ("a file problem is fixed", "file problems are fixed"),
}
_NEXT = {
    "refused": "Check the token (solidarity accounts check) and set it again in .env.",
    "failed": "Nothing more is tried for these; send again with `solidarity send` once fixed.",
    "silent": "Nothing it should have posted went out: check its token and the failed rows.",
    "uncertain": "Check the account, then `solidarity resolve KEY --sent URL` or `--not-sent`.",
    "held": "Fix the file at the line named; posting resumes by itself within a second.",
    "fixed": "Posting resumed.",
}


def _message(kind: str, lines: list[str]) -> tuple[str, str]:
    one, many = _TITLES[kind]
    title = f"solidarity: {one}" if len(lines) == 1 else f"solidarity: {len(lines)} {many}"
    shown = [f"- {line}" for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"- and {len(lines) - SHOWN} more (solidarity status)")
    return title, "\n".join([*shown, "", _NEXT[kind]])
