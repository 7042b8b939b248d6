"""``solidarity send``: post one occurrence now, through the daemon's path, logged.

Before anything is asked or sent, every target is checked: a hold in force
refuses it, and so does a send of the same post to the same account (and person)
in the last 24 hours, unless ``--again``. Nothing goes out when any is refused.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Any

import click

from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.cli_common import (
    global_options,
    handle_errors,
    load_for,
    mask_secrets,
    missing_sqlite,
    open_ledger,
    report,
    require_secrets,
)
from scheduler.errors import SolidarityError
from scheduler.planning import Occurrence, next_instant, plan_post
from scheduler.project import Project


def _pick_person(
    lc: LoadedCampaign, post: Post, wanted: str | None, now: datetime
) -> list[str | None]:
    """Return whom a manual send features: --person, else whom the schedule features now."""
    c = lc.campaign
    if wanted is not None and not (post.rotate or post.for_each):
        raise click.BadParameter(
            f"post '{post.id}' features nobody (it has no rotate or for_each)",
            param_hint="--person",
        )
    if wanted is not None:
        person = c.person(wanted)
        if person is None:
            known = ", ".join(p.id for p in c.people) or "none"
            raise click.BadParameter(
                f"no person '{wanted}' in {c.name}; people: {known}", param_hint="--person"
            )
        if person.released_by(now.astimezone(c.tz).date()):
            raise SolidarityError(
                f"{person.name} was released on {person.released_on}; nothing is sent featuring them"
            )
        return [person.id]
    if not (post.rotate or post.for_each):
        return [None]
    detained = [p for p in c.people if not p.released_by(now.astimezone(c.tz).date())]
    if not detained:
        raise SolidarityError(
            f"everyone post '{post.id}' speaks for has been released; nothing to send"
        )
    if post.for_each:
        return [p.id for p in detained]
    recent = plan_post(c, post, now - timedelta(days=400), now + timedelta(seconds=1))
    last = None
    for last in recent:  # noqa: B007 - the last one is whom the rotation features now
        pass
    if last is None:
        upcoming = next_instant(c, post, now)
        found = (
            list(plan_post(c, post, upcoming, upcoming + timedelta(seconds=1))) if upcoming else []
        )
        last = found[0] if found else None
    return [last.person if last else detained[0].id]


def _target(
    project: Project, campaign: str, post_id: str, account: str | None
) -> tuple[LoadedCampaign, Post, list[Account]]:
    """Find the campaign, the post and the accounts a manual send goes to, or a usage error."""
    lc = project.campaign(campaign)
    if lc is None:
        report(project.errors)
        known = ", ".join(c.campaign.name for c in project.campaigns) or "none loaded"
        raise click.BadParameter(
            f"no campaign '{campaign}'; campaigns: {known}", param_hint="CAMPAIGN"
        )
    post = next((p for p in lc.campaign.posts if p.id == post_id), None)
    if post is None:
        raise click.BadParameter(
            f"no post '{post_id}' in {campaign}; posts: {', '.join(p.id for p in lc.campaign.posts)}",
            param_hint="POST",
        )
    targets = project.accounts_of(lc, post)
    if account is not None:
        targets = [a for a in targets if a.name == account]
        if not targets:
            raise click.BadParameter(
                f"post '{post_id}' does not go to '{account}'", param_hint="--account"
            )
    return lc, post, targets


@click.command()
@click.argument("campaign")
@click.argument("post_id", metavar="POST")
@click.option("--account", metavar="A", default=None, help="only this account")
@click.option("--person", metavar="P", default=None, help="feature this person")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--again", is_flag=True, help="send even if it went out in the last 24 hours")
@global_options
@click.pass_context
@handle_errors
def send(
    ctx: click.Context,
    /,
    campaign: str,
    post_id: str,
    account: str | None,
    person: str | None,
    yes: bool,
    again: bool,
    **options: Any,
) -> None:
    """Post one occurrence now, through the daemon's path, and log it."""
    from scheduler import manual
    from scheduler.holds import HoldStore

    project, now = load_for(ctx, options)
    lc, post, targets = _target(project, campaign, post_id, account)
    require_secrets(targets)
    instant = now.astimezone(lc.campaign.tz).replace(microsecond=0)
    people = _pick_person(lc, post, person, now)
    found = [
        (Occurrence(lc.campaign.name, post.id, a.name, instant, who, 0), a)
        for a in targets
        for who in people
    ]
    ledger = None if missing_sqlite(project.settings.db) else open_ledger(project.settings)
    holds = HoldStore(ledger).all() if ledger is not None else []
    occurrences = [occ for occ, _ in found]
    refused = manual.refusals(lc, post, occurrences, holds, ledger, now, again)
    if refused:
        for line in refused:
            click.echo(f"refused: {line}", err=True)
        raise SolidarityError(f"nothing was sent ({len(refused)} of {len(found)} refused)")
    accounts = {a.name: a for a in targets}
    jobs = [(occ, accounts[occ.account]) for occ in manual.free_instant(ledger, occurrences)]
    for occ, acct in jobs:
        msg = project.renderer.message(lc, post, occ, acct)
        click.echo(
            f"── {acct.name} ({acct.platform.label}){f' [{occ.person}]' if occ.person else ''}: {msg.length}/{msg.limit or '-'} {msg.status}"
        )
        click.echo(msg.text)
        if msg.status != "ok":
            raise SolidarityError(
                f"the text is too long for {acct.name}; run `solidarity validate` for details"
            )
    if not yes:
        click.confirm(f"Post this now to {len(jobs)} account(s)?", abort=True, err=True)
    from scheduler import runner

    ledger = ledger or open_ledger(project.settings)
    clock = runner.running_clock(now)
    located = [(lc, post, occ, acct) for occ, acct in jobs]
    entries = {e.key: e for e in runner.send_now(project, ledger, clock, located, mask_secrets)}
    failed = 0
    for occ, acct in jobs:
        entry = entries.get(occ.key)
        if entry is None:
            failed += 1
            click.echo(f"{acct.name}: not sent (held, or taken by another process)", err=True)
        elif entry.status == "sent":
            click.echo(f"{acct.name}: sent {entry.remote_url or entry.remote_id}")
        else:
            failed += 1
            click.echo(f"{acct.name}: {entry.status}: {entry.error or entry.reason}", err=True)
    if failed:
        sys.exit(1)
