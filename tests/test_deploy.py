"""The deployment files say what docs/deploy.md says they do (no Docker or systemd needed)."""

from __future__ import annotations

import configparser
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

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


# -- several daemons on one PostgreSQL: the compose file and the template unit --


@pytest.fixture
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_three_daemons_once_postgresql_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "solidarity"}
    postgres, daemon = services["postgres"], services["solidarity"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert daemon["deploy"]["replicas"] == 3
    assert daemon["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert daemon["command"][0] == "run"
    assert daemon["build"] == ".."  # the repository's Dockerfile
    url = make_url(daemon["environment"]["SOLIDARITY_DATABASE_URL"])
    assert url.drivername == "postgresql+psycopg" and url.host == "postgres"
    # the ledger on a named volume
    volume, _, mounted = postgres["volumes"][0].partition(":")
    assert volume in compose["volumes"] and mounted == "/var/lib/postgresql/data"
    for mount in daemon["volumes"]:  # every daemon the same files, read-only
        assert mount.endswith(":ro")


def test_compose_holds_no_secret(compose: dict[str, Any]) -> None:
    services = compose["services"]
    url = make_url(services["solidarity"]["environment"]["SOLIDARITY_DATABASE_URL"])
    assert url.password is None
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")):
                assert str(value).startswith("${") and str(value).endswith("}"), name
    assert services["solidarity"]["env_file"] == "../.env"


@pytest.fixture
def template_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "solidarity@.service", encoding="utf-8")
    return parser


def test_template_unit_runs_one_daemon_per_instance(
    template_unit: configparser.ConfigParser,
) -> None:
    service = template_unit["Service"]
    assert "%i" in template_unit["Unit"]["Description"]
    assert service["User"] == "solidarity"
    assert shlex.split(service["ExecStart"])[0].endswith("/solidarity")
    assert shlex.split(service["ExecStart"])[1:] == ["run"]
    assert service["EnvironmentFile"] == "/srv/solidarity/.env"  # required: the database URL
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert template_unit["Install"]["WantedBy"] == "multi-user.target"


def test_template_unit_is_hardened_and_writes_nothing(
    template_unit: configparser.ConfigParser, unit: configparser.ConfigParser
) -> None:
    service = template_unit["Service"]
    assert "StateDirectory" not in service and "ReadWritePaths" not in service
    assert service["ProtectSystem"] == "strict"
    hardening = {k: v for k, v in unit["Service"].items() if k.startswith(("Protect", "Restrict"))}
    for key, value in hardening.items():  # at least what the single daemon's unit has
        assert service[key] == value, key
    for flag in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert service[flag] == "yes"


def test_deploy_doc_shows_the_files_it_describes() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for needed in (
        "deploy/compose.yaml",
        "solidarity@.service",
        "solidarity@1 solidarity@2 solidarity@3",
        "replicas: 3",
        "condition: service_healthy",
        "solidarity copy-ledger --to URL",
        "SOLIDARITY_DATABASE_URL=postgresql+psycopg://",
        "NTP",
    ):
        assert needed in doc, needed
    # each directive the doc quotes from the template unit is in the unit
    unit = (ROOT / "deploy" / "solidarity@.service").read_text(encoding="utf-8").splitlines()
    block = doc.split("```ini\n", 1)[1].split("```", 1)[0]
    for line in block.splitlines():
        if "=" in line and not line.startswith("#"):
            assert line in unit, line


def subset(shown: Any, real: Any) -> bool:
    """Say whether what the doc shows of a YAML document is in the real one, as it is there."""
    if isinstance(shown, dict):
        return isinstance(real, dict) and all(
            k in real and subset(v, real[k]) for k, v in shown.items()
        )
    return bool(shown == real)


def test_the_compose_file_the_doc_shows_is_the_one_in_the_repository(
    compose: dict[str, Any],
) -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = doc.split("```yaml\nservices:", 1)[1].split("```", 1)[0]
    shown = yaml.safe_load("services:" + block)
    assert subset(shown, compose)
