"""What a command prints, masked: standard output and standard error through the redaction.

``main()`` wraps both streams for the whole process; the command group wraps
them again for the length of one command when they are not (a test's runner
swaps the streams in). Whatever prints (``click.echo``, a warning, a
traceback), what it prints passes :func:`scheduler.redact.redact` first.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, cast

from scheduler.redact import redact


class RedactingStream:
    """A text stream that masks what is written to it, a line at a time, before passing it on.

    Lines are kept until they end (or the stream is flushed), so a secret
    written in two pieces is still masked. No ``buffer`` attribute: nothing can
    write bytes around the redaction.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.unredacted = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Write text; what ends a line goes out masked, the rest waits for its line's end."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            pending = self._pending + text
            cut = pending.rfind("\n") + 1
            if len(pending) - cut > 65536:  # no line end in sight: let it out anyway
                cut = len(pending)
            self._pending = pending[cut:]
            if cut:
                self.unredacted.write(redact(pending[:cut]))
        return len(text)

    def flush(self) -> None:
        """Write out what waits (masked) and flush the stream beneath."""
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending:
                self.unredacted.write(redact(pending))
        self.unredacted.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        # click writes bytes to .buffer: never around the redaction (and no recursion
        # while the instance is being built or copied)
        if name in ("buffer", "unredacted"):
            raise AttributeError(name)
        return getattr(self.unredacted, name)


@contextmanager
def redacted_streams() -> Iterator[None]:
    """Mask standard output and standard error until the block ends (nested: once)."""
    saved = sys.stdout, sys.stderr
    install_streams()
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, RedactingStream):
                with suppress(OSError, ValueError):  # a closed pipe: nothing more to say
                    stream.flush()
        sys.stdout, sys.stderr = saved


def install_streams() -> None:
    """Mask standard output and standard error for the rest of the process."""
    if sys.stdout is not None and not isinstance(sys.stdout, RedactingStream):
        sys.stdout = cast(IO[str], RedactingStream(sys.stdout))
    if sys.stderr is not None and not isinstance(sys.stderr, RedactingStream):
        sys.stderr = cast(IO[str], RedactingStream(sys.stderr))
