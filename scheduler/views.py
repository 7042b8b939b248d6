"""What the read-only commands show, from the files and the ledger: ``history`` and ``status``.

Reading never creates or migrates a ledger: with no SQLite file yet there is
simply nothing in it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler.config import Settings
from scheduler.project import Project


def _missing(url: str) -> bool:
    from scheduler.cli_common import missing_sqlite

    return missing_sqlite(url)


def history(settings: Settings, *, campaign: str | None, since: datetime | None, fmt: str) -> str:
    """Return the ledger's rows as a table or JSON lines, times in each campaign's zone."""
    if _missing(settings.db):
        return "Nothing in the ledger yet.\n" if fmt == "table" else ""
    from scheduler import reports
    from scheduler.campaigns import load_campaigns
    from scheduler.cli_common import mask_secrets_of
    from scheduler.ledger import Ledger

    mask_secrets_of(settings)  # rows stored before masking was done where they are written
    entries = Ledger.open(settings.db).history(campaign=campaign, since=since)
    loaded, _ = load_campaigns(settings.campaigns) if settings.campaigns.is_dir() else ([], [])
    zones = {lc.campaign.name: lc.campaign.timezone for lc in loaded}
    return reports.json_lines(entries, zones) if fmt == "json" else reports.table(entries, zones)


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

    entries, holds = [], []
    if not _missing(project.settings.db):
        from scheduler.holds import HoldStore
        from scheduler.ledger import Ledger

        ledger = Ledger.open(project.settings.db)
        entries, holds = ledger.history(), HoldStore(ledger).all()
    listed = [
        (c.campaign.name, c.campaign.title, c.campaign.timezone, c.campaign.paused)
        for c in project.campaigns
    ]
    return reports.status(listed, upcoming(project, now), entries, holds)
