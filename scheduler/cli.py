"""The ``solidarity`` command: thin commands that parse, call the core, and print."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from scheduler import dryrun, preview
from scheduler.config import DEFAULT_DB, Settings, environment
from scheduler.errors import Problem, SolidarityError
from scheduler.project import Project, load_project
from scheduler.timeutil import parse_date_or_datetime, parse_datetime

F = TypeVar("F", bound=Callable[..., Any])

GLOBAL_OPTIONS: list[tuple[str, str, str, Any]] = [
    ("--campaigns", "SOLIDARITY_CAMPAIGNS", "campaigns folder", "campaigns"),
    ("--templates", "SOLIDARITY_TEMPLATES", "templates folder", "templates"),
    ("--accounts", "SOLIDARITY_ACCOUNTS", "accounts file", "accounts.yaml"),
    ("--db", "SOLIDARITY_DATABASE_URL", "ledger database URL", DEFAULT_DB),
]


def global_options(func: F) -> F:
    """Accept the global options after the command name as well as before it."""
    for flag, envvar, what, default in reversed(GLOBAL_OPTIONS):
        func = click.option(
            flag, envvar=envvar, default=None, help=f"{what} [env {envvar}; default {default}]"
        )(func)
    func = click.option("--now", "now_text", envvar="SOLIDARITY_NOW", default=None, hidden=True)(
        func
    )
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@global_options
@click.version_option(package_name="solidarity-scheduler")
@click.pass_context
def cli(ctx: click.Context, /, **options: Any) -> None:
    """Schedule solidarity posts from campaign files: validate, preview, run."""
    ctx.obj = options


def _settings(ctx: click.Context, options: dict[str, Any]) -> tuple[Settings, datetime]:
    merged = {**(ctx.obj or {}), **{k: v for k, v in options.items() if v is not None}}
    settings = Settings(
        campaigns=Path(merged.get("campaigns") or "campaigns"),
        templates=Path(merged.get("templates") or "templates"),
        accounts=Path(merged.get("accounts") or "accounts.yaml"),
        db=merged.get("db") or DEFAULT_DB,
    )
    now = datetime.now(UTC)
    if merged.get("now_text"):
        try:
            now = parse_datetime(merged["now_text"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="SOLIDARITY_NOW") from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
    return settings, now


def _globals(options: dict[str, Any]) -> dict[str, Any]:
    keys = {"campaigns", "templates", "accounts", "db", "now_text"}
    return {k: options.pop(k) for k in list(options) if k in keys}


def _load(ctx: click.Context, options: dict[str, Any]) -> tuple[Project, datetime]:
    settings, now = _settings(ctx, _globals(options))
    return load_project(settings, environment()), now


def _report(problems: list[Problem]) -> None:
    for problem in sorted(problems):
        click.echo(str(problem), err=True)


def handle_errors(func: F) -> F:
    """Turn the product's errors into messages and exit 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SolidarityError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


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
    project, now = _load(ctx, options)
    problems = dryrun.validate(project, now, days)
    _report(problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        click.echo(f"{len(errors)} problem{'s' if len(errors) != 1 else ''} found.", err=True)
        sys.exit(1)
    count = len(project.campaigns)
    click.echo(
        f"ok: {count} campaign{'s' if count != 1 else ''}, {len(project.accounts)} accounts, next {days} days render cleanly."
    )


def _when(value: str | None, now: datetime) -> datetime:
    if value is None or value == "now":
        return now
    try:
        parsed = parse_date_or_datetime(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
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
    project, now = _load(ctx, options)
    if campaign is not None and project.campaign(campaign) is None:
        known = ", ".join(c.campaign.name for c in project.campaigns) or "none loaded"
        _report(project.errors)
        raise click.BadParameter(
            f"no campaign '{campaign}'; campaigns: {known}", param_hint="--campaign"
        )
    if account is not None and account not in project.accounts:
        raise click.BadParameter(
            f"no account '{account}'; accounts: {', '.join(sorted(project.accounts)) or 'none'}",
            param_hint="--account",
        )
    start = _when(from_, now)
    end = start + timedelta(days=days)
    rows = dryrun.rows(project, start, end, campaign=campaign, account=account)
    if fmt == "json":
        out = preview.json_lines(rows)
    elif fmt == "html":
        out = preview.html_page(rows, project)
    else:
        out = preview.table(rows, project)
    if output is not None:
        output.write_text(out, encoding="utf-8")
    else:
        click.echo(out, nl=False)
    _report(project.problems)
    bad = [r for r in rows if r.status in ("error", "too_long")]
    if bad:
        click.echo(
            f"{len(bad)} occurrence(s) would not be sent as shown: run `solidarity validate` for details.",
            err=True,
        )
    if project.errors:
        sys.exit(1)


def main() -> None:
    """Run the command line, with ``.env`` read first (the real environment wins)."""
    for key, value in environment().items():
        os.environ.setdefault(key, value)
    cli(prog_name="solidarity")
