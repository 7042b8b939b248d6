"""Read a YAML file into plain data, remembering the line of every key and item.

Validation errors are reported as ``path:line``, so each location in the data
(a tuple of keys and indices, as pydantic reports it) maps to the line it was
written on. Dates and times stay strings (we parse them ourselves, with better
messages), and only ``true``/``false`` are booleans: ``language: no`` is Norwegian.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scheduler.errors import Problem, ProblemsError, display_path

Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's timestamp and yes/no/on/off booleans."""


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same rules on libyaml's parser (six times faster), when PyYAML was built with it.

    Its error messages differ from the pure-Python parser's, so a file that does
    not parse is parsed again with :class:`_Loader` for the message users know.
    """


for _cls in (_Loader, _FastLoader):
    _cls.yaml_implicit_resolvers = {
        first: [
            (tag, rx)
            for tag, rx in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )


@dataclass(frozen=True)
class Located:
    """Data read from one file, with the line of each location in it."""

    path: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    # where a block scalar's text starts (line of its first content line)
    text_lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """Return the line of a location, or of its nearest written ancestor."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def problem(self, loc: Loc, message: str, severity: str = "error") -> Problem:
        """Make a problem at a location of this file."""
        return Problem(
            self.path, self.line(loc), message, "warning" if severity == "warning" else "error"
        )


def read_text(path: Path) -> str:
    """Read a user's file as UTF-8, reporting the line of the first bad byte."""
    shown = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProblemsError([Problem(shown, 0, f"cannot read the file: {exc.strerror}")]) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ProblemsError(
            [
                Problem(
                    shown,
                    line,
                    f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} cannot be decoded); "
                    "save it as UTF-8",
                )
            ]
        ) from None


def load_yaml(path: Path) -> Located:
    """Parse one YAML file; raise ProblemsError with path:line on any syntax error."""
    shown = display_path(path)
    text = read_text(path)
    if text.startswith("\ufeff"):
        text = text[1:]
    loader: yaml.SafeLoader = _FastLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        loader.dispose()
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise ProblemsError([_syntax_problem(shown, text, exc)]) from None
        except yaml.YAMLError as exc:
            raise ProblemsError([Problem(shown, 1, f"YAML syntax: {exc}")]) from None
    finally:
        loader.dispose()
    located = Located(shown, None)
    problems: list[Problem] = []
    if node is None:
        return located
    data = _build(loader, node, (), located, problems)
    if problems:
        raise ProblemsError(problems)
    return Located(shown, data, located.lines, located.text_lines)


def _syntax_problem(shown: str, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    what = exc.problem or exc.context or "cannot be parsed"
    lines = text.splitlines()
    if (
        0 < line <= len(lines)
        and "\t" in lines[line - 1][: len(lines[line - 1]) - len(lines[line - 1].lstrip())]
    ):
        return Problem(
            shown, line, "YAML syntax: a tab is used for indentation; indent with spaces"
        )
    hint = ""
    if "mapping values are not allowed" in what:
        hint = "; a value containing ': ' must be quoted"
    elif "could not find expected ':'" in what or "expected <block end>" in what:
        hint = "; check the indentation of this line and the one before"
    return Problem(shown, line, f"YAML syntax: {what}{hint}")


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, out: Located, problems: list[Problem]
) -> Any:
    out.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)  # merged keys (<<: *anchor) come first
        merged: set[str] = set()
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node, deep=True))
            key_loc = (*loc, key)
            if id(key_node) not in written:
                merged.add(key)
            elif key in merged:  # a key written here overrides one merged in
                merged.discard(key)
                del result[key]
            if key in result:
                problems.append(
                    Problem(
                        out.path,
                        key_node.start_mark.line + 1,
                        f"duplicate key '{key}' (first on line {out.lines[key_loc]}); "
                        "each key may appear once",
                    )
                )
                continue
            out.lines[key_loc] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, key_loc, out, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), out, problems) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    if node.style in ("|", ">"):
        out.text_lines[loc] = node.start_mark.line + 2
    else:
        out.text_lines[loc] = node.start_mark.line + 1
    return loader.construct_object(node, deep=True)
