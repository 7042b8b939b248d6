"""Show the ledger: ``history`` as a table or JSON lines, in each campaign's zone."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from scheduler.errors import Problem
from scheduler.holdreports import lines as hold_lines
from scheduler.holds import Hold
from scheduler.ledger import Entry
from scheduler.terminal import fit, width
from scheduler.timeutil import zone

WIDTH = 80


def local(entry: Entry, zones: dict[str, str]) -> datetime:
    """Return the entry's scheduled instant in its campaign's zone (UTC if unknown)."""
    name = zones.get(entry.campaign)
    return entry.scheduled_for.astimezone(zone(name) if name else UTC)


def as_json(entry: Entry, zones: dict[str, str]) -> dict[str, Any]:
    """Return one ledger row as SPEC's history JSON object."""
    return {
        "campaign": entry.campaign,
        "post": entry.post,
        "account": entry.account,
        "platform": entry.platform,
        "scheduled_for": local(entry, zones).isoformat(),
        "person": entry.person,
        "text": entry.text,
        "status": entry.status,
        "remote_id": entry.remote_id,
        "remote_url": entry.remote_url,
        "error": entry.error,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "sent_at": entry.sent_at.isoformat() if entry.sent_at else None,
        "key": entry.key,
    }


def json_lines(entries: Sequence[Entry], zones: dict[str, str]) -> str:
    """Return one JSON object per line."""
    return "".join(json.dumps(as_json(e, zones), ensure_ascii=False) + "\n" for e in entries)


def table(entries: Sequence[Entry], zones: dict[str, str]) -> str:
    """Return the rows as lines, oldest first (wrapped to a terminal's width, never cut)."""
    if not entries:
        return "Nothing in the ledger yet.\n"
    lines = []
    for e in entries:
        when = local(e, zones).strftime("%Y-%m-%d %H:%M")
        who = f" [{e.person}]" if e.person else ""
        head = f"{when}  {e.campaign}/{e.post} → {e.account}{who}"
        status = e.status.upper() if e.status != "sent" else "sent"
        room = max(len(head) + 1, (width() or WIDTH) - len(status) - 1)
        lines.append(fit(head.ljust(room) + " " + status, width()))
        detail = e.remote_url or e.error or e.reason
        if detail:
            lines.append(fit("    " + detail, width()))
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    lines.append(
        f"{len(entries)} rows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    return "\n".join(lines) + "\n"


def status(
    campaigns: Sequence[tuple[str, str, str, bool]],
    upcoming: dict[str, list[tuple[datetime, str, str | None, list[str]]]],
    entries: Sequence[Entry],
    holds: Sequence[Hold] = (),
    attention: dict[str, int] | None = None,
    refused: dict[str, str] | None = None,
) -> str:
    """Summarise the holds, then each campaign: next occurrences, last sends, rows for a human.

    ``campaigns`` holds (name, title, zone, paused); ``upcoming`` maps a campaign to
    (instant, post, person, accounts) in order. ``entries`` may be only the rows
    shown (``statusrows``), with ``attention`` counting each campaign's failed and
    uncertain rows and ``refused`` the accounts whose credentials were refused.
    """
    zones = {name: tz for name, _t, tz, _p in campaigns}
    lines: list[str] = []
    if holds:
        lines.append(f"Holds in force ({len(holds)}): nothing they cover is sent")
        lines.extend(hold_lines(holds, "  "))
        lines.append("")
    for name, title, tz, paused in campaigns:
        whole = [
            h for h in holds if h.campaign in (None, name) and h.post is None and h.person is None
        ]
        held = " [HELD]" if any(h.account is None for h in whole) else ""
        lines.append(
            f"{name}: {title} ({tz}){' [PAUSED: nothing is sent]' if paused else ''}{held}"
        )
        for when, post, person, accounts in upcoming.get(name, [])[:5]:
            who = f" [{person}]" if person else ""
            line = f"  next  {when:%Y-%m-%d %H:%M}  {post}{who} → {', '.join(accounts)}"
            lines.append(fit(line, width()))
        mine = [e for e in entries if e.campaign == name]
        for e in [e for e in mine if e.status == "sent"][-3:]:
            line = f"  sent  {local(e, zones):%Y-%m-%d %H:%M}  {e.post} → {e.account} {e.remote_url or ''}"
            lines.append(fit(line.rstrip(), width()))
        attention_rows = [e for e in mine if e.status in ("failed", "uncertain")]
        count = len(attention_rows) if attention is None else attention.get(name, 0)
        if count:
            lines.append(f"  needs a human: {count} row(s)")
            for e in attention_rows[-10:]:
                line = f"    {e.status.upper():9} {local(e, zones):%Y-%m-%d %H:%M} {e.post} → {e.account}"
                lines.append(fit(line, width()))
                lines.append(fit(f"      {e.error or e.reason or ''}", width()))
                if e.status == "uncertain":  # whole, however long: it is there to be copied
                    lines.append(
                        f"      settle it: solidarity resolve {shlex.quote(e.key)} --sent URL"
                        " (or --not-sent)"
                    )
        lines.append("")
    if refused is None:
        refused = {}
        for e in entries:
            if (
                e.status == "failed"
                and e.error
                and ("HTTP 401" in e.error or "HTTP 403" in e.error)
            ):
                refused[e.account] = e.error
    if refused:
        lines.append("Accounts whose credentials were refused:")
        lines.extend(fit(f"  {a}: {error}", width()) for a, error in sorted(refused.items()))
    return "\n".join(lines).rstrip() + "\n"


def once(
    settled: Sequence[Entry],
    waiting: Sequence[Entry],
    problems: Sequence[Problem],
    held: Sequence[tuple[str, str]] = (),
) -> str:
    """Say what ``run --once`` did: a line per row settled, per occurrence left for the next run."""
    lines = []
    for entry in settled:
        detail = entry.remote_url or entry.error or entry.reason or ""
        lines.append(f"{entry.status:9} {entry.key} {detail}".rstrip())
    for entry in waiting:
        lines.append(f"{entry.status:9} {entry.key} {entry.error or ''} (the next run retries it)")
    for key, why in held:
        lines.append(f"{'held':9} {key} {why} (the next run decides again)")
    if not settled and not waiting and not held:
        lines.append("nothing due")
    if problems:
        lines.append(
            f"{len(problems)} file problem(s) hold what they touch (see above); "
            "`solidarity holds` lists them"
        )
    return "".join(f"{line}\n" for line in lines)
