"""The ``solidarity`` command: thin commands that parse, call the core, and print."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from scheduler import dryrun, redact, redacted_io
from scheduler.cli_alerts import alerts_group
from scheduler.cli_common import (
    global_options,
    handle_errors,
    load_for,
    mask_secrets,
    open_ledger,
    pop_globals,
    report,
    settings_of,
)
from scheduler.cli_holds import hold, holds_command, resolve, resume
from scheduler.cli_send import send
from scheduler.config import environment, remember_real_environment
from scheduler.errors import PlatformError, display_path
from scheduler.timeutil import parse_date_or_datetime


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@global_options
@click.version_option(package_name="solidarity-scheduler")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Schedule solidarity posts from campaign files: validate, preview, run."""
    ctx.obj = options
    # main() masks the streams already; a test's runner swaps in its own
    ctx.with_resource(redacted_io.redacted_streams())


for command in (send, hold, resume, holds_command, resolve, alerts_group):
    cli.add_command(command)


@cli.command()
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=30,
    show_default=True,
    help="how many days ahead to render",
)
@global_options
@click.pass_context
@handle_errors
def validate(ctx: click.Context, /, days: int, **options: Any) -> None:
    """Load everything and render every post for every account over the next days."""
    project, now = load_for(ctx, options)
    problems = dryrun.validate(project, now, days)
    report(problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        click.echo(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found.", err=True)
        sys.exit(1)
    count = len(project.campaigns)
    click.echo(
        f"ok: {count} campaign{'s' if count != 1 else ''}, {len(project.accounts)} accounts, next {days} days render cleanly."
    )


def _show(text: str, fmt: str) -> None:
    """Print a command's output: a table in colour on a terminal, JSON and HTML as they are."""
    if fmt == "table":
        from scheduler.terminal import show

        show(text)
    else:
        click.echo(text, nl=False)


def _when(value: str | None, now: datetime, option: str = "--from") -> datetime:
    """Read a date or time option: now, today, yesterday, a date, or a date and time."""
    if value is None or value == "now":
        return now
    days = {"today": 0, "yesterday": 1}.get(value.strip().lower())
    if days is not None:
        day = (now - timedelta(days=days)).date()
        return datetime(day.year, day.month, day.day)  # like a date: each campaign's zone
    try:
        parsed = parse_date_or_datetime(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{exc}; or write now, today or yesterday", param_hint=option
        ) from None
    if isinstance(parsed, datetime):
        return parsed
    return datetime(parsed.year, parsed.month, parsed.day)


@cli.command(name="preview")
@click.option(
    "--from",
    "from_",
    metavar="T",
    default=None,
    help="start (date or date and time; naive means each campaign's zone) [default: now]",
)
@click.option("--days", type=click.IntRange(1, 3660), default=14, show_default=True)
@click.option("--campaign", metavar="C", default=None, help="only this campaign")
@click.option("--account", metavar="A", default=None, help="only this account")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write to FILE instead of standard output",
)
@global_options
@click.pass_context
@handle_errors
def preview_command(
    ctx: click.Context,
    /,
    from_: str | None,
    days: int,
    campaign: str | None,
    account: str | None,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    """Show every occurrence in a window, rendered exactly as it would be sent."""
    from scheduler import views

    project, now = load_for(ctx, options)
    start = _when(from_, now)
    out, notes = views.preview(project, start, days, campaign=campaign, account=account, fmt=fmt)
    if output is not None:  # the HTML page masks each of its texts as it is built
        output.write_text(out if fmt == "html" else redact.redact(out), encoding="utf-8")
    else:
        _show(out, fmt)
    click.echo("".join(f"{note}\n" for note in notes), nl=False, err=True)
    sys.exit(1 if project.errors else 0)


@cli.command()
@click.option(
    "--once", is_flag=True, help="send what is due now (within grace), record the rest, and exit"
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line, for log collectors",
)
@global_options
@click.pass_context
@handle_errors
def run(ctx: click.Context, /, once: bool, log_format: str, **options: Any) -> None:
    """Run the scheduler; with --once, settle what is due now and exit (1 if any failed)."""
    from scheduler import reports, runner
    from scheduler.serve import ledger_lock

    settings, now = settings_of(ctx, pop_globals(options))
    clock = runner.running_clock(now)  # from now on: loading must not make every wake late
    _configure_logging(log_format)
    project = runner.loader(settings)()
    mask_secrets(project)
    runner.refuse_missing_secrets(project, report)
    ledger = open_ledger(settings)
    with ledger_lock(settings.db):
        if not once:
            runner.serve_daemon(settings, project, ledger, clock, _workers(), mask_secrets)
            return
        daemon, waiting = runner.run_once(project, ledger, clock, mask_secrets)
        ledger.close()
    click.echo(
        reports.once(daemon.settled or [], waiting, daemon.files.problems, daemon.left_held),
        nl=False,
    )
    if daemon.failed or daemon.files.problems:
        sys.exit(1)


def _workers() -> int:
    """Return the number of sending threads (SOLIDARITY_WORKERS, for tuning; default measured)."""
    from scheduler.daemon import DEFAULT_WORKERS

    text = os.environ.get("SOLIDARITY_WORKERS", "")
    if not text:
        return DEFAULT_WORKERS
    if not text.isdigit() or not 1 <= int(text) <= 512:
        raise click.BadParameter("a whole number from 1 to 512", param_hint="SOLIDARITY_WORKERS")
    return int(text)


def _configure_logging(log_format: str) -> None:
    from scheduler.logs import configure

    configure("json" if log_format == "json" else "text")


@cli.command()
@click.option("--campaign", metavar="C", default=None)
@click.option(
    "--since",
    metavar="T",
    default=None,
    help="from this date or time on (UTC unless it has an offset)",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--limit",
    metavar="N",
    type=click.IntRange(min=1),
    default=None,
    help="only the newest N rows that match (shown oldest first)",
)
@global_options
@click.pass_context
@handle_errors
def history(
    ctx: click.Context,
    /,
    campaign: str | None,
    since: str | None,
    fmt: str,
    limit: int | None,
    **options: Any,
) -> None:
    """Show what was sent, failed, missed or is uncertain, from the ledger.

    Rows are read and printed a page at a time; on a terminal the table goes
    through $PAGER (default: less -FRX; PAGER=cat for none).
    """
    from scheduler import views
    from scheduler.pager import show_pieces

    settings, now = settings_of(ctx, pop_globals(options))
    start = None if since is None else _when(since, now, "--since")
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    pieces = views.history(settings, campaign=campaign, since=start, fmt=fmt, limit=limit)
    show_pieces(pieces, table=fmt == "table")


@cli.command(name="copy-ledger")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="the empty ledger to copy into, e.g. postgresql+psycopg://user@host/dbname",
)
@global_options
@click.pass_context
@handle_errors
def copy_ledger(ctx: click.Context, /, target: str, **options: Any) -> None:
    """Copy the ledger (--db) into an empty database: every row, the holds, the schema version.

    Moves a SQLite ledger into PostgreSQL for several daemons; SQLite to SQLite
    and PostgreSQL to PostgreSQL work too. Stop the daemon first: a daemon
    running on a SQLite ledger makes it refuse, and so does a target with any
    row in it. All or nothing, in one transaction on the target.
    """
    from scheduler.ledgercopy import copy_ledger as copy

    settings, _now = settings_of(ctx, pop_globals(options))
    click.echo(copy(settings.db, target).report(), nl=False)


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@global_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, /, fmt: str, **options: Any) -> None:
    """Holds in force; per campaign: next occurrences, last sends, failures, uncertain rows."""
    from scheduler import views

    project, now = load_for(ctx, options)
    report(project.errors)
    shown = views.status_json(project, now) if fmt == "json" else views.status(project, now)
    _show(shown, fmt)
    if project.errors:
        sys.exit(1)


@cli.group()
def accounts() -> None:
    """Work with the accounts in accounts.yaml."""


@accounts.command("check")
@click.option("--account", metavar="A", default=None, help="only this account")
@global_options
@click.pass_context
@handle_errors
def accounts_check(ctx: click.Context, /, account: str | None, **options: Any) -> None:
    """Verify each account's credentials with one harmless call."""
    from scheduler.dispatch import make_adapter

    project, _now = load_for(ctx, options)
    report([p for p in project.errors if p.path == display_path(project.settings.accounts)])
    chosen = [a for a in project.accounts.values() if account is None or a.name == account]
    if account is not None and not chosen:
        raise click.BadParameter(
            f"no account '{account}'; accounts: {', '.join(sorted(project.accounts)) or 'none'}",
            param_hint="--account",
        )
    bad = 0
    for acct in chosen:
        if acct.unset:
            bad += 1
            click.echo(
                f"{acct.name} ({acct.platform.label}): not checked: {', '.join('${' + u.var + '}' for u in acct.unset)} not set"
            )
            continue
        try:
            who = make_adapter(acct).check()
        except PlatformError as exc:
            bad += 1
            click.echo(f"{acct.name} ({acct.platform.label}): refused: {exc.reason}")
            continue
        click.echo(f"{acct.name} ({acct.platform.label}): ok, {who}")
    if bad or project.errors:
        sys.exit(1)


def main() -> None:
    """Run the command line, with ``.env`` read first (the real environment wins)."""
    redacted_io.install_streams()  # whatever prints, and whatever it prints, is masked
    remember_real_environment()
    for key, value in environment().items():
        os.environ.setdefault(key, value)
    _configure_logging("text")
    cli(prog_name="solidarity")
