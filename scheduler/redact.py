"""One redaction for every writer: the ledger, every command's output, preview and the logs.

What is secret:

- every ``${VAR}`` value accounts.yaml uses, and every secret field of an account
  (Telegram's bot token, a Discord webhook's whole URL, a webhook's ``secret``...);
- the userinfo of any URL (a proxy's or the database's password), also as the
  ``Basic`` credentials a client sends for it;
- the path and query of a webhook's URL (a generic webhook's ``url``, Discord's
  ``webhook_url``), which are secret as a whole;
- anything shaped like a credential, registered or not: a Telegram bot token
  (``%3A`` for its colon too), an ``Authorization`` header, a bearer token, a
  password in a URL, a token in a query string, a Discord webhook's token.

:data:`REDACTOR` is the one instance: the commands feed it with :func:`register`
when they load the files, and every writer masks with :func:`redact`. Standard
output and standard error are wrapped once per command (:mod:`scheduler.redacted_io`),
so what a command prints is masked whatever printed it. Masking keeps JSON valid:
secrets are also registered in their JSON-escaped form and the credential shapes
never cross a quote or a backslash.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus, unquote, urlsplit

if TYPE_CHECKING:
    from scheduler.accounts import Account
    from scheduler.config import Settings
    from scheduler.project import Project

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words
ACCOUNTS_READ_LIMIT = 4 * 1024 * 1024  # how much of accounts.yaml is searched for ${VAR}
# the fields whose URL's path and query are a secret as a whole, by platform
WEBHOOK_FIELDS: Mapping[str, tuple[str, ...]] = {"webhook": ("url",), "discord": ("webhook_url",)}
ALERTS_VARIABLE = "SOLIDARITY_ALERTS"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # as accounts.yaml writes a variable

_TOKEN_CHARS = r"[^\s\"'\\,;]+"
# Character classes below never cross a quote or a backslash, so masking a JSON
# line keeps it valid JSON. Each pattern comes with the substrings (of the text in
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
    # a Slack incoming webhook: https://hooks.slack.com/services/T../B../<token>
    (
        re.compile(r"(https?://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"),
        rf"\1{MASK}",
        ("hooks.slack",),
    ),
    # a Telegram bot token, alone or in /bot<token>/sendMessage, its colon maybe URL-encoded
    (
        re.compile(r"\d{5,}(?::|%3[Aa])[A-Za-z0-9_-]{30,}"),
        MASK,
        re.compile(r"(?::|%3[Aa])[A-Za-z0-9_-]{30}"),
    ),
    # an Authorization header (OAuth 1.0a's parameters are masked one by one below)
    (
        re.compile(
            r"\b(authorization[\"']?\s*[:=]\s*[\"']?)(?!oauth\b)"
            rf"((?:bearer|basic|token|digest)\s+)?{_TOKEN_CHARS}",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}",
        ("authorization",),
    ),
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{MASK}", ("bearer",)),
    # other headers that carry a credential whole
    (
        re.compile(
            r"\b((?:x-)?api-key|x-auth-token|x-access-token|(?:set-)?cookie)"
            rf"([\"']?\s*[:=]\s*[\"']?){_TOKEN_CHARS}",
            re.IGNORECASE,
        ),
        rf"\1\2{MASK}",
        ("api-key", "auth-token", "access-token", "cookie"),
    ),
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
    # scheme://long-token@host: a user name that is a token
    (
        re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[A-Za-z0-9._~%!$&()*+=-]{16,}@"),
        rf"\1{MASK}@",
        ("://",),
    ),
    # ?token=...&api_key=...
    (
        re.compile(
            r"([?&;](?:access_token|refresh_token|api_key|apikey|client_secret|token|password"
            r"|secret|key|sig|signature)=)[^\s&#;\"'\\]+",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
        ("token=", "key=", "secret=", "password=", "sig="),
    ),
)


def _forms(secret: str) -> set[str]:
    """Return a secret as written, URL-encoded (either case), in a JSON string, in HTML."""
    encoded = {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), e) for e in encoded}
    forms = {secret, *encoded, quote(quote(secret, safe=""), safe="")}
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    forms.add(json.dumps(secret)[1:-1])
    forms.add(html.escape(secret))
    return forms


class Redactor:
    """Mask registered secrets and anything shaped like a credential; safe across threads.

    Secrets are registered by source (the accounts, the alerts...): setting one
    source's secrets replaces them and keeps the others'.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, frozenset[str]] = {}
        self._secrets: frozenset[str] = frozenset()
        self._literal: re.Pattern[str] | None = None
        self._overlapping: re.Pattern[str] | None = None
        self.set_secrets(values)

    @property
    def secrets(self) -> frozenset[str]:
        """Return the registered secrets (as given, without their encoded forms)."""
        return self._secrets

    def set_secrets(self, values: Iterable[str], *, source: str = "") -> None:
        """Replace one source's secrets; values shorter than 4 characters are ignored."""
        kept = frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET)
        with self._lock:
            self._sources[source] = kept
            every = frozenset().union(*self._sources.values())
            forms = {f for v in every for f in _forms(v) if len(f) >= MIN_SECRET}
            tree = _trie(forms) if forms else None
            self._secrets = every
            # one swap of both: a concurrent redact reads a consistent pair
            self._literal, self._overlapping = (
                (re.compile(tree), re.compile(f"(?=({tree}))")) if tree else (None, None)
            )

    def redact(self, text: str) -> str:
        """Return the text with every secret replaced by ``***``."""
        literal, overlapping = self._literal, self._overlapping
        if literal is not None and overlapping is not None and literal.search(text):
            text = _mask_spans(overlapping, text)
        lowered = text.lower()
        for pattern, replacement, gate in _PATTERNS:
            if (
                gate.search(text)
                if isinstance(gate, re.Pattern)
                else any(n in lowered for n in gate)
            ):
                text = pattern.sub(replacement, text)
        return text


def _mask_spans(overlapping: re.Pattern[str], text: str) -> str:
    """Mask the union of every match, overlapping ones included.

    Two secrets that overlap ("abcdef" and "defghi" in "abcdefghi") must both
    go: masking the first match alone would leave the second's tail.
    """
    spans: list[list[int]] = []
    for match in overlapping.finditer(text):
        start, end = match.start(), match.end(1)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], MASK]
        last = end
    out.append(text[last:])
    return "".join(out)


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


REDACTOR = Redactor()


def redact(text: str) -> str:
    """Mask every secret the process knows of, and every credential by its shape."""
    return REDACTOR.redact(text)


def redact_optional(text: str | None) -> str | None:
    """Mask a text that may be absent (a ledger column)."""
    return None if text is None else REDACTOR.redact(text)


# --- what is secret ---------------------------------------------------------------


def url_secrets(value: str, *, whole_path: bool = False) -> set[str]:
    """Return the secret parts of a URL: its userinfo, and its path and query if ``whole_path``."""
    value = value.strip()
    if "://" not in value:
        return set()
    try:
        parts = urlsplit(value)
        username, password = parts.username, parts.password
    except ValueError:
        return set()
    found: set[str] = set()
    userinfo = parts.netloc.rpartition("@")[0]
    if password:
        found |= {userinfo, unquote(userinfo), password, unquote(password)}
        basic = f"{unquote(username or '')}:{unquote(password)}"
        found.add(base64.b64encode(basic.encode()).decode())  # as Basic credentials
    elif len(userinfo) >= 16:  # a token as the user name (a short one is a name: "admin")
        found |= {userinfo, unquote(userinfo)}
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    if whole_path and rest not in ("", "/"):
        found |= {rest, value}
        # each part alone too, unless so short that it would mask ordinary paths ("/api")
        found |= {p for p in (parts.path, parts.query) if len(p) >= 8}
    return {v for v in found if len(v) >= MIN_SECRET}


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):  # pydantic's SecretStr, without importing pydantic
        value = value.get_secret_value()
    return value if isinstance(value, str) else None


def secret_values(accounts: Iterable[Account]) -> set[str]:
    """Return every secret the accounts hold: secret fields, URL userinfo, webhook paths."""
    found: set[str] = set()
    for account in accounts:
        settings = account.settings
        secret_fields = set(account.platform.secret_fields)
        webhook = set(WEBHOOK_FIELDS.get(account.platform.name, ()))
        names = set(type(settings).model_fields) | secret_fields
        for name in sorted(names):
            value = _plain(getattr(settings, name, None))
            if not value:
                continue
            if name in secret_fields:
                found.add(value)
            found |= url_secrets(value, whole_path=name in webhook)
    return {v for v in found if v}


def referenced_values(accounts_file: Path, environ: Mapping[str, str]) -> set[str]:
    """Return the value of every ``${VAR}`` the accounts file names (whatever key holds it)."""
    try:
        with accounts_file.open("rb") as handle:
            text = handle.read(ACCOUNTS_READ_LIMIT).decode("utf-8", "replace")
    except OSError:
        return set()
    found: set[str] = set()
    for name in set(_VAR.findall(text)):
        value = environ.get(name)
        if value:
            found |= {value, *url_secrets(value)}
    return found


def environment_secrets(environ: Mapping[str, str]) -> set[str]:
    """Return the secrets of the program's own variables: alert URLs, the database's password."""
    found: set[str] = set()
    for url in environ.get(ALERTS_VARIABLE, "").split():
        found |= {url, url.partition("://")[2], *url_secrets(url, whole_path=True)}
    found |= url_secrets(environ.get("SOLIDARITY_DATABASE_URL", ""))
    return {v for v in found if len(v) >= MIN_SECRET}


def register(project: Project, environ: Mapping[str, str] | None = None) -> None:
    """Tell the redaction every secret of a project just loaded (replacing the last one's)."""
    register_accounts(project.accounts.values(), project.settings, environ)


def register_accounts(
    accounts: Iterable[Account], settings: Settings, environ: Mapping[str, str] | None = None
) -> None:
    """Tell the redaction the secrets of these accounts, their file's ``${VAR}``s and the ledger's."""
    if environ is None:
        from scheduler.config import environment

        environ = environment()
    found = secret_values(accounts)
    found |= referenced_values(settings.accounts, environ)
    found |= environment_secrets(environ)
    found |= url_secrets(settings.db)
    REDACTOR.set_secrets(found, source="project")


def masked_url(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it
        return "(the given URL)"
