"""Show a long table a piece at a time: through the user's pager on a terminal, as git does.

On a terminal the pieces go to ``$PAGER`` (``less -FRX`` when it is unset:
``-F`` quits at once when it all fits on one screen, ``-R`` keeps the colours,
``-X`` leaves the text on the screen). ``PAGER=`` or ``PAGER=cat`` turns paging
off. In a pipe or a file the pieces are written as they are, whole, never cut.
What goes to the pager is masked first (:func:`scheduler.redact.redact`): it
does not pass through the masked standard output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import IO

from scheduler.errors import SolidarityError
from scheduler.redact import redact
from scheduler.terminal import STATUS_COLOURS, show

DEFAULT_PAGER = "less -FRX"


def pager_command() -> str | None:
    """Return the pager to use, or None: not a terminal, paging turned off, or no ``less``."""
    if not sys.stdout.isatty():
        return None
    command = os.environ.get("PAGER")
    if command is None:
        return DEFAULT_PAGER if shutil.which("less") else None
    command = command.strip()
    return None if command in ("", "cat") else command


def show_pieces(pieces: Iterable[str], *, table: bool) -> None:
    """Print pieces of text as they come; a table in colour, and paged on a terminal.

    JSON (``table`` false) is written as it is, never coloured nor paged.
    """
    command = pager_command() if table else None
    if command is not None:
        _paged(pieces, command)
        return
    for piece in pieces:
        if table:
            show(piece)  # in colour on a terminal, as it is elsewhere
        else:
            sys.stdout.write(piece)
    sys.stdout.flush()


def _paged(pieces: Iterable[str], command: str) -> None:
    """Write the pieces into the pager's standard input; wait until the person quits it."""
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git: a PAGER=less of one's own behaves the same
    sys.stdout.flush()
    # a shell, as git and man run it: PAGER may hold options, or be a pipeline
    process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    assert process.stdin is not None
    stream = _text(process.stdin)
    interrupted = False
    try:
        for piece in pieces:
            _write(stream, piece)
    except BrokenPipeError:
        pass  # the person quit the pager before the end: nothing more to show
    except KeyboardInterrupt:
        interrupted = True  # stop reading the ledger; what was written stays readable
    finally:
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stream.close()
        # Ctrl-C in the pager reaches this process too: the pager decides, this one waits
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            code = process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise SystemExit(130)
    if code == 127:  # the shell's "command not found": nothing was shown
        raise SolidarityError(
            f"the pager {command!r} (PAGER) was not found; install it, or set PAGER=cat"
        )


def _text(binary: IO[bytes]) -> IO[str]:
    import io

    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", write_through=True)


def _write(stream: IO[str], piece: str) -> None:
    """Write one piece, masked, in colour unless ``NO_COLOR`` or a dumb terminal says no."""
    piece = redact(piece)
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb" or not piece:
        stream.write(piece)
        return
    from rich.console import Console
    from rich.text import Text

    shown = Text(piece.rstrip("\n"))
    for pattern, style in STATUS_COLOURS.items():
        shown.highlight_regex(pattern, style)
    columns = shutil.get_terminal_size((100, 24)).columns
    Console(file=stream, force_terminal=True, width=columns, soft_wrap=True, highlight=False).print(
        shown
    )
