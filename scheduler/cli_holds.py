"""The commands a person uses to stop and settle things: hold, resume, holds, resolve."""

from __future__ import annotations

import sys
from typing import Any

import click

from scheduler.cli_common import (
    global_options,
    handle_errors,
    missing_sqlite,
    open_ledger,
    pop_globals,
    settings_of,
)
from scheduler.config import Settings, environment
from scheduler.errors import SolidarityError

NAMES = [
    click.option("--campaign", metavar="C", default=None, help="only this campaign"),
    click.option("--person", metavar="P", default=None, help="only posts featuring this person"),
    click.option("--account", metavar="A", default=None, help="only this account"),
]


def names(func: Any) -> Any:
    """Add --campaign, --person and --account."""
    for option in reversed(NAMES):
        func = option(func)
    return func


def _warn_unknown(
    settings: Settings, campaign: str | None, person: str | None, account: str | None
) -> None:
    """Warn when a hold names what the files do not have (it is kept: it may be loaded later)."""
    from scheduler.project import load_project

    if campaign is None and person is None and account is None:
        return
    try:
        project = load_project(settings, environment())
    except (SolidarityError, OSError):
        return  # the files cannot say: the hold stands all the same
    later = "kept: it applies if it is loaded later"
    known = [lc.campaign for lc in project.campaigns]
    if campaign is not None and campaign not in {c.name for c in known}:
        click.echo(f"warning: no campaign '{campaign}' in the files; the hold is {later}", err=True)
    people = {p.id for c in known if campaign in (None, c.name) for p in c.people}
    if person is not None and person not in people:
        click.echo(f"warning: no person '{person}' in the files; the hold is {later}", err=True)
    if account is not None and account not in project.declared | set(project.accounts):
        click.echo(f"warning: no account '{account}' in the files; the hold is {later}", err=True)


@click.command()
@names
@click.option("--why", required=True, metavar="TEXT", help="why it is held (shown to everyone)")
@global_options
@click.pass_context
@handle_errors
def hold(
    ctx: click.Context,
    /,
    campaign: str | None,
    person: str | None,
    account: str | None,
    why: str,
    **options: Any,
) -> None:
    """Stop posting at once what this names (nothing named: everything, the kill switch)."""
    from scheduler.holdreports import held_message
    from scheduler.holds import HoldStore

    if not why.strip():
        raise click.BadParameter("say why it is held", param_hint="--why")
    settings, now = settings_of(ctx, pop_globals(options))
    store = HoldStore(open_ledger(settings))
    found = store.add(campaign, person, account, why.strip(), now)
    click.echo(held_message(found), nl=False)
    _warn_unknown(settings, campaign, person, account)


@click.command()
@names
@global_options
@click.pass_context
@handle_errors
def resume(
    ctx: click.Context,
    /,
    campaign: str | None,
    person: str | None,
    account: str | None,
    **options: Any,
) -> None:
    """Lift the holds that name exactly this (exit 1 if none matched)."""
    from scheduler.holdreports import lines, since
    from scheduler.holds import Hold, HoldStore

    settings, now = settings_of(ctx, pop_globals(options))
    lifted: list[Hold] = []
    in_force: list[Hold] = []
    if not missing_sqlite(settings.db):
        store = HoldStore(open_ledger(settings))
        lifted = store.remove(campaign, person, account)
        in_force = [] if lifted else store.all()
    for h in lifted:
        click.echo(f"lifted: {h.what} (held since {since(h)}: {h.why})")
    if lifted:
        return
    asked = Hold(campaign, person, account, "", now).what
    click.echo(f"error: no hold by a person names exactly {asked}", err=True)
    if in_force:
        click.echo("Holds in force:", err=True)
        for line in lines(in_force, "  "):
            click.echo(line, err=True)
    else:
        click.echo("No holds are in force.", err=True)
    sys.exit(1)


@click.command(name="holds")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@global_options
@click.pass_context
@handle_errors
def holds_command(ctx: click.Context, /, fmt: str, **options: Any) -> None:
    """Show the holds in force: what, why, since when, and which file problems hold what."""
    settings, _now = settings_of(ctx, pop_globals(options))
    if missing_sqlite(settings.db):
        click.echo("No holds." if fmt == "table" else "", nl=fmt == "table")
        return
    from scheduler import holdreports
    from scheduler.holds import HoldStore

    found = HoldStore(open_ledger(settings)).all()
    click.echo(
        holdreports.json_lines(found) if fmt == "json" else holdreports.table(found), nl=False
    )


@click.command()
@click.argument("key")
@click.option("--sent", "url", metavar="URL", default=None, help="it was posted, here")
@click.option("--not-sent", is_flag=True, help="it was not posted (it is never sent by itself)")
@click.option("--why", metavar="TEXT", default=None, help="how you know")
@global_options
@click.pass_context
@handle_errors
def resolve(
    ctx: click.Context,
    /,
    key: str,
    url: str | None,
    not_sent: bool,
    why: str | None,
    **options: Any,
) -> None:
    """Settle an uncertain row: --sent URL (it was posted) or --not-sent."""
    if (url is None) == (not not_sent):
        raise click.UsageError("give exactly one of --sent URL and --not-sent")
    if url is not None and not url.startswith(("https://", "http://")):
        raise click.BadParameter("the post's public URL (https://...)", param_hint="--sent")
    from scheduler import manual

    settings, now = settings_of(ctx, pop_globals(options))
    if missing_sqlite(settings.db):
        raise SolidarityError(f"no ledger row has the key {key!r}: the ledger is empty")
    entry = manual.resolve(open_ledger(settings), key, url, why, now)
    detail = entry.remote_url if entry.status == "sent" else entry.error
    click.echo(f"{entry.key}: {entry.status} ({detail})")
