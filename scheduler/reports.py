"""Show the ledger: ``history`` as a table or JSON lines, in each campaign's zone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from scheduler.ledger import Entry
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
    """Return the rows as lines that fit 80 columns, oldest first."""
    if not entries:
        return "Nothing in the ledger yet.\n"
    lines = []
    for e in entries:
        when = local(e, zones).strftime("%Y-%m-%d %H:%M")
        who = f" [{e.person}]" if e.person else ""
        head = f"{when}  {e.campaign}/{e.post} → {e.account}{who}"
        status = e.status.upper() if e.status != "sent" else "sent"
        room = WIDTH - len(status) - 1
        head = head if len(head) <= room else head[: room - 1] + "…"
        lines.append(head.ljust(room) + " " + status)
        detail = e.remote_url or e.error or e.reason
        if detail:
            lines.append(("    " + detail)[:WIDTH])
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status] = counts.get(e.status, 0) + 1
    lines.append(
        f"{len(entries)} rows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )
    return "\n".join(lines) + "\n"
