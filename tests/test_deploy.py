"""The deployment files say what docs/deploy.md says they do (no Docker or systemd needed)."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = text.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            found.append((keyword.upper(), " ".join(args.split())))
    return found


def last(keyword: str) -> str:
    values = [args for key, args in instructions() if key == keyword]
    assert values, f"the Dockerfile has no {keyword}"
    return values[-1]


def test_dockerfile_runs_solidarity_run_as_a_user_that_is_not_root() -> None:
    assert last("FROM").startswith("python:3.12-slim")
    user = last("USER").split(":")[0]
    assert user not in ("root", "0")
    assert user == "solidarity"
    command = json.loads(last("ENTRYPOINT")) + json.loads(last("CMD"))
    assert command == ["solidarity", "run"]
    assert last("STOPSIGNAL") == "SIGTERM"
    assert last("WORKDIR") == "/srv/solidarity"


def test_dockerfile_keeps_the_ledger_on_a_volume() -> None:
    volume = last("VOLUME")
    assert "/var/lib/solidarity" in volume
    env = " ".join(args for key, args in instructions() if key == "ENV")
    assert "SOLIDARITY_DATABASE_URL=sqlite:////var/lib/solidarity/solidarity.db" in env
    # the folder exists, owned by the user, before VOLUME freezes it
    keys = [key for key, _ in instructions()]
    made = next(
        i for i, (k, a) in enumerate(instructions()) if k == "RUN" and "/var/lib/solidarity" in a
    )
    assert made < keys.index("VOLUME")
    assert keys.index("VOLUME") < keys.index("USER")


def test_dockerignore_keeps_secrets_and_ledgers_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".git", "*.db", ".env", "*.egg-info", "**/__pycache__", ".mypy_cache"):
        assert pattern in ignored
    for needed in ("README.md", "pyproject.toml", "scheduler", "campaigns", "templates"):
        assert needed not in ignored  # the build copies them


@pytest.fixture
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "solidarity.service", encoding="utf-8")
    return parser


def test_unit_runs_solidarity_run_as_its_own_user(unit: configparser.ConfigParser) -> None:
    service = unit["Service"]
    assert service["User"] == "solidarity"
    assert shlex.split(service["ExecStart"])[0].endswith("/solidarity")
    assert "solidarity run" in service["ExecStart"]
    assert service["WorkingDirectory"] == "/srv/solidarity"
    assert service["EnvironmentFile"] == "-/srv/solidarity/.env"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_reloads_on_hup_and_stops_on_term(unit: configparser.ConfigParser) -> None:
    service = unit["Service"]
    assert "HUP" in service["ExecReload"] and "$MAINPID" in service["ExecReload"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["TimeoutStopSec"] == "20"
    assert service["Restart"] == "on-failure"


def test_unit_writes_only_its_state_directory(unit: configparser.ConfigParser) -> None:
    service = unit["Service"]
    assert service["StateDirectory"] == "solidarity"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/solidarity"
    for flag in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[flag] == "yes"
    text = (ROOT / "deploy" / "solidarity.service").read_text(encoding="utf-8")
    assert "Environment=SOLIDARITY_DATABASE_URL=sqlite:////var/lib/solidarity/solidarity.db" in text
