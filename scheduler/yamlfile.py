"""Read a YAML file into plain data, remembering the line of every key and item.

Validation errors are reported as ``path:line``, so each location in the data
(a tuple of keys and indices, as pydantic reports it) maps to the line it was
written on. Dates and times stay strings (we parse them ourselves, with better
messages), and only ``true``/``false`` are booleans: ``language: no`` is Norwegian.

Any file a user saves is read with bounded work: at most ``MAX_FILE_BYTES``,
nested at most ``MAX_DEPTH`` levels, and aliases (``*name``) may repeat at most
``MAX_ALIAS_VALUES`` values in all (a 2 KB "billion laughs" file would otherwise
build billions). Each refusal is a ``path:line`` problem, never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scheduler.errors import Problem, ProblemsError, display_path

Loc = tuple[str | int, ...]

MAX_FILE_BYTES = 1_000_000  # a campaign or accounts file; the largest real one is ~20 KB
MAX_DEPTH = 64  # mappings and lists inside each other
MAX_ALIAS_VALUES = 100_000  # values built by repeating anchors (``*name``), in one file
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null")
)


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
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ProblemsError([Problem(shown, 0, f"cannot read the file: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ProblemsError(
            [
                Problem(
                    shown,
                    1,
                    f"the file is larger than {MAX_FILE_BYTES:,} bytes; "
                    "split it (one campaign per file) or shorten it",
                )
            ]
        )
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
    node = _compose(shown, text)
    located = Located(shown, None)
    if node is None:
        return located
    builder = _Builder(_Loader(""), located)
    try:
        data = builder.build(node, (), 0, frozenset())
    except _TooMuch as exc:
        raise ProblemsError([Problem(shown, exc.line, exc.message)]) from None
    except RecursionError:  # the depth limit keeps far below it; a last guard
        raise ProblemsError(
            [Problem(shown, 1, f"the data is nested too deeply; nest at most {MAX_DEPTH} levels")]
        ) from None
    if builder.problems:
        raise ProblemsError(builder.problems)
    return Located(shown, data, located.lines, located.text_lines)


def _flow_too_deep(text: str) -> int | None:
    """Return the line where ``[`` and ``{`` nest more than MAX_DEPTH deep, if they do.

    Quoted scalars and comments are skipped (a quote opens a scalar only where
    one can start). Cheap: files with fewer brackets than the limit are not read.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth, quote, previous = 0, "", "\n"
    line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                if quote == "'" and text[i + 1 : i + 2] == "'":
                    i += 1
                else:
                    quote = ""
        elif ch == "#" and previous in " \t\n":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch in "\"'" and previous in " \t\n:[{,-":
            quote = ch
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
        if ch not in " \t" or previous == "\n":
            previous = ch if ch not in " \t" else previous
        i += 1
    return None


def _compose(shown: str, text: str) -> yaml.Node | None:
    """Parse the text into YAML nodes (libyaml first), or raise ProblemsError."""
    bad = _UNPRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise ProblemsError(
            [
                Problem(
                    shown,
                    line,
                    f"the file has a control character (U+{ord(bad.group()):04X}) that YAML "
                    "does not allow; remove it",
                )
            ]
        )
    deep = _flow_too_deep(text)
    if deep is not None:  # before any parser recurses: the same answer whatever libyaml does
        raise ProblemsError(
            [
                Problem(
                    shown, deep, f"the data is nested more than {MAX_DEPTH} levels deep; flatten it"
                )
            ]
        )
    fast: yaml.SafeLoader = _FastLoader(text)
    try:
        return fast.get_single_node()
    except (yaml.YAMLError, RecursionError):
        pass
    finally:
        fast.dispose()
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise ProblemsError([_syntax_problem(shown, text, exc)]) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(shown, 1, f"YAML syntax: {exc}")]) from None
    except RecursionError:
        raise ProblemsError(
            [Problem(shown, 1, f"the data is nested too deeply; nest at most {MAX_DEPTH} levels")]
        ) from None
    finally:
        loader.dispose()


# what PyYAML's reader refuses (it would raise without a line): C0 controls but tab and
# newlines, DEL and C1 controls but NEL, surrogates, and U+FFFE/U+FFFF
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


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


class _TooMuch(Exception):
    """The file asks for more work than any campaign needs (nesting, aliases)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _tag(node: yaml.Node) -> str:
    standard = "tag:yaml.org,2002:"
    return "!!" + node.tag.removeprefix(standard) if node.tag.startswith(standard) else node.tag


class _Builder:
    """Build plain data from nodes, recording lines and refusing unbounded work."""

    def __init__(self, loader: yaml.SafeLoader, out: Located) -> None:
        self.loader, self.out = loader, out
        self.problems: list[Problem] = []
        self.seen: set[int] = set()  # nodes built at least once
        self.repeated = 0  # values built again because an alias repeats them
        self.alias_uses: set[Loc] = set()  # the outermost places an alias is written

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.out.path, node.start_mark.line + 1, message))

    def build(self, node: yaml.Node, loc: Loc, depth: int, inside: frozenset[int]) -> Any:
        line = node.start_mark.line + 1
        self.out.lines.setdefault(loc, line)
        if id(node) in self.seen:
            self.repeated += 1
            if not any(loc[:n] in self.alias_uses for n in range(len(loc))):
                self.alias_uses.add(loc)
            if self.repeated > MAX_ALIAS_VALUES:
                # report the outermost place that repeats an anchor: where the alias is written
                where = next(
                    self.out.lines[loc[:n]]
                    for n in range(len(loc) + 1)
                    if loc[:n] in self.alias_uses
                )
                raise _TooMuch(
                    where,
                    f"aliases (*name) here repeat more than {MAX_ALIAS_VALUES:,} values; "
                    "repeat less, or write the values out",
                )
        else:
            self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc)
        if id(node) in inside:
            raise _TooMuch(
                line,
                "an alias (*name) here repeats a mapping or list that contains it, "
                "which never ends; an alias may only repeat a value written before it",
            )
        if depth >= MAX_DEPTH:
            raise _TooMuch(
                line, f"the data is nested more than {MAX_DEPTH} levels deep; flatten it"
            )
        if node.tag not in _PLAIN_TAGS:
            self._problem(node, _tag_refused(node))
            return None
        inside = inside | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return [
                self.build(item, (*loc, i), depth + 1, inside) for i, item in enumerate(node.value)
            ]
        assert isinstance(node, yaml.MappingNode)
        return self._mapping(node, loc, depth, inside)

    def _mapping(
        self, node: yaml.MappingNode, loc: Loc, depth: int, inside: frozenset[int]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.loader.flatten_mapping(node)  # merged keys (<<: *anchor) come first
        except yaml.MarkedYAMLError as exc:
            self._problem(node, f"YAML merge (<<): {exc.problem}")
            return result
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                self._problem(
                    key_node,
                    f"a key must be plain text (such as name:), not {kind}; write key: value",
                )
                continue
            key = str(self._scalar(key_node, None))
            key_loc = (*loc, key)
            if id(key_node) not in written:
                merged.add(key)
            elif key in merged:  # a key written here overrides one merged in
                merged.discard(key)
                del result[key]
            if key in result:
                self._problem(
                    key_node,
                    f"duplicate key '{key}' (first on line {self.out.lines[key_loc]}); "
                    "each key may appear once",
                )
                continue
            self.out.lines[key_loc] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, key_loc, depth + 1, inside)
        return result

    def _scalar(self, node: yaml.ScalarNode, loc: Loc | None) -> Any:
        if loc is not None:
            first = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
            self.out.text_lines[loc] = first
        if node.tag not in _PLAIN_TAGS:
            self._problem(node, _tag_refused(node))
            return None
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self._problem(
                node,
                f"'{shown}' is not a valid {_tag(node)} value; remove the tag or fix the value",
            )
            return None


def _tag_refused(node: yaml.Node) -> str:
    return (
        f"the YAML tag '{_tag(node)}' is not allowed; write plain values "
        "(text, numbers, true/false, lists and mappings)"
    )
