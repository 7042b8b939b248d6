"""``accounts.yaml``: where posts go, with secrets only as ``${VAR}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from scheduler.checks import problems_from
from scheduler.errors import Problem, ProblemsError, display_path
from scheduler.platforms import PLATFORMS, AccountSettings, Platform, find_platform
from scheduler.yamlfile import Located, load_yaml

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Unset:
    """A ``${VAR}`` in accounts.yaml whose variable is not set."""

    account: str
    key: str
    var: str
    line: int


@dataclass(frozen=True)
class Account:
    """One account: its platform, its settings and which variables are unset."""

    name: str
    platform: type[Platform]
    settings: AccountSettings
    line: int
    path: str = "accounts.yaml"
    unset: tuple[Unset, ...] = ()

    def unset_problems(self, consequence: str) -> list[Problem]:
        """Describe each unset variable at its line in accounts.yaml."""
        return [
            Problem(
                self.path,
                u.line,
                f"{u.account}.{u.key} needs ${{{u.var}}}, which is not set in the environment or .env; {consequence}",
                "warning",
            )
            for u in self.unset
        ]

    @property
    def limit(self) -> int | None:
        """Return the length limit of a post on this account."""
        return self.platform.limit_for(self.settings)


def _expand(value: Any, environ: Mapping[str, str], missing: list[str]) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if environ.get(name):
                return environ[name]
            missing.append(name)
            return ""

        return VAR.sub(sub, value)
    return value


URL_SCHEMES = ("http://", "https://", "socks5://")


def raw_var(raw: Any) -> bool:
    """Say whether a value in the file names a ``${VAR}`` (its expansion is a secret)."""
    return isinstance(raw, str) and VAR.search(raw) is not None


def _bad_url(where: str, value: Any, hidden: bool) -> str | None:
    """Say what is wrong with a URL setting, so that a send never meets it first."""
    if not isinstance(value, str) or not value.lower().startswith(URL_SCHEMES):
        return None
    import httpx  # only for a URL setting to check: preview's import path stays light

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading the port is what checks it
        httpx.URL(value)
        if not parts.hostname:
            raise ValueError("it names no host")
    except (ValueError, httpx.InvalidURL) as exc:
        if hidden or "@" in value:  # a secret, or a password in the URL: not echoed
            shown, why = "this", str(exc).split(":")[0].lower()
        else:
            shown, why = f"'{value}'", str(exc)
        return (
            f"{where}: {shown} is not a valid URL ({why}); write it as https://HOST[:PORT][/PATH]"
        )
    return None


def load_accounts(
    path: Path,
    environ: Mapping[str, str],
    declared: set[str] | None = None,
    by_name: dict[str, list[Problem]] | None = None,
) -> tuple[dict[str, Account], list[Problem]]:
    """Load every account; return the valid ones and every problem.

    ``declared`` collects every name in the file, valid or not, so that a campaign
    naming an invalid account is not told that the account does not exist;
    ``by_name`` collects each entry's own errors (what holds that account alone).
    """
    declared = set() if declared is None else declared
    by_name = {} if by_name is None else by_name
    if not path.exists():
        return {}, [
            Problem(
                display_path(path),
                0,
                "accounts file not found; copy the example accounts.yaml or pass --accounts FILE",
            )
        ]
    try:
        located = load_yaml(path)
    except ProblemsError as exc:
        return {}, list(exc.problems)
    if located.data is None:
        return {}, [
            located.problem(
                (), "the file is empty; list accounts as NAME: {platform: ..., ...}", "warning"
            )
        ]
    if not isinstance(located.data, dict):
        return {}, [
            located.problem(
                (), "accounts.yaml must be a mapping of account names to their settings"
            )
        ]
    accounts: dict[str, Account] = {}
    problems: list[Problem] = []
    for name, body in located.data.items():
        declared.add(str(name))
        account, found = _load_one(str(name), body, located, environ)
        problems.extend(found)
        errors = [p for p in found if p.severity == "error"]
        if errors or account is None:
            by_name[str(name)] = errors
        if account is not None:
            accounts[account.name] = account
    return accounts, problems


def _load_one(
    name: str, body: Any, src: Located, environ: Mapping[str, str]
) -> tuple[Account | None, list[Problem]]:
    at = (name,)
    if not NAME.match(name):
        return None, [
            src.problem(
                at,
                f"'{name}' is not a valid account name; use lower-case letters, digits, '-' and '_'",
            )
        ]
    if not isinstance(body, dict):
        return None, [
            src.problem(at, f"account '{name}' must be a mapping with platform: and its settings")
        ]
    kind = body.get("platform")
    platform = find_platform(str(kind)) if kind is not None else None
    if platform is None:
        what = "has no platform:" if kind is None else f"has an unknown platform '{kind}'"
        return None, [
            src.problem(
                (*at, "platform") if kind is not None else at,
                f"account '{name}' {what}; platforms: {', '.join(sorted(PLATFORMS))}",
            )
        ]
    problems: list[Problem] = []
    unset: list[Unset] = []
    values: dict[str, Any] = {}
    for key, raw in body.items():
        if (
            key in platform.secret_fields
            and raw is not None
            and not (isinstance(raw, str) and VAR.search(raw))
        ):
            var = f"{name.upper().replace('-', '_')}_{str(key).upper()}"
            problems.append(
                src.problem(
                    (*at, key),
                    f"{name}.{key} is written in the file; secrets belong in the environment or .env: write {key}: ${{{var}}} and set {var} there",
                )
            )
            continue
        missing: list[str] = []
        expanded = _expand(raw, environ, missing)
        if missing:
            unset.extend(Unset(name, str(key), var, src.line((*at, key))) for var in missing)
            if key not in platform.secret_fields:
                continue  # leave the default (or the model reports it missing)
        values[key] = expanded
    try:
        settings = platform.settings_model.model_validate(values)
    except ValidationError as exc:
        errors = problems_from(exc, src, platform.settings_model, at)
        skipped = {f"'{k}'" for k in body if k not in values}
        errors = [
            p
            for p in errors
            if not any(u in p.message for u in skipped) or "missing" not in p.message
        ]
        if errors:
            return None, problems + errors
        # only keys whose variables are unset are missing: enough for validate and preview
        settings = platform.settings_model.model_construct(**values)
    for key, value in values.items():
        hidden = key in platform.secret_fields or key == "proxy" or raw_var(body.get(key))
        problem = _bad_url(f"{name}.{key}", value, hidden)
        if problem:
            problems.append(src.problem((*at, key), problem))
    if any(p.severity == "error" for p in problems):
        return None, problems
    return Account(name, platform, settings, src.line(at), src.path, tuple(unset)), problems
