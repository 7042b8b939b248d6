"""``solidarity send``: post one occurrence now, through the daemon's path, logged."""

from __future__ import annotations

import sys
from typing import Any

import click

from scheduler.cli_common import (
    global_options,
    handle_errors,
    load_for,
    mask_secrets,
    missing_sqlite,
    open_ledger,
    require_secrets,
)
from scheduler.errors import SolidarityError


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
    yes: bool,
    **options: Any,
) -> None:
    """Post one occurrence now, through the daemon's path, and log it."""
    import logging

    from scheduler import sendnow

    logging.getLogger().setLevel(logging.WARNING)  # a person reads this: no INFO lines between

    project, now = load_for(ctx, options)
    ledger = None if missing_sqlite(project.settings.db) else open_ledger(project.settings)
    asked = sendnow.prepare(project, ledger, now, campaign, post_id, **options)
    require_secrets([acct for _occ, acct in asked.jobs])
    click.echo("\n".join(asked.previews))
    if not yes and not click.confirm(f"Post this now to {len(asked.jobs)} account(s)?", err=True):
        raise SolidarityError("not sent")
    ledger = ledger or open_ledger(project.settings)
    done, failed = sendnow.carry_out(asked, project, ledger, now, mask_secrets)
    click.echo("".join(f"{line}\n" for line in done), nl=False)
    click.echo("".join(f"{line}\n" for line in failed), nl=False, err=True)
    sys.exit(1 if failed else 0)
