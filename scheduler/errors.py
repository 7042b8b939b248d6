"""The one exception tree of solidarity.

::

    SolidarityError                 anything the product reports to a person
     ├── ProblemsError              user files are invalid; carries every Problem found
     ├── UsageError                 a command was asked for something that cannot be done
     ├── RenderError                one template failed for one occurrence; carries a Problem
     ├── LedgerError                the ledger cannot be opened or migrated
     └── PlatformError              a platform refused or failed a request (its own words kept)
          ├── PermanentError        auth, validation, duplicate content: never retried
          ├── RetryableError        surely nothing was created (refused, 429, "unavailable");
          │                         carries the wait the platform asked for
          └── UncertainError        the request went out and the outcome is unknown (timeout,
                                    5xx) on a platform without an idempotency key

Every user-facing failure is one of these; the command line turns them into
``path:line: message`` lines and an exit code, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong (or worth a warning) in a user's file, at a line."""

    path: str
    line: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


def display_path(path: Path | str) -> str:
    """Show a path relative to the working directory when it lies below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


class SolidarityError(Exception):
    """Base of every error the product reports to a person."""


class ProblemsError(SolidarityError):
    """User files are invalid: every problem found, each with path:line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(SolidarityError):
    """A command asked for something that cannot be done (an unknown campaign, say)."""


class RenderError(SolidarityError):
    """A template failed while rendering one occurrence."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class LedgerError(SolidarityError):
    """The ledger cannot be opened, migrated or written."""


class RowTakenError(LedgerError):
    """A row moved on since this process read it: another process settled or took it over.

    Every change of a row is conditional on the status and owner it was read
    with, so two processes never both move one row forward; the one that finds
    the row changed leaves it alone.
    """


class PlatformError(SolidarityError):
    """A platform refused or failed a request; ``reason`` is the platform's own words."""

    def __init__(
        self, platform: str, reason: str, *, status: int | None = None, wait: float | None = None
    ) -> None:
        self.platform = platform
        self.reason = reason
        self.status = status
        self.wait = wait  # seconds the platform asked us to wait, if it said
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{platform}{code}: {reason}")


class PermanentError(PlatformError):
    """Auth, validation or duplicate content: retrying cannot help."""


class RetryableError(PlatformError):
    """Surely nothing was created; try again after ``wait`` seconds (or a backoff)."""


class UncertainError(PlatformError):
    """The request went out and its outcome is unknown; read back before sending again."""


def cause(exc: BaseException) -> str:
    """Return what a library (a database driver above all) said: its first line, 300 at most."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    return lines[0][:300] if lines else type(exc).__name__
