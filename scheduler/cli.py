"""The ``solidarity`` command: thin commands that parse, call the core, and print."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scheduler import dryrun, preview
from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.config import DEFAULT_DB, Settings, environment, remember_real_environment
from scheduler.errors import PlatformError, Problem, SolidarityError, display_path
from scheduler.planning import Occurrence, next_instant, plan_post
from scheduler.project import Project, load_project
from scheduler.timeutil import parse_date_or_datetime, parse_datetime

if TYPE_CHECKING:  # the sending side (httpx, SQLAlchemy, Alembic) loads only for its commands
    from scheduler.ledger import Ledger

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
    project = load_project(settings, environment())
    _mask_secrets(project)
    return project, now


def _mask_secrets(project: Project) -> None:
    """Tell the log's redaction filter the secrets of the accounts just loaded."""
    from scheduler.logs import REDACTOR, secret_values

    REDACTOR.set_secrets(secret_values(project.accounts.values()))


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


def _missing_sqlite(url: str) -> bool:
    """Say whether a SQLite ledger file does not exist yet (reading must not create it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return False
    return not Path(database).exists()


def _ledger(settings: Settings) -> Ledger:
    from scheduler.ledger import Ledger

    return Ledger.open(settings.db)


def _require_secrets(accounts: list[Account]) -> None:
    problems = [p for a in accounts for p in a.unset_problems("set it before sending")]
    if problems:
        _report([Problem(p.path, p.line, p.message) for p in problems])
        names = sorted({u.var for a in accounts for u in a.unset})
        raise SolidarityError(
            f"missing secrets: {', '.join(names)}; set them in the environment or .env"
        )


def _pick_person(
    lc: LoadedCampaign, post: Post, wanted: str | None, now: datetime
) -> list[str | None]:
    """Return whom a manual send features: --person, else whom the schedule features now."""
    c = lc.campaign
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


@cli.command()
@click.argument("campaign")
@click.argument("post_id", metavar="POST")
@click.option("--account", metavar="A", default=None, help="only this account")
@click.option("--person", metavar="P", default=None, help="feature this person")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
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
    **options: Any,
) -> None:
    """Post one occurrence now, through the daemon's path, and log it."""
    project, now = _load(ctx, options)
    lc = project.campaign(campaign)
    if lc is None:
        _report(project.errors)
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
    _require_secrets(targets)
    instant = now.astimezone(lc.campaign.tz).replace(microsecond=0)
    people = _pick_person(lc, post, person, now)
    jobs = [
        (Occurrence(lc.campaign.name, post.id, a.name, instant, who, 0), a)
        for a in targets
        for who in people
    ]
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
    from scheduler.dispatch import Dispatcher

    ledger = _ledger(project.settings)
    dispatcher = Dispatcher(project, ledger, clock=lambda: datetime.now(UTC))
    failed = 0
    for occ, acct in jobs:
        entry = dispatcher.deliver(lc, post, occ, acct)
        if entry.status == "sent":
            click.echo(f"{acct.name}: sent {entry.remote_url or entry.remote_id}")
        else:
            failed += 1
            click.echo(f"{acct.name}: {entry.status}: {entry.error or entry.reason}", err=True)
    if failed:
        sys.exit(1)


ONCE_WAIT = timedelta(minutes=5)  # how long `run --once` waits for retries before it exits


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
    import time

    from scheduler import daemon as d

    settings, now = _settings(ctx, _globals(options))
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    _configure_logging(log_format)

    def load() -> Project:
        return load_project(settings, environment())

    project = load()
    _mask_secrets(project)
    problems = d.problems_of(project, now)
    if problems:
        _report(problems)
        missing = d.missing_secrets(project)
        if missing:
            raise SolidarityError(
                f"missing secrets: {', '.join(missing)}; set them in the environment or .env"
            )
        raise SolidarityError(f"{len(problems)} problem(s) in the files; nothing was sent")
    ledger = _ledger(settings)
    with d.ledger_lock(settings.db):
        if not once:
            clockwork = d.SchedulerClockwork(clock)
            daemon = d.Daemon(
                project, ledger, clockwork, load=load, on_project=_mask_secrets, workers=_workers()
            )
            d.serve(daemon, clockwork, (settings.campaigns, settings.templates, settings.accounts))
            return
        manual = d.ManualClockwork(clock)
        daemon = d.Daemon(project, ledger, manual, workers=0, on_project=_mask_secrets)
        daemon.settled = []
        daemon.start()
        manual.cancel("wake")  # once: what falls due later is the next run's
        manual.run_until(clock() + ONCE_WAIT)
        for entry in daemon.settled:
            detail = entry.remote_url or entry.error or entry.reason or ""
            click.echo(f"{entry.status:9} {entry.key} {detail}".rstrip())
        waiting = ledger.in_flight()  # the lock says no other process has rows in flight
        for entry in waiting:
            click.echo(
                f"{entry.status:9} {entry.key} {entry.error or ''} (the next run retries it)"
            )
        if not daemon.settled and not waiting:
            click.echo("nothing due")
        ledger.close()
        if daemon.failed:
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
@global_options
@click.pass_context
@handle_errors
def history(
    ctx: click.Context, /, campaign: str | None, since: str | None, fmt: str, **options: Any
) -> None:
    """Show what was sent, failed, missed or is uncertain, from the ledger."""
    settings, now = _settings(ctx, _globals(options))
    start = None
    if since is not None:
        start = _when(since, now)
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if _missing_sqlite(settings.db):
        click.echo("Nothing in the ledger yet." if fmt == "table" else "", nl=fmt == "table")
        return
    ledger = _ledger(settings)
    entries = ledger.history(campaign=campaign, since=start)
    from scheduler import reports
    from scheduler.campaigns import load_campaigns

    loaded, _ = load_campaigns(settings.campaigns) if settings.campaigns.is_dir() else ([], [])
    zones = {lc.campaign.name: lc.campaign.timezone for lc in loaded}
    click.echo(
        reports.json_lines(entries, zones) if fmt == "json" else reports.table(entries, zones),
        nl=False,
    )


@cli.command()
@global_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, /, **options: Any) -> None:
    """Per campaign: next occurrences, last sends, failures and uncertain rows."""
    from scheduler import reports

    project, now = _load(ctx, options)
    _report(project.errors)
    upcoming: dict[str, list[tuple[datetime, str, str | None, list[str]]]] = {}
    from scheduler.planning import plan

    for occ in plan([lc.campaign for lc in project.campaigns], now, now + timedelta(days=7)):
        found = upcoming.setdefault(occ.campaign, [])
        if (
            found
            and found[-1][0] == occ.scheduled_for
            and found[-1][1] == occ.post
            and found[-1][2] == occ.person
        ):
            found[-1][3].append(occ.account)
        else:
            found.append((occ.scheduled_for, occ.post, occ.person, [occ.account]))
    entries = [] if _missing_sqlite(project.settings.db) else _ledger(project.settings).history()
    listed = [
        (c.campaign.name, c.campaign.title, c.campaign.timezone, c.campaign.paused)
        for c in project.campaigns
    ]
    click.echo(reports.status(listed, upcoming, entries), nl=False)
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

    project, _now = _load(ctx, options)
    _report([p for p in project.errors if p.path == display_path(project.settings.accounts)])
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
    remember_real_environment()
    for key, value in environment().items():
        os.environ.setdefault(key, value)
    _configure_logging("text")
    cli(prog_name="solidarity")
