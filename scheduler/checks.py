"""Turn pydantic's validation errors into ``path:line: what is wrong; what is allowed``."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from scheduler.errors import Problem
from scheduler.yamlfile import Loc, Located

MISSING_HINTS = {
    "alt": "; alt text is required: describe the image for people who cannot see it",
    "id": "; give it an id (lower-case letters, digits, '-' and '_')",
    "timezone": "; give an IANA time zone such as Asia/Baku",
    "name": "; give it a name",
    "title": "; give it a title",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Return the model class that validates the mapping at ``loc`` below ``model``."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        models = _models_in(field.annotation)
        current = models[0] if models else None
    return current


def dotted(loc: Loc) -> str:
    """Write a location as staff would read it: ``posts[2].media[0].alt``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _is_union_of_none(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)


def problems_from(
    exc: ValidationError, located: Located, model: type[BaseModel], base: Loc = ()
) -> list[Problem]:
    """Convert every error of one validation into problems at their lines."""
    problems: list[Problem] = []
    seen: set[tuple[int, str]] = set()
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if not _is_tag(p))
        full = (*base, *loc)
        kind = err["type"]
        where = dotted(full)
        if kind == "extra_forbidden" and loc:
            key = str(loc[-1])
            parent = model_at(model, loc[:-1])
            allowed = sorted(parent.model_fields) if parent else []
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            message = f"unknown key '{key}'; {hint}allowed here: {', '.join(allowed)}"
        elif kind == "missing" and loc:
            message = f"missing key '{loc[-1]}'" + (f" in {dotted(full[:-1])}" if full[:-1] else "")
            message += MISSING_HINTS.get(str(loc[-1]), "")
        elif kind == "value_error":
            message = f"{where}: {err['msg'].removeprefix('Value error, ')}"
        elif kind in ("model_type", "dict_type"):
            message = (
                f"{where}: expected a mapping of keys (key: value), got {_shown(err['input'])}"
            )
        elif kind == "bool_parsing" or kind == "bool_type":
            message = f"{where}: got {_shown(err['input'])}; write true or false"
        elif kind == "list_type":
            message = f"{where}: expected a list, got {_shown(err['input'])}"
        else:
            wanted = err["msg"].replace("Input should be", "expected").replace("Input", "value")
            message = f"{where}: got {_shown(err['input'])}; {wanted}"
        if full not in located.lines and full and isinstance(full[-1], int):
            where = dotted(full[:-1])  # a single value the model read as a one-item list
            message = message.replace(dotted(full) + ":", where + ":", 1)
        line = located.line(full)
        if (line, message) not in seen:
            seen.add((line, message))
            problems.append(Problem(located.path, line, message))
    return problems


def _is_tag(part: Any) -> bool:
    # pydantic puts the chosen member of a union in the location (e.g. 'str', 'list[...]')
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool"))


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
