"""Settings from flags, the environment and ``.env`` (the real environment wins)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_DB = "sqlite:///solidarity.db"


@dataclass(frozen=True)
class Settings:
    """Where the user's files and the ledger are."""

    campaigns: Path = Path("campaigns")
    templates: Path = Path("templates")
    accounts: Path = Path("accounts.yaml")
    db: str = DEFAULT_DB


_REAL_ENVIRONMENT: dict[str, str] | None = None


def remember_real_environment() -> None:
    """Keep the environment as the process got it, before ``.env`` is merged into it.

    A reload reads ``.env`` again; without this, values merged from the old
    ``.env`` would pass for real ones and hide an edit.
    """
    global _REAL_ENVIRONMENT
    if _REAL_ENVIRONMENT is None:
        _REAL_ENVIRONMENT = dict(os.environ)


def environment(
    env_file: Path = Path(".env"), base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Merge ``.env`` under the real environment: a variable set in both keeps the real value.

    An empty value counts as unset, so a copied ``.env.example`` hides nothing.
    """
    merged: dict[str, str] = {}
    if env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v})
    if base is None:
        base = os.environ if _REAL_ENVIRONMENT is None else _REAL_ENVIRONMENT
    merged.update({k: v for k, v in base.items() if v})
    return merged


def sqlite_file(url: str) -> Path | None:
    """Return a SQLite ledger's file by its real path (a URI form too); None for another database.

    A symlink, a relative path and a ``file:`` URI of one file give one path: the
    daemon's lock and ``copy-ledger``'s checks must see one file as one.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # a URI filename (?uri=true): the path is before any ?
        database = database[5:].split("?", 1)[0]
    return Path(os.path.realpath(database))
