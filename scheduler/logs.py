"""The daemon's logging: text or JSON lines, with every secret masked on the way out.

The masking is :mod:`scheduler.redact`'s, the same as every other writer's
(the ledger, each command's output). The formatters redact their whole output,
so a secret in a message, its arguments, a traceback or an extra field never
reaches the log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, Literal

from scheduler.redact import MASK, REDACTOR, Redactor, secret_values

__all__ = [
    "MASK",
    "QUIET",
    "REDACTOR",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "configure",
    "secret_values",
]


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + (
        f".{int(record.msecs):03d}Z"
    )


def _fields(record: logging.LogRecord) -> Mapping[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


class TextFormatter(logging.Formatter):
    """``2024-05-01T09:00:00.000Z INFO scheduler.dispatch: message``, redacted.

    The message says it all (a delivery line names its key, account, status,
    duration and URL); a record's ``fields`` are for the JSON form.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the record's fields, exc."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in _fields(record).items():
            out.setdefault(str(key), value)
        # one pass over the whole line: secrets are registered in their JSON-escaped form too
        return self.redactor.redact(json.dumps(out, ensure_ascii=False, default=str))


QUIET = ("httpx", "httpcore", "alembic", "apscheduler")  # httpx logs URLs: Telegram's has the token
_MARK = "_solidarity_logs"


def configure(
    fmt: Literal["text", "json"] = "text",
    *,
    level: int = logging.INFO,
    stream: IO[str] | None = None,
) -> Redactor:
    """Log to stderr (or ``stream``) in text or JSON, redacted; return the redactor to feed.

    Calling it again replaces the handler it installed before instead of adding one.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format '{fmt}'; use text or json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    target = sys.stderr if stream is None else stream
    # a command's stderr masks what it is given; log lines are masked already, once is enough
    target = getattr(target, "unredacted", target)
    handler = logging.StreamHandler(target)
    setattr(handler, _MARK, True)
    formatter = JsonFormatter(REDACTOR) if fmt == "json" else TextFormatter(REDACTOR)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    # the formatters use none of these: spare every record the lookups (the logging
    # HOWTO's "Optimization"; its other one, the caller's file and line, has no public switch)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return REDACTOR
