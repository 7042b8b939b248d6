"""The template sandbox, bounded: no saved template can hang a process or eat its memory.

A render may take at most ``MAX_SECONDS``, loop at most ``MAX_LOOPS`` times,
call macros at most ``MAX_DEPTH`` deep, write at most ``MAX_WRITTEN`` characters
(macros and ``{% set %}`` blocks included) and end at most ``MAX_OUTPUT`` long.
No single operation may build a text or list longer than ``MAX_ITEMS``: those
whose size comes from an argument (``'x' * n``, ``center(n)``, ``join`` of a
repeated list, ``'%*s'``, ``batch(n)``) are refused before they build anything.
Going over raises :class:`OverBudget` inside the template, so its message names
the template's line.

The sandbox that applies these is :mod:`scheduler.sandbox`. The checks are cheap (a
counter and a length per output piece): the clock is read
once every 256 calls or loop iterations. Each thread renders under its own budget.
"""

from __future__ import annotations

import re
import string
import threading
import time
from collections.abc import Callable, Iterable
from datetime import date
from functools import wraps
from typing import Any

MAX_SECONDS = 2.0
MAX_OUTPUT = 100_000  # characters of the rendered text; no post is longer
MAX_WRITTEN = 1_000_000  # characters written while rendering, in macros and blocks too
MAX_ITEMS = 100_000  # the longest text or list one operation may build
MAX_LOOPS = 1_000_000  # loop iterations in one render
MAX_DEPTH = 50  # macros calling macros
MAX_DIGITS_BITS = 100_000  # about 30,000 digits: the largest number ** may build


class OverBudget(Exception):
    """A template asks for more work than any post needs."""


class _Spending:
    """What one render has used so far."""

    __slots__ = ("deadline", "depth", "loops", "ticks", "written")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.written = self.loops = self.depth = self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if not self.ticks & 0xFF and time.monotonic() > self.deadline:
            raise OverBudget(
                f"takes longer than {MAX_SECONDS:g} s to render; make the template simpler "
                "(fewer loops, smaller lists)"
            )


_local = threading.local()


def current() -> _Spending | None:
    """Return this thread's budget of the render under way, if any."""
    found: _Spending | None = getattr(_local, "spending", None)
    return found


class spending:  # used as a function: ``with spending():``
    """Run one render under a fresh budget on this thread."""

    __slots__ = ("before", "seconds")

    def __init__(self, seconds: float = MAX_SECONDS) -> None:
        self.seconds = seconds
        self.before: _Spending | None = None

    def __enter__(self) -> None:
        self.before = current()
        _local.spending = _Spending(self.seconds)

    def __exit__(self, *exc: object) -> None:
        _local.spending = self.before


def too_big(what: str, limit: int = MAX_ITEMS) -> OverBudget:
    """Describe an operation that would build more than a post needs."""
    return OverBudget(
        f"{what} builds more than {limit:,} characters or items; no post needs that much"
    )


def size(value: Any, limit: int = MAX_ITEMS) -> int:
    """Estimate how long ``str(value)`` is, stopping as soon as it is over ``limit``.

    A list repeating one object 100,000 times is counted 100,000 times (that is
    what printing it costs), but each object is measured once.
    """
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1 if isinstance(value, int | float | date | None) else 8
    known: dict[int, int] = {}
    return _walk(value, limit, known, 0)


def _walk(value: Any, limit: int, known: dict[int, int], depth: int) -> int:
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 8
    found = known.get(id(value))
    if found is not None:
        return found
    if depth > MAX_DEPTH:
        return limit + 1
    items: Iterable[Any] = value.items() if isinstance(value, dict) else value
    total = 2
    for item in items:
        if isinstance(item, tuple) and isinstance(value, dict):
            total += (
                _walk(item[0], limit, known, depth + 1)
                + _walk(item[1], limit, known, depth + 1)
                + 4
            )
        else:
            total += _walk(item, limit, known, depth + 1) + 2
        if total > limit:
            break
    known[id(value)] = total
    return total


def check_width(what: str, width: Any) -> None:
    if isinstance(width, int) and width > MAX_ITEMS:
        raise too_big(f"{what}({width})")


_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent(fmt: str) -> None:
    """Refuse a %-format whose width or precision builds too much."""
    for match in _PERCENT.finditer(fmt):
        for field in match.groups():
            if field == "*" or (field is not None and int(field) > MAX_ITEMS):
                raise too_big("formatting with %")


def check_braces(fmt: str) -> None:
    """Refuse a str.format pattern whose width builds too much."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and ("{" in spec or any(int(n) > MAX_ITEMS for n in re.findall(r"\d+", spec))):
            raise too_big("format")


def check_join(items: Any, sep: Any) -> None:
    if isinstance(items, list | tuple | set | frozenset | dict):
        total = size(items) + len(items) * size(sep)
        if total > MAX_ITEMS:
            raise too_big("join")


def check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        if len(text) + count * max(len(new) - len(old), 0) > MAX_ITEMS:
            raise too_big("replace")


def checked_result(what: str, result: Any) -> Any:
    if isinstance(result, str | list | tuple | dict) and len(result) > MAX_ITEMS:
        raise too_big(what)
    return result


def _check_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    check_width("indent", width)
    if isinstance(width, str) and len(width) * (str(value).count("\n") + 1) > MAX_ITEMS:
        raise too_big("indent")


def _check_wordwrap(
    value: Any, width: Any = 79, long: Any = True, wrap: Any = None, *args: Any, **kwargs: Any
) -> None:
    wrap = kwargs.get("wrapstring", wrap)
    width = kwargs.get("width", width)
    lines = size(value) // max(width, 1) + 1 if isinstance(width, int) else 0
    if isinstance(wrap, str) and lines * len(wrap) > MAX_ITEMS:
        raise too_big("wordwrap")


def _check_sum(iterable: Any, attribute: Any = None, start: Any = 0, **kwargs: Any) -> None:
    if not isinstance(kwargs.get("start", start), int | float):
        check_join(iterable, "")


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


# filters whose arguments decide how much they build, checked before they run
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda *a, **k: check_width("center", _arg(a, k, 1, "width", 80)),
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "format": lambda *a, **k: check_percent(a[0]) if a and isinstance(a[0], str) else None,
    "join": lambda *a, **k: check_join(a[0] if a else None, _arg(a, k, 1, "d", "")),
    "replace": lambda *a, **k: check_replace(*a[:3]) if len(a) >= 3 else None,
    "batch": lambda *a, **k: check_width("batch", _arg(a, k, 1, "linecount", 0)),
    "slice": lambda *a, **k: check_width("slice", _arg(a, k, 1, "slices", 0)),
    "sum": _check_sum,
}


# filters that do not turn their whole input into text: a long list costs them no more
_STRUCTURAL = frozenset(
    [
        "attr",
        "batch",
        "count",
        "d",
        "default",
        "dictsort",
        "first",
        "groupby",
        "items",
        "join",
        "last",
        "length",
        "list",
        "map",
        "max",
        "min",
        "random",
        "reject",
        "rejectattr",
        "reverse",
        "select",
        "selectattr",
        "slice",
        "sort",
        "sum",
        "unique",
    ]
)


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so that it refuses to build more than a post needs."""
    check = _FILTER_CHECKS.get(name)
    takes_context = getattr(func, "jinja_pass_arg", None) is not None

    measure = name not in _STRUCTURAL

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value = args[1] if takes_context else args[0]
        if measure and not isinstance(value, str) and size(value) > MAX_ITEMS:
            raise too_big(f"the filter {name} on this value")
        if check is not None:
            check(*args[1 if takes_context else 0 :], **kwargs)
        return checked_result(f"the filter {name}", func(*args, **kwargs))

    return bounded
