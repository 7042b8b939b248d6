"""Shared helpers: a project laid out in a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler.config import Settings
from scheduler.project import Project, load_project

ACCOUNTS = """\
hr-mastodon:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${MASTODON_ACCESS_TOKEN}
hr-bluesky:
  platform: bluesky
  service: http://127.0.0.1:9
  handle: test.example
  app_password: ${BLUESKY_APP_PASSWORD}
hr-telegram:
  platform: telegram
  api: http://127.0.0.1:9
  bot_token: ${TELEGRAM_BOT_TOKEN}
  chat: "@test"
hr-x:
  platform: x
  api: http://127.0.0.1:9
  api_key: ${X_API_KEY}
  api_secret: ${X_API_SECRET}
  access_token: ${X_ACCESS_TOKEN}
  access_token_secret: ${X_ACCESS_TOKEN_SECRET}
hr-discord:
  platform: discord
  webhook_url: ${DISCORD_WEBHOOK_URL}
"""

ProjectFactory = Callable[..., Project]


def write_project(
    root: Path,
    campaign: str,
    templates: dict[str, str] | None = None,
    accounts: str = ACCOUNTS,
) -> Settings:
    """Write a campaign, templates and accounts under ``root``; return settings for them."""
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "campaigns" / "c.yaml").write_text(textwrap.dedent(campaign), encoding="utf-8")
    for name, body in (templates or {}).items():
        (root / "templates" / name).write_text(textwrap.dedent(body), encoding="utf-8")
    (root / "accounts.yaml").write_text(accounts, encoding="utf-8")
    return Settings(
        campaigns=root / "campaigns",
        templates=root / "templates",
        accounts=root / "accounts.yaml",
        db=f"sqlite:///{root / 'ledger.db'}",
    )


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Build a loaded project from a campaign text and templates."""

    def make(campaign: str, templates: dict[str, str] | None = None, **kw: str) -> Project:
        settings = write_project(tmp_path, campaign, templates, **kw)
        return load_project(settings, environ={})

    return make


# -- PostgreSQL: a throwaway server per session (tests/pgserver.py), a database per use --

PostgresFactory = Callable[[], str]


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> PostgresFactory:
    """Run one throwaway PostgreSQL server; return a factory of URLs of new, empty databases.

    Skipped when PostgreSQL's binaries are missing, except in CI (CI=true), where
    that fails: CI installs them (.ci/install-postgres).
    """
    import os

    from tests.pgserver import PgServer, PgUnavailable

    try:
        server = PgServer()
    except PgUnavailable as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI needs PostgreSQL for the ledger tests: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"no PostgreSQL server here: {missing}")
    request.addfinalizer(server.stop)
    server.start()
    return server.database


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty ledger database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    factory: PostgresFactory = request.getfixturevalue("postgres")
    return factory()
