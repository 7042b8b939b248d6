"""The terminal: its real width, and colour only where a person looks (never in a pipe).

Lines are built as plain text. On a terminal they are wrapped to its width
(a wrapped line goes on under ``↪``, so it is never mistaken for a line break
of the text) and shown through rich with the statuses in colour; ``NO_COLOR``
turns colour off; a pipe or a file gets the plain lines, whole, never cut.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap

STATUS_COLOURS = {  # statuses as the tables write them: never words inside a post's text
    r"(?m) (ok|sent)$|^  sent\b": "green",
    r"\b(FAILED|UNCERTAIN|TOO_LONG|ERROR)\b": "bold red",
    r"\b(HELD|MISSED|PAUSED|SKIPPED|RETRYING|SENDING)\b": "yellow",
}
_INDENT = re.compile(r"^\s*")


def is_terminal() -> bool:
    """Say whether standard output is a terminal a person reads."""
    return sys.stdout.isatty()


def width() -> int | None:
    """Return the terminal's width, or None when output is not a terminal (nothing is cut)."""
    return shutil.get_terminal_size((100, 24)).columns if is_terminal() else None


def fit(line: str, columns: int | None) -> str:
    """Wrap one line to ``columns`` (continuations under ``↪``), or leave it whole (None)."""
    if columns is None or len(line) <= columns:
        return line
    indent = _INDENT.match(line)
    lead = indent.group() if indent else ""
    rest = "" if columns - len(lead) < 20 else lead + "  ↪ "
    return "\n".join(
        textwrap.wrap(
            line,
            columns,
            subsequent_indent=rest,
            break_on_hyphens=False,
            break_long_words=True,
            drop_whitespace=True,
        )
    )


def show(text: str, *, err: bool = False) -> None:
    """Print text: through rich with colour on a terminal, else as it is."""
    stream = sys.stderr if err else sys.stdout
    if not stream.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        stream.write(text)
        stream.flush()
        return
    from rich.console import Console
    from rich.text import Text

    shown = Text(text.rstrip("\n"))
    for pattern, style in STATUS_COLOURS.items():
        shown.highlight_regex(pattern, style)
    Console(file=stream, soft_wrap=True, highlight=False).print(shown)
