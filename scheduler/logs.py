"""The daemon's logging: text or JSON lines, with every secret masked on the way out.

The accounts' secrets are registered with a :class:`Redactor` (see
:func:`secret_values`); whatever is not registered is still masked by shape: a
Telegram bot token, a bearer token, a URL's password, a token in a query string,
a Discord webhook's token. The formatters redact their whole output, so a secret
in a message, its arguments, a traceback or an extra field never reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import quote, quote_plus, unquote, urlsplit

if TYPE_CHECKING:
    from scheduler.accounts import Account

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words

# Character classes below never cross a quote or a backslash, so masking a JSON
# line keeps it valid JSON. Each pattern comes with the substrings (of the line in
# lower case) without which it cannot match, or a cheaper pattern that must match
# first: most lines have none of them, and a substring test costs far less than a
# regex scan.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...] | re.Pattern[str]], ...] = (
    # a Discord webhook: https://discord.com/api/webhooks/<id>/<token>
    (
        re.compile(
            r"(https?://(?:(?:canary|ptb)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/\d+/)"
            r"[A-Za-z0-9_-]+"
        ),
        rf"\1{MASK}",
        ("discord",),
    ),
    # a Telegram bot token, alone or in /bot<token>/sendMessage
    (re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"), MASK, re.compile(r":[A-Za-z0-9_-]{30}")),
    # an Authorization header (OAuth 1.0a's parameters are masked one by one below)
    (
        re.compile(
            r"\b(authorization[\"']?\s*[:=]\s*[\"']?)(?!oauth\b)"
            r"((?:bearer|basic|token|digest)\s+)?[^\s\"'\\,;]+",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}",
        ("authorization",),
    ),
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MASK}", ("bearer",)),
    (
        re.compile(r"\b(oauth_(?:consumer_key|token|signature)=\"?)[^\s\"'\\,&]+", re.IGNORECASE),
        rf"\1{MASK}",
        ("oauth_",),
    ),
    # scheme://user:password@host
    (
        re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"'\\]*:)[^\s/@\"'\\]+@"),
        rf"\1{MASK}@",
        ("://",),
    ),
    # ?token=...&api_key=...
    (
        re.compile(
            r"([?&;](?:access_token|refresh_token|api_key|apikey|client_secret|token|password"
            r"|secret|key)=)[^\s&#;\"'\\]+",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
        ("token=", "key=", "secret=", "password="),
    ),
)


def _forms(secret: str) -> set[str]:
    """Return a secret as written, and as it appears URL-encoded or inside a JSON string."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(json.dumps(secret)[1:-1])
    return forms


class Redactor:
    """Mask registered secrets and anything shaped like a credential; safe across threads."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._literal: re.Pattern[str] | None = None
        self.set_secrets(values)

    @property
    def secrets(self) -> frozenset[str]:
        """Return the registered secrets (as given, without their encoded forms)."""
        return self._secrets

    def set_secrets(self, values: Iterable[str]) -> None:
        """Replace the registered secrets; values shorter than 4 characters are ignored."""
        kept = frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET)
        forms = {f for v in kept for f in _forms(v) if len(f) >= MIN_SECRET}
        literal = re.compile(_trie(forms)) if forms else None
        with self._lock:
            self._secrets = kept
            self._literal = literal

    def redact(self, text: str) -> str:
        """Return the text with every secret replaced by ``***``."""
        literal = self._literal  # one read: a concurrent set_secrets swaps the whole pattern
        if literal is not None:
            text = literal.sub(MASK, text)
        lowered = text.lower()
        for pattern, replacement, gate in _PATTERNS:
            if (
                gate.search(text)
                if isinstance(gate, re.Pattern)
                else any(n in lowered for n in gate)
            ):
                text = pattern.sub(replacement, text)
        return text


def _trie(words: Collection[str]) -> str:
    """Return a regex matching any of the words, longest first, as a prefix tree.

    An alternation of a thousand URLs that share their start is tried word by
    word at every position; as a tree, each position costs one step per
    character it shares with some word.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def pattern(node: dict[str, Any]) -> str:
        chain = []
        while len(node) == 1 and "" not in node:  # one way on: no group (and no recursion)
            ((char, node),) = node.items()
            chain.append(re.escape(char))
        branches = [re.escape(c) + pattern(child) for c, child in sorted(node.items()) if c]
        body = ""
        if branches:
            body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
            if "" in node:  # a longer word is tried first, then the one ending here
                body = "(?:" + body + ")?"
        return "".join(chain) + body

    try:
        return pattern(root)
    except RecursionError:  # thousands of nested branch points: a plain alternation
        return "|".join(map(re.escape, sorted(words, key=lambda w: (-len(w), w))))


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


REDACTOR = Redactor()
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
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    setattr(handler, _MARK, True)
    formatter = JsonFormatter(REDACTOR) if fmt == "json" else TextFormatter(REDACTOR)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    # the formatters use none of these: spare every record the lookups (the logging
    # HOWTO's "Optimization"; about 12 us a delivery line)
    logging._srcfile = None  # the caller's file and line
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return REDACTOR


def _url_passwords(value: str) -> set[str]:
    if "://" not in value or "@" not in value:
        return set()
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):  # pydantic's SecretStr, without importing pydantic
        value = value.get_secret_value()
    return value if isinstance(value, str) else None


def secret_values(accounts: Iterable[Account]) -> set[str]:
    """Return every secret the accounts hold: secret fields, and passwords in any URL."""
    found: set[str] = set()
    for account in accounts:
        settings = account.settings
        secret_fields = set(account.platform.secret_fields)
        names = set(type(settings).model_fields) | secret_fields
        for name in sorted(names):
            value = _plain(getattr(settings, name, None))
            if not value:
                continue
            if name in secret_fields:
                found.add(value)
            found |= _url_passwords(value)
    return {v for v in found if v}
