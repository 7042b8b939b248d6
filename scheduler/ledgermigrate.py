"""Bring a ledger's schema to the newest version, once, however many daemons start at once.

Alembic runs the migrations in ``scheduler/migrations`` under a lock: on
PostgreSQL an advisory lock held until the commit, on SQLite the write lock.
Whoever gets it first migrates; the others find the schema current.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_MIGRATING = threading.Lock()  # Alembic's command API keeps its context in module globals
_MIGRATION_LOCK = 0x736F6C6964617269  # PostgreSQL advisory lock key of migrations ("solidari")


SCHEMA_HEAD = "0003"  # the newest migration in scheduler/migrations (a test keeps them equal)


def current(engine: Engine) -> bool:
    """Say whether the schema is at SCHEMA_HEAD, without importing Alembic (0.3 s, 10 MB)."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            return list(found) == [SCHEMA_HEAD]
    except (OperationalError, ProgrammingError):  # no table yet: a new ledger
        return False


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic, versions in scheduler/migrations)."""
    if current(engine):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(resources.files("scheduler") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
    with _MIGRATING, engine.begin() as connection:
        # daemons started at once on an empty database: one migrates under a lock held
        # until its commit; the others wait, then find the schema at head (Alembic re-reads it)
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        elif connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock; busy_timeout waits
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def migrate_apart(engine: Engine, url: str) -> None:
    """Migrate in a child process, so that Alembic (about 9 MB) never stays in this one.

    For the commands, above all the long-running daemon: a migration happens once
    per version, and the memory it imports would be kept for the process's life.
    The URL goes to the child on its standard input, never on a command line.
    """
    if current(engine):
        return
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "scheduler.ledgermigrate"],
        input=url,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"the migration exited {done.returncode}")


def _main() -> int:
    """Migrate the ledger whose URL is on standard input; the cause on standard error."""
    import sys

    from sqlalchemy import create_engine, event

    try:
        engine = create_engine(sys.stdin.read().strip())
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_pragmas)
        migrate(engine)
    except Exception as exc:
        from scheduler.errors import cause

        print(cause(exc), file=sys.stderr)
        return 1
    finally:
        if "engine" in locals():
            engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
