"""What every command shares: the global options, settings, loading, errors and the ledger."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scheduler.accounts import Account
from scheduler.config import DEFAULT_DB, Settings, environment
from scheduler.errors import Problem, SolidarityError, UsageError
from scheduler.project import Project, load_project
from scheduler.timeutil import parse_datetime

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


def settings_of(ctx: click.Context, options: dict[str, Any]) -> tuple[Settings, datetime]:
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


def pop_globals(options: dict[str, Any]) -> dict[str, Any]:
    keys = {"campaigns", "templates", "accounts", "db", "now_text"}
    return {k: options.pop(k) for k in list(options) if k in keys}


def load_for(ctx: click.Context, options: dict[str, Any]) -> tuple[Project, datetime]:
    settings, now = settings_of(ctx, pop_globals(options))
    project = load_project(settings, environment())
    mask_secrets(project)
    return project, now


def mask_secrets(project: Project) -> None:
    """Tell the redaction (output, ledger, logs) the secrets of the files just loaded."""
    from scheduler import redact

    redact.register(project)


def mask_secrets_of(settings: Settings) -> None:
    """Tell the redaction the accounts' secrets, for a command that loads no campaign."""
    from scheduler import redact
    from scheduler.accounts import load_accounts

    environ = environment()
    accounts, _problems = load_accounts(settings.accounts, environ)
    redact.register_accounts(accounts.values(), settings, environ)


def report(problems: list[Problem]) -> None:
    for problem in sorted(problems):
        click.echo(str(problem), err=True)


def handle_errors(func: F) -> F:
    """Turn the product's errors into messages and exit 1 (2 for wrong usage), never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsageError as exc:
            raise click.UsageError(str(exc)) from None
        except SolidarityError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def missing_sqlite(url: str) -> bool:
    """Say whether a SQLite ledger file does not exist yet (reading must not create it)."""
    from scheduler.config import sqlite_file

    found = sqlite_file(url)
    return found is not None and not found.exists()


def open_ledger(settings: Settings) -> Ledger:
    from scheduler.ledger import Ledger

    return Ledger.open(settings.db, apart=True)  # the daemon never keeps Alembic in memory


def require_secrets(accounts: list[Account]) -> None:
    problems = [p for a in accounts for p in a.unset_problems("set it before sending")]
    if problems:
        report([Problem(p.path, p.line, p.message) for p in problems])
        names = sorted({u.var for a in accounts for u in a.unset})
        raise SolidarityError(
            f"missing secrets: {', '.join(names)}; set them in the environment or .env"
        )
