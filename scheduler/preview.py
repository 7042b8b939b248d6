"""Show the dry run: a table for an 80-column terminal, JSON lines, or an HTML page."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scheduler.dryrun import Row
from scheduler.project import Project

if TYPE_CHECKING:  # preview loads SQLAlchemy only when there is a ledger to read holds from
    from scheduler.holds import Hold

WIDTH = 80
INDENT = "        "


def as_json(row: Row) -> dict[str, Any]:
    """Return the JSON object of one row (SPEC's preview fields and a few more)."""
    occ = row.occurrence
    return {
        "campaign": occ.campaign,
        "post": occ.post,
        "account": occ.account,
        "platform": row.platform,
        "scheduled_for": occ.scheduled_for.isoformat(),
        "sends_at": row.sends_at.isoformat(),
        "person": occ.person,
        "text": row.text,
        "parts": list(row.parts),
        "length": row.length,
        "lengths": list(row.lengths),
        "limit": row.limit,
        "status": row.status,
        "warnings": list(row.warnings),
        "media": [{"path": m.path, "alt": m.alt} for m in row.media],
        "link_card": (
            {
                "url": row.link_card.url,
                "title": row.link_card.title,
                "description": row.link_card.description,
            }
            if row.link_card
            else None
        ),
        "part_media": [[{"path": m.path, "alt": m.alt} for m in media] for media in row.part_media],
        "key": occ.key,
    }


def mark_held(rows: Sequence[Row], holds: Sequence[Hold]) -> list[Row]:
    """Show the occurrences a hold in force covers as ``held``, with the hold's why.

    Skipped and paused rows stay as they are: they are not sent, hold or no hold.
    What the row would be once the hold is lifted stays in its warnings.
    """
    from scheduler.holds import covering

    out: list[Row] = []
    for row in rows:
        occ = row.occurrence
        hold = covering(holds, occ.campaign, occ.post, occ.account, occ.person)
        if hold is None or row.status in ("skipped", "paused"):
            out.append(row)
            continue
        source = "a person" if hold.is_command else hold.source
        notes = [f"held ({hold.what}, by {source}): {hold.why}"]
        if row.status != "ok":
            notes.append(f"once the hold is lifted: {row.status}")
        out.append(row._replace(status="held", warnings=(*notes, *row.warnings)))
    return out


def json_lines(rows: Sequence[Row]) -> str:
    """Return one JSON object per line."""
    return "".join(json.dumps(as_json(r), ensure_ascii=False) + "\n" for r in rows)


def table(rows: Sequence[Row], project: Project) -> str:
    """Return the rows grouped by campaign and by day in the campaign's zone."""
    if not rows:
        return "Nothing is scheduled in this window.\n"
    lines: list[str] = []
    titles = {lc.campaign.name: lc.campaign for lc in project.campaigns}
    names = sorted(
        {r.occurrence.campaign for r in rows},
        key=lambda n: min(r.occurrence.scheduled_for for r in rows if r.occurrence.campaign == n),
    )
    for name in names:
        c = titles[name]
        paused = " [PAUSED: nothing is sent]" if c.paused else ""
        lines.append(_fit(f"{name}: {c.title} ({c.timezone}){paused}"))
        day = None
        for row in (r for r in rows if r.occurrence.campaign == name):
            when = row.occurrence.scheduled_for
            if when.date() != day:
                day = when.date()
                lines.append("")
                offset = when.isoformat()[19:] or "+00:00"
                lines.append(f"  {when:%a %d %b %Y} (UTC{offset})")
            lines.extend(_row_lines(row))
        lines.append("")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    lines.append(f"{len(rows)} occurrences: {summary}")
    lines.extend(cost_lines(rows))
    return "\n".join(lines) + "\n"


def _width() -> int:
    """Return the width to wrap to: the terminal's, else 80 columns."""
    from scheduler.terminal import width

    return max(60, width() or WIDTH)


def _fit(text: str) -> str:
    from scheduler.terminal import fit

    return fit(text, _width())


def _row_lines(row: Row) -> list[str]:
    occ = row.occurrence
    size = f"{row.length}/{row.limit}" if row.limit is not None else f"{row.length}"
    if row.status == "skipped":
        size = ""
    right = f"{size} {row.status.upper() if row.status != 'ok' else 'ok'}".strip()
    who = f"  [{occ.person}]" if occ.person else ""
    left = f"  {occ.scheduled_for:%H:%M}  {occ.post} → {occ.account} ({row.platform}){who}"
    room = _width() - len(right) - 1
    if len(left) > room:  # never cut a name: wrap the line instead
        out = _fit(f"{left} {right}").split("\n")
    else:
        out = [left.ljust(room) + " " + right]
    for i, part in enumerate(row.parts):
        if len(row.parts) > 1:
            out.append(f"{INDENT}┄ part {i + 1}/{len(row.parts)} ({row.lengths[i]})")
        for para in part.split("\n"):  # a line of the text starts with │, its wrapping with ┆
            wrapped = textwrap.wrap(
                para, _width() - len(INDENT) - 2, break_on_hyphens=False, break_long_words=True
            ) or [""]
            out.append(f"{INDENT}│ {wrapped[0]}")
            out.extend(f"{INDENT}┆ {w}" for w in wrapped[1:])
        media = (row.media if i == 0 else ()) + (
            row.part_media[i] if i < len(row.part_media) else ()
        )
        for m in media:
            out.extend(
                f"{INDENT}{w}"
                for w in textwrap.wrap(f"🖼 {m.path}, alt: {m.alt}", _width() - len(INDENT))
            )
    if row.link_card is not None:
        card = row.link_card
        out.append(_fit(f"{INDENT}🔗 {card.title} <{card.url}>"))
        if card.description:
            out.extend(f"{INDENT}   {w}" for w in textwrap.wrap(card.description, _width() - 11))
    out.extend(f"{INDENT}! {w}" for w in row.warnings)
    return out


def html_page(
    rows: Sequence[Row],
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    campaign: str | None = None,
) -> str:
    """Return one self-contained HTML page of the rows (SPEC's ``preview --format html``).

    The page's templates (``scheduler/html/``) and Jinja2's environment are loaded only here.
    """
    from scheduler import previewpage

    return previewpage.render(previewpage.build(rows, project, start, end, campaign))


def cost_lines(rows: Sequence[Row]) -> list[str]:
    """Say what the window would cost on platforms that charge per post (X), per account."""
    from scheduler import pricing

    costs = pricing.x_cost(as_json(r) for r in rows if r.platform == "x")
    return [
        f"X, estimated cost of this window: {account} ${cost:.2f} "
        f"(${pricing.X_PRICE_PER_POST} a post, ${pricing.X_PRICE_PER_POST_WITH_URL} with a URL; "
        f"prices of {pricing.PRICES_AS_OF})"
        for account, cost in sorted(costs.items())
    ]
