"""The template environment: our filters, a loader confined to its folder, the bounded sandbox.

Templates are plain text (no HTML escaping), undefined names are errors, and the
sandbox (:mod:`scheduler.budget`) refuses any reach into Python internals and any
render over its budget.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2

from scheduler.budget import bounded_filter
from scheduler.confine import OutsideError, read_inside
from scheduler.sandbox import BoundedSandbox
from scheduler.timeutil import parse_date
from scheduler.yamlfile import MAX_FILE_BYTES


@jinja2.pass_context
def days_since(context: jinja2.runtime.Context, value: Any) -> int:
    """Count whole days from a date to the occurrence's local date (0 on the same day)."""
    if value is None or value == "":
        raise ValueError("days_since got no date (is detained_on set for this person?)")
    if not isinstance(value, date):
        value = parse_date(value)
    elif isinstance(value, datetime):
        value = value.date()
    scheduled = context.get("scheduled_for")
    if not isinstance(scheduled, datetime):
        raise ValueError("days_since needs scheduled_for in the context")
    days: int = (scheduled.date() - value).days
    return days


def hashtag(value: Any) -> str:
    """Make ``#`` + the text's letters, digits and ``_`` (any script), nothing else."""
    kept: list[str] = []
    for ch in str(value):
        cat = unicodedata.category(ch)
        if ch == "_" or cat[0] == "L" or cat == "Nd" or (cat[0] == "M" and kept):
            kept.append(ch)
    return "#" + "".join(kept)


class Confined(jinja2.BaseLoader):
    """Read templates (and what they include or extend) only inside their folder.

    Through :func:`scheduler.confine.read_inside`: a symlink or ``..`` on the way is
    refused, whatever it points at, so ``{% include %}`` cannot reach ``../.env``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sources: dict[str, str] = {}

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        try:
            data = read_inside(self.folder, template, limit=MAX_FILE_BYTES)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise jinja2.TemplateNotFound(template) from None
        except OSError as exc:
            raise OutsideError(f"'{template}' cannot be read: {exc.strerror or exc}") from None
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise OutsideError(
                f"'{template}' is not UTF-8 (line {line}); save it as UTF-8"
            ) from None
        self.sources[template] = source
        return source, str(self.folder / template), lambda: True


def make_environment(templates: Path) -> BoundedSandbox:
    """Build the one template environment every render uses."""
    env = BoundedSandbox(
        loader=Confined(templates),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["days_since"] = days_since
    env.filters["hashtag"] = hashtag
    env.filters = {name: bounded_filter(name, f) for name, f in env.filters.items()}
    return env
