"""Deliver one occurrence: claim it in the ledger, publish, classify, record.

The ledger row is claimed before any request goes out and always ends in a
status with a reason. A retry happens only when the error says nothing can have
been created (or the platform deduplicates by key); an uncertain outcome is
recorded as such and never retried blindly.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx

from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.errors import (
    PermanentError,
    PlatformError,
    RenderError,
    RetryableError,
    UncertainError,
)
from scheduler.ledger import Claim, Entry, Ledger
from scheduler.owners import owner_id
from scheduler.planning import Occurrence
from scheduler.platforms import http as web
from scheduler.platforms.base import Outgoing, Platform
from scheduler.platforms.outgoing import PartMediaError, outgoing, part_media
from scheduler.project import Project

log = logging.getLogger(__name__)

__all__ = ["Dispatcher", "PartMediaError", "outgoing", "part_media"]

USER_AGENT = "solidarity-scheduler (+https://github.com/)"
DEFAULT_RETRY_WINDOW = timedelta(hours=1)


def http_client(account: Account, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """Build the HTTP client of one account: its own proxy, timeouts and connection pool."""
    _quiet_http_logs()
    from scheduler.transport import Transport, api_client

    proxy = account.settings.proxy
    if transport is None and not proxy and not _environment_proxies():
        transport = Transport(_tls)  # built (CA bundle, httpcore) at the first request
    return api_client(
        transport,
        verify=_tls() if transport is None else True,
        proxy=proxy if transport is None else None,
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"User-Agent": USER_AGENT},
    )


@functools.cache
def _quiet_http_logs() -> None:
    """Keep httpx and httpcore below INFO: they log full URLs, and Telegram's holds the token.

    Once: each ``setLevel`` clears every logger's cache.
    """
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _environment_proxies() -> bool:
    """Say whether the environment names a proxy (HTTPS_PROXY and kin), which httpx honours."""
    import urllib.request

    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())


_TLS_LOCK = threading.Lock()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _tls() -> ssl.SSLContext:
    """Build the TLS context once, for every account's client.

    Each context costs 30-50 ms of CPU (loading the CA bundle); a burst over 200
    accounts would otherwise build 200 of them, holding the GIL.
    """
    with _TLS_LOCK:  # the first lanes of a burst ask at once
        return _tls_context()


def claim_for(occ: Occurrence, account: Account) -> Claim:
    """Describe an occurrence on an account as the ledger row that claims it."""
    return Claim(
        occ.key,
        occ.campaign,
        occ.post,
        occ.account,
        account.platform.name,
        occ.person,
        occ.scheduled_for,
    )


def make_adapter(
    account: Account,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Platform:
    """Build an account's adapter with its own HTTP client."""
    return account.platform(account.settings, http_client(account, transport), sleep)


@dataclass
class Dispatcher:
    """Everything a delivery needs, injected: the clock, the pause, the HTTP transport."""

    project: Project
    ledger: Ledger
    clock: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None
    retry_window: timedelta = DEFAULT_RETRY_WINDOW
    owner: str = field(default_factory=owner_id)
    # told of a limit a platform declared on an account (every daemon then waits it out)
    on_limit: Callable[[str, datetime, str], None] | None = None
    _adapters: dict[str, Platform] = field(default_factory=dict)
    _limits: dict[str, int | None] = field(default_factory=dict)

    def keep_from(self, before: Dispatcher) -> None:
        """Keep the sessions and live limits of the accounts whose settings did not change."""
        for name, adapter in before._adapters.items():
            old, now = before.project.accounts.get(name), self.project.accounts.get(name)
            if old is not None and now is not None and old.settings == now.settings:
                self._adapters[name] = adapter
                if name in before._limits:
                    self._limits[name] = before._limits[name]

    def adapter(self, account: Account) -> Platform:
        """Return the account's adapter (one per account, so sessions are reused).

        Each account has its own HTTP client and connection pool (and its own
        proxy). One pool shared by every lane was measured slower: httpcore scans
        the whole pool under a lock for each request.
        """
        found = self._adapters.get(account.name)
        if found is None:
            found = account.platform(
                account.settings, http_client(account, self.transport), self.sleep
            )
            self._adapters[account.name] = found
        return found

    def live_limit(self, account: Account, adapter: Platform) -> int | None:
        """Ask the platform for this account's real limit once; None if it cannot say."""
        if account.name not in self._limits:
            try:
                self._limits[account.name] = adapter.live_limit()
            except PermanentError:
                self._limits[account.name] = None  # the platform does not say (an older server)
            except PlatformError as exc:
                log.info(
                    "%s: could not read the live limit (%s); using %s",
                    account.name,
                    exc,
                    account.limit,
                )
                return None  # ask again next time
        return self._limits[account.name]

    def attempt(
        self,
        entry: Entry,
        lc: LoadedCampaign,
        post: Post,
        occ: Occurrence,
        account: Account,
        gate: Callable[[], None] = lambda: None,
    ) -> Entry:
        """Make one try of a row and record its outcome.

        The text is rendered now (so a day counter is right for the day it goes
        out); a retry sends exactly the parts tried before. A retryable error
        leaves the row ``retrying`` with ``next_attempt_at``; an uncertain one on
        a platform that can be read back leaves it ``sending``, to be read back
        at ``next_attempt_at`` before anything is sent again. ``gate`` is the
        last look before the row is marked ``sending``: rendering may have asked
        the platform for its live limit (a slow request), and a hold made
        meanwhile must still stop the post. It raises to stop it; nothing of the
        row is changed then.
        """
        adapter = self.adapter(account)
        parts = entry.parts
        if not parts:
            found = self._render(lc, post, occ, account, adapter)
            if isinstance(found, str):
                return self.ledger.failed(entry, found, self.clock())
            parts = found
        try:
            out = outgoing(self.project, lc, post, occ, parts, self.clock())
        except PartMediaError as exc:
            return self.ledger.failed(entry, f"not sent: {exc}", self.clock())
        gate()
        return self._publish(self.ledger.sending(entry, out.parts, self.clock()), adapter, out)

    def attempt_new(
        self,
        claim: Claim,
        lc: LoadedCampaign,
        post: Post,
        occ: Occurrence,
        account: Account,
        gate: Callable[[], None] = lambda: None,
    ) -> Entry | None:
        """Make the first try of an occurrence that has no row yet; None if another has it.

        The row is claimed as it goes out (``claim_sending``): one write before
        the request instead of two. Until then the occurrence lives only in this
        process; if it dies, the next start's catch-up finds the occurrence
        without a row and sends it within grace, or records it missed. ``gate``
        is the last look before the claim (see :meth:`attempt`); when it raises,
        no row is written.
        """
        adapter = self.adapter(account)
        found = self._render(lc, post, occ, account, adapter)
        if isinstance(found, str):  # recorded as a failed row, with the reason
            entry = self.ledger.claim(claim, self.clock(), self.owner)
            return None if entry is None else self.ledger.failed(entry, found, self.clock())
        try:
            out = outgoing(self.project, lc, post, occ, found, self.clock())
        except PartMediaError as exc:
            entry = self.ledger.claim(claim, self.clock(), self.owner)
            return (
                None
                if entry is None
                else self.ledger.failed(entry, f"not sent: {exc}", self.clock())
            )
        gate()
        entry = self.ledger.claim_sending(claim, out.parts, self.clock(), self.owner)
        return None if entry is None else self._publish(entry, adapter, out)

    def _render(
        self,
        lc: LoadedCampaign,
        post: Post,
        occ: Occurrence,
        account: Account,
        adapter: Platform,
        *,
        hold_on_error: bool = False,
    ) -> tuple[str, ...] | str:
        """Return the parts to send, or why they cannot be sent (a template error, too long)."""
        try:
            message = self.project.renderer.message(
                lc, post, occ, account, self.live_limit(account, adapter)
            )
        except RenderError as exc:
            if hold_on_error:
                raise
            return f"template error: {exc.problem}"
        if message.status == "too_long":
            return f"too long for {account.platform.label}: {message.length}/{message.limit}"
        return message.parts

    def _publish(self, entry: Entry, adapter: Platform, out: Outgoing) -> Entry:
        """Send a row marked ``sending`` and record what came of it."""

        def keep(marks: tuple[str, ...]) -> None:
            self.ledger.checkpoint(entry, marks, self.clock())

        # what an earlier try kept (a Threads container, parts posted), and a way to keep more
        out = replace(out, progress=entry.remote_ids, keep=keep)
        went_out = web.requests_out()
        try:
            receipts = adapter.publish(out)
        except PermanentError as exc:
            return self.ledger.failed(entry, str(exc), self.clock())
        except UncertainError as exc:
            if adapter.can_read_back:
                return self._again(entry, exc, verify=True)
            return self.ledger.uncertain(entry, str(exc), self.clock())
        except RetryableError as exc:
            return self._again(entry, exc)
        except PlatformError as exc:  # pragma: no cover - every adapter raises a subclass
            return self.ledger.uncertain(entry, str(exc), self.clock())
        except Exception as exc:  # an adapter's bug must not leave the row sending
            return self._unexpected(entry, adapter, exc, went_out != web.requests_out())
        ids = [r.remote_id for r in receipts]
        return self.ledger.sent(entry, ids, receipts[0].url if receipts else None, self.clock())

    def _unexpected(self, entry: Entry, adapter: Platform, exc: Exception, after: bool) -> Entry:
        """End a row whose adapter raised what no adapter should: failed before a request, else uncertain."""
        what = f"{adapter.label} adapter error: {type(exc).__name__}: {str(exc)[:200]}"
        log.error("%s %s: %s", entry.key, entry.account, what, exc_info=exc)
        if not after:
            return self.ledger.failed(entry, f"not sent: {what}", self.clock())
        return self.ledger.uncertain(
            entry,
            f"{what}, after a request went out; check the account and resolve this row",
            self.clock(),
        )

    def _again(self, entry: Entry, exc: PlatformError, *, verify: bool = False) -> Entry:
        """Schedule the next try of a row within the retry window, or end it."""
        now = self.clock()
        wait = backoff(entry.attempts, exc.wait if isinstance(exc, RetryableError) else None)
        at = now + timedelta(seconds=wait)
        if at > entry.created_at + self.retry_window:
            if verify:
                return self.ledger.uncertain(entry, str(exc), now)
            return self.ledger.failed(entry, f"gave up after {entry.attempts} tries: {exc}", now)
        log.warning(
            "%s %s: %s; %s in %.1fs",
            entry.key,
            entry.account,
            exc,
            "reading back" if verify else "retrying",
            wait,
        )
        if isinstance(exc, RetryableError) and exc.wait and self.on_limit is not None:
            self.on_limit(entry.account, at, str(exc))  # a 429's Retry-After holds for everyone
        if verify:
            return self.ledger.verify_later(entry, str(exc), at, now)
        return self.ledger.retrying(entry, str(exc), at, now)

    def verify(self, entry: Entry, account: Account) -> Entry | None:
        """Settle a row that may have been posted: read it back, or mark it uncertain.

        Returns the settled row (``sent`` with its URL, or ``uncertain``), or None
        when the account's recent posts show it was not created: safe to send.
        """
        adapter = self.adapter(account)
        why = entry.error or "the process stopped while the request was on its way"
        if not adapter.can_read_back or not entry.parts:
            return self.ledger.uncertain(
                entry,
                f"{why}; {account.platform.label} posts cannot be read back, so check the account and resend with `solidarity send` if it is missing",
                self.clock(),
            )
        out = Outgoing(
            key=entry.key,
            parts=entry.parts,
            created_at=entry.updated_at,
            scheduled_for=entry.scheduled_for,
            since=entry.created_at,  # no post of this row can be older than the row
            progress=entry.remote_ids,
        )
        try:
            receipt = adapter.read_back(out)
        except PlatformError as exc:
            return self.ledger.uncertain(
                entry, f"{why}; reading recent posts back failed: {exc}", self.clock()
            )
        if receipt is None:
            log.info("%s %s: read back, not posted; safe to send", entry.key, entry.account)
            return None
        log.info("%s %s: read back, it was posted: %s", entry.key, entry.account, receipt.url)
        return self.ledger.sent(entry, [receipt.remote_id], receipt.url, self.clock())


def log_delivery(entry: Entry, duration: float) -> None:
    """Log the one line an operator reads per delivery (an error when it needs a human)."""
    detail = entry.error or entry.reason
    level = {"failed": logging.ERROR, "uncertain": logging.ERROR, "missed": logging.WARNING}
    log.log(
        level.get(entry.status, logging.INFO),
        "delivery %s account=%s status=%s duration=%.2fs url=%s%s",
        entry.key,
        entry.account,
        entry.status,
        duration,
        entry.remote_url or "-",
        f" reason={detail}" if detail and entry.status != "sent" else "",
        extra={
            "fields": {
                "key": entry.key,
                "account": entry.account,
                "platform": entry.platform,
                "status": entry.status,
                "duration": round(duration, 3),
                "url": entry.remote_url,
                "reason": detail if entry.status != "sent" else None,
            }
        },
    )


def backoff(tries: int, asked: float | None, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Wait what the platform asked, else exponential backoff with jitter (never both less)."""
    exponential = min(cap, base * 2 ** (tries - 1)) * (0.5 + random.random() / 2)
    return max(asked or 0.0, exponential if asked is None else 0.0)
