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


def environment(
    env_file: Path = Path(".env"), base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Merge ``.env`` under the real environment: a variable set in both keeps the real value.

    An empty value counts as unset, so a copied ``.env.example`` hides nothing.
    """
    merged: dict[str, str] = {}
    if env_file.is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v})
    merged.update({k: v for k, v in (os.environ if base is None else base).items() if v})
    return merged
