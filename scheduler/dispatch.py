"""Deliver one occurrence: claim it in the ledger, publish, classify, record.

The ledger row is claimed before any request goes out and always ends in a
status with a reason. A retry happens only when the error says nothing can have
been created (or the platform deduplicates by key); an uncertain outcome is
recorded as such and never retried blindly.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from scheduler.planning import Occurrence
from scheduler.platforms.base import Card, MediaFile, Outgoing, Platform
from scheduler.project import Project

log = logging.getLogger(__name__)

USER_AGENT = "solidarity-scheduler (+https://github.com/)"
DEFAULT_RETRY_WINDOW = timedelta(hours=1)


def owner_id() -> str:
    """Name this process in the ledger (host and pid), for operators reading rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


def http_client(account: Account, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """Build the HTTP client of one account: its own proxy, timeouts and connection pool."""
    for noisy in ("httpx", "httpcore"):  # they log full URLs, and Telegram's URL holds the token
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return httpx.Client(
        transport=transport,
        proxy=account.settings.proxy if transport is None else None,
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


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
    monotonic: Callable[[], float] = time.monotonic
    _adapters: dict[str, Platform] = field(default_factory=dict)
    _last_post: dict[str, float] = field(default_factory=dict)
    _limits: dict[str, int | None] = field(default_factory=dict)

    def keep_pace(self, account: Account) -> None:
        """Wait until the account's pace allows its next post; other accounts never wait."""
        pace = account.settings.pace.total_seconds()
        last = self._last_post.get(account.name)
        if pace > 0 and last is not None:
            wait = last + pace - self.monotonic()
            if wait > 0:
                self.sleep(wait)
        self._last_post[account.name] = self.monotonic()

    def adapter(self, account: Account) -> Platform:
        """Return the account's adapter (one per account, so sessions and pools are reused)."""
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

    def deliver(self, lc: LoadedCampaign, post: Post, occ: Occurrence, account: Account) -> Entry:
        """Claim, render, publish and record one occurrence on one account."""
        started = time.monotonic()
        claim = claim_for(occ, account)
        entry = self.ledger.claim(claim, self.clock(), self.owner)
        if entry is None:
            existing = self.ledger.get(occ.key)
            assert existing is not None
            log.info("%s %s already %s; not sent again", occ.key, account.name, existing.status)
            return existing
        entry = self._attempt(entry, lc, post, occ, account)
        log.info(
            "delivery %s account=%s status=%s duration=%.2fs url=%s%s",
            occ.key,
            account.name,
            entry.status,
            time.monotonic() - started,
            entry.remote_url or "-",
            f" error={entry.error}" if entry.error else "",
        )
        return entry

    def _attempt(
        self, entry: Entry, lc: LoadedCampaign, post: Post, occ: Occurrence, account: Account
    ) -> Entry:
        adapter = self.adapter(account)
        try:
            message = self.project.renderer.message(
                lc, post, occ, account, self.live_limit(account, adapter)
            )
        except RenderError as exc:
            return self.ledger.failed(entry.id, f"template error: {exc.problem}", self.clock())
        if message.status == "too_long":
            size = f"{message.length}/{message.limit}"
            return self.ledger.failed(
                entry.id, f"too long for {account.platform.label}: {size}", self.clock()
            )
        out = outgoing(self.project, lc, post, occ, message.parts, self.clock())
        deadline = self.clock() + self.retry_window
        tries = 0
        while True:
            self.keep_pace(account)
            entry = self.ledger.sending(entry.id, out.parts, self.clock())
            try:
                receipts = adapter.publish(out)
            except PermanentError as exc:
                return self.ledger.failed(entry.id, str(exc), self.clock())
            except UncertainError as exc:
                return self.ledger.uncertain(entry.id, str(exc), self.clock())
            except RetryableError as exc:
                tries += 1
                wait = backoff(tries, exc.wait)
                now = self.clock()
                if now + timedelta(seconds=wait) > deadline:
                    return self.ledger.failed(entry.id, f"gave up after {tries} tries: {exc}", now)
                self.ledger.retrying(entry.id, str(exc), now + timedelta(seconds=wait), now)
                log.warning("%s %s: %s; retrying in %.1fs", occ.key, account.name, exc, wait)
                self.sleep(wait)
                continue
            except PlatformError as exc:  # pragma: no cover - every adapter raises a subclass
                return self.ledger.uncertain(entry.id, str(exc), self.clock())
            ids = [r.remote_id for r in receipts]
            return self.ledger.sent(
                entry.id, ids, receipts[0].url if receipts else None, self.clock()
            )


def backoff(tries: int, asked: float | None, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Wait what the platform asked, else exponential backoff with jitter (never both less)."""
    exponential = min(cap, base * 2 ** (tries - 1)) * (0.5 + random.random() / 2)
    return max(asked or 0.0, exponential if asked is None else 0.0)


def outgoing(
    project: Project,
    lc: LoadedCampaign,
    post: Post,
    occ: Occurrence,
    parts: tuple[str, ...],
    now: datetime,
) -> Outgoing:
    """Describe what to publish for an occurrence: its parts, language, media and card."""
    folder = project.settings.campaigns
    return Outgoing(
        key=occ.key,
        parts=parts,
        created_at=now,
        language=post.language or lc.campaign.language,
        content_warning=post.content_warning,
        media=tuple(MediaFile(folder / m.path, m.alt) for m in post.media),
        card=Card(post.link_card.url, post.link_card.title, post.link_card.description)
        if post.link_card
        else None,
        link_preview=post.link_preview,
        visibility=post.visibility,
    )
