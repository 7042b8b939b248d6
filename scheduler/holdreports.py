"""Show holds: ``holds`` as a table or JSON lines, and the lines ``status`` and ``send`` print."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from scheduler.holds import Hold

WIDTH = 80


def as_json(hold: Hold) -> dict[str, Any]:
    """Return one hold as SPEC's ``holds --format json`` object."""
    return {
        "campaign": hold.campaign,
        "person": hold.person,
        "account": hold.account,
        "post": hold.post,
        "why": hold.why,
        "since": hold.since.astimezone(UTC).isoformat(),
        "source": hold.source,
    }


def json_lines(holds: Sequence[Hold]) -> str:
    """Return one JSON object per line."""
    return "".join(json.dumps(as_json(h), ensure_ascii=False) + "\n" for h in holds)


def since(hold: Hold) -> str:
    """Return when a hold began, in UTC, to the minute."""
    return f"{hold.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def resume_command(hold: Hold) -> str:
    """Return the command that lifts a command hold."""
    words = ["solidarity", "resume"]
    for flag, value in (
        ("--campaign", hold.campaign),
        ("--person", hold.person),
        ("--account", hold.account),
    ):
        if value is not None:
            words += [flag, value]
    return shlex.join(words)


def lift_hint(hold: Hold) -> str:
    """Say how a hold is lifted: a command, or fixing the file problem."""
    if hold.is_command:
        return f"since {since(hold)}; lift it with `{resume_command(hold)}`"
    return f"since {since(hold)}; lifted when {hold.source} is fixed"


def lines(holds: Sequence[Hold], indent: str = "") -> list[str]:
    """Return two lines per hold: what, since and source; then why."""
    out: list[str] = []
    for h in holds:
        source = "by a person" if h.is_command else f"file problem at {h.source}{_on(h)}"
        out.append(f"{indent}{h.what}: since {since(h)}, {source}")
        out.append(f"{indent}    why: {h.why}")
    return out


def _on(hold: Hold) -> str:
    """Name the machine whose files hold it (its node's host name), if the ledger says."""
    return f" (the files on {hold.node.split('@')[0]})" if hold.node else ""


def table(holds: Sequence[Hold]) -> str:
    """Return the holds in force, oldest first, or say there are none."""
    if not holds:
        return "No holds.\n"
    out = lines(holds)
    commands = sum(h.is_command for h in holds)
    out.append(
        f"{len(holds)} hold{'s' if len(holds) != 1 else ''}: {commands} by a person, "
        f"{len(holds) - commands} by file problems"
    )
    return "\n".join(out) + "\n"


def held_message(hold: Hold) -> str:
    """Return what ``hold`` prints once a hold is in force."""
    named = (hold.campaign, hold.post, hold.person, hold.account)
    head = "everything is held (kill switch)" if named == (None,) * 4 else f"held: {hold.what}"
    return f"{head}\n    why: {hold.why}\n    since {since(hold)}; lift it with `{resume_command(hold)}`\n"
