"""What the read-only commands show, from the files and the ledger: ``history`` and ``status``.

Reading never creates or migrates a ledger: with no SQLite file yet there is
simply nothing in it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from scheduler.config import Settings
from scheduler.project import Project

if TYPE_CHECKING:
    from scheduler.dryrun import Row
    from scheduler.holds import Hold
    from scheduler.ledger import Entry, Ledger
    from scheduler.statusrows import StatusRows


def _missing(url: str) -> bool:
    from scheduler.cli_common import missing_sqlite

    return missing_sqlite(url)


def history(
    settings: Settings,
    *,
    campaign: str | None,
    since: datetime | None,
    fmt: str,
    limit: int | None = None,
) -> Iterator[str]:
    """Return the ledger's rows as a table or JSON lines, a page at a time, in each campaign's zone.

    Rows are read in pages (:mod:`scheduler.ledgerpages`) and each page is
    formatted as it comes, so a ledger of a million rows prints in flat memory;
    ``limit`` keeps the newest that many rows (shown oldest first). A campaign
    named that is neither in the files nor in the ledger is a usage error listing
    the campaigns (a typo must not look like an empty history): it is raised
    here, before anything is printed.
    """
    from scheduler.campaigns import load_campaigns

    loaded, _ = load_campaigns(settings.campaigns) if settings.campaigns.is_dir() else ([], [])
    zones = {lc.campaign.name: lc.campaign.timezone for lc in loaded}
    if _missing(settings.db):
        _known(campaign, zones, [])
        return iter(["Nothing in the ledger yet.\n"] if fmt == "table" else [])
    from scheduler.cli_common import mask_secrets_of
    from scheduler.ledger import Ledger
    from scheduler.ledgerpages import page_size, pages

    size = page_size()
    mask_secrets_of(settings)  # rows stored before masking was done where they are written
    ledger = Ledger.open(settings.db)
    found = pages(ledger, campaign=campaign, since=since, limit=limit, size=size)
    first = next(found, [])
    if campaign is not None and not first and campaign not in zones:
        try:
            _known(campaign, zones, ledger.history(limit=1000))
        except BaseException:
            ledger.close()
            raise
    return _formatted(ledger, itertools.chain([first] if first else [], found), zones, fmt)


def _formatted(
    ledger: Ledger, found: Iterator[list[Entry]], zones: dict[str, str], fmt: str
) -> Iterator[str]:
    """Format each page as it comes: JSON lines, or the table's lines and, last, its counts."""
    from scheduler import reports

    counts: dict[str, int] = {}
    total = 0
    try:
        for page in found:
            if fmt == "json":
                yield reports.json_lines(page, zones)
                continue
            shown = reports.table(page, zones)
            # the page's rows without reports.table's count line: the count is of every page
            yield shown[: shown.rstrip("\n").rfind("\n") + 1]
            total += len(page)
            for entry in page:
                counts[entry.status] = counts.get(entry.status, 0) + 1
    finally:
        ledger.close()
    if fmt == "table":
        # the same words as reports.table's last line, for the rows of every page
        yield (
            f"{total} rows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "\n"
            if total
            else "Nothing in the ledger yet.\n"
        )


def _known(campaign: str | None, zones: dict[str, str], rows: list[Entry]) -> None:
    """Refuse a campaign name that neither the files nor the ledger know."""
    from scheduler.errors import UsageError

    names = sorted({*zones, *(e.campaign for e in rows)})
    if campaign is not None and campaign not in names:
        listed = ", ".join(names) or "none"
        raise UsageError(f"--campaign: no campaign '{campaign}'; campaigns: {listed}")


def upcoming(
    project: Project, now: datetime, days: int = 7
) -> dict[str, list[tuple[datetime, str, str | None, list[str]]]]:
    """Return each campaign's next occurrences, the accounts of one instant and person together."""
    from scheduler.planning import plan

    found: dict[str, list[tuple[datetime, str, str | None, list[str]]]] = {}
    for occ in plan([lc.campaign for lc in project.campaigns], now, now + timedelta(days=days)):
        rows = found.setdefault(occ.campaign, [])
        last = rows[-1] if rows else None
        if last and (last[0], last[1], last[2]) == (occ.scheduled_for, occ.post, occ.person):
            last[3].append(occ.account)
        else:
            rows.append((occ.scheduled_for, occ.post, occ.person, [occ.account]))
    return found


def status(project: Project, now: datetime) -> str:
    """Return the holds in force and, per campaign, what is next, what went, what needs a human."""
    from scheduler import reports

    found, holds = _status_rows(project, now)
    listed = [
        (c.campaign.name, c.campaign.title, c.campaign.timezone, c.campaign.paused)
        for c in project.campaigns
    ]
    return reports.status(
        listed, upcoming(project, now), found.entries, holds, found.attention, found.refused
    )


def _status_rows(project: Project, now: datetime) -> tuple[StatusRows, list[Hold]]:
    """Read what ``status`` shows of the ledger: a few rows per campaign, and the holds."""
    from scheduler.statusrows import StatusRows, status_rows

    if _missing(project.settings.db):
        return StatusRows(), []
    from scheduler.holds import HoldStore
    from scheduler.ledger import Ledger

    ledger = Ledger.open(project.settings.db)
    try:
        names = [lc.campaign.name for lc in project.campaigns]
        return status_rows(ledger, names, now), HoldStore(ledger).all()
    finally:
        ledger.close()


def preview(
    project: Project,
    start: datetime,
    days: int,
    *,
    campaign: str | None,
    account: str | None,
    fmt: str,
) -> tuple[str, list[str]]:
    """Return the dry run of a window in a format, and the notes for standard error."""
    from scheduler import dryrun
    from scheduler import preview as show
    from scheduler.errors import UsageError

    if campaign is not None and project.campaign(campaign) is None:
        known = ", ".join(c.campaign.name for c in project.campaigns) or "none loaded"
        problems = "".join(f"\n{p}" for p in project.errors)
        raise UsageError(f"--campaign: no campaign '{campaign}'; campaigns: {known}{problems}")
    if account is not None and account not in project.accounts:
        known = ", ".join(sorted(project.accounts)) or "none"
        raise UsageError(f"--account: no account '{account}'; accounts: {known}")
    end = start + timedelta(days=days)
    rows = dryrun.rows(project, start, end, campaign=campaign, account=account)
    notes = [str(p) for p in sorted(project.problems)]
    bad = sum(r.status in ("error", "too_long") for r in rows)
    if bad:
        notes.append(
            f"{bad} occurrence(s) would not be sent as shown: run `solidarity validate` for details."
        )
    rows = _held(rows, project.settings.db, notes)
    if fmt == "json":
        return show.json_lines(rows), notes
    if fmt == "html":
        return show.html_page(rows, project, start, end, campaign=campaign), notes
    return show.table(rows, project), notes


def _held(rows: list[Row], url: str, notes: list[str]) -> list[Row]:
    """Show what holds in force cover as held, if a ledger exists (never creating or migrating it)."""
    if _missing(url):
        return rows
    from scheduler import preview as show
    from scheduler.errors import LedgerError
    from scheduler.manual import read_holds

    try:
        found = read_holds(url)
    except LedgerError as exc:
        notes.insert(0, f"warning: the holds could not be read, so none is shown: {exc}")
        return rows
    found = [h for h in found if h.is_command]  # file problems: this load shows its own
    return show.mark_held(rows, found) if found else rows


def status_json(project: Project, now: datetime) -> str:
    """Return ``status`` as one JSON object per campaign (and one for holds naming none)."""
    import json

    from scheduler import holdreports, reports

    rows, holds = _status_rows(project, now)
    entries = rows.entries
    zones = {lc.campaign.name: lc.campaign.timezone for lc in project.campaigns}
    found = upcoming(project, now)
    lines = []
    for lc in project.campaigns:
        c = lc.campaign
        mine = [e for e in entries if e.campaign == c.name]
        sent = [e for e in mine if e.status == "sent"]
        lines.append(
            {
                "campaign": c.name,
                "title": c.title,
                "timezone": c.timezone,
                "paused": c.paused,
                "next": [
                    {
                        "scheduled_for": when.isoformat(),
                        "post": post,
                        "person": person,
                        "accounts": accounts,
                    }
                    for when, post, person, accounts in found.get(c.name, [])[:10]
                ],
                "last_sent": [reports.as_json(e, zones) for e in sent[-5:]],
                "failed": [reports.as_json(e, zones) for e in mine if e.status == "failed"][-10:],
                "need_a_human": [
                    reports.as_json(e, zones) for e in mine if e.status == "uncertain"
                ],
                "holds": [holdreports.as_json(h) for h in holds if h.campaign in (None, c.name)],
            }
        )
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
