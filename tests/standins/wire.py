"""The stand-ins' vocabulary: a request as received, an answer, a recorded request, a fault."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.standins.forms import Part, parse_form

NGINX_PAGE = "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class Request:
    """One HTTP request as the stand-in saw it; header names are lower-case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return a header's value, or None."""
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        """Return the media type without parameters, lower-case ("" if none)."""
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    def bearer(self) -> str | None:
        """Return the token of an "Authorization: Bearer ..." header, or None."""
        scheme, _, token = (self.header("authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def json(self) -> Any:
        """Return the body parsed as JSON; raise ValueError if it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> tuple[dict[str, list[str]], dict[str, list[Part]]]:
        """Return (fields, files) of a urlencoded or multipart body, fields after the query's."""
        fields = {key: list(values) for key, values in self.query.items()}
        body_fields, files = parse_form(self.header("content-type") or "", self.body)
        for key, values in body_fields.items():
            fields.setdefault(key, []).extend(values)
        return fields, files


@dataclass
class Reply:
    """An answer: status, body bytes, headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
        """Return a JSON answer."""
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(
            status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        )

    @classmethod
    def proxy_error(cls, status: int) -> Reply:
        """Return the HTML page a reverse proxy answers with for 502/503/504."""
        page = NGINX_PAGE.format(f"{status} {REASONS.get(status, 'Error')}")
        return cls(status, page.encode(), {"Content-Type": "text/html"})


@dataclass
class Received:
    """One recorded request and what became of it."""

    seq: int
    at: float
    route: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # None: the connection was dropped
    fault: str | None = None

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body.decode("utf-8"))

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able summary (the body as text when it is UTF-8)."""
        try:
            body: str | None = self.body.decode("utf-8")
        except UnicodeDecodeError:
            body = None
        return {
            "seq": self.seq,
            "at": self.at,
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": body if body is not None else f"<{len(self.body)} bytes>",
            "status": self.status,
            "fault": self.fault,
        }


@dataclass
class Fault:
    """A queued fault: what to do to the next ``remaining`` requests on matching routes."""

    kind: str  # "rate_limit" | "status" | "drop" | "delay" | "garble"
    route: str  # fnmatch pattern over route names
    remaining: int
    status: int = 500
    seconds: float = 0.0
    after: bool = False  # after the request took effect (the post exists)

    def describe(self) -> str:
        """Return a short label for the request log."""
        when = " after" if self.after else ""
        if self.kind == "rate_limit":
            return f"rate_limit {self.seconds:g}s"
        if self.kind == "status":
            return f"status {self.status}{when}"
        if self.kind == "delay":
            return f"delay {self.seconds:g}s after"
        if self.kind == "garble":
            return "garble after"
        return f"drop{when}"


@dataclass
class Outcome:
    """What to do with a request: answer (after a delay), or drop the connection (None)."""

    reply: Reply | None
    delay: float = 0.0


def iso_ms(epoch: float) -> str:
    """Return a UTC time as 2024-01-31T12:00:00.000Z."""
    whole = time.gmtime(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", whole) + f".{int(epoch * 1000) % 1000:03d}Z"
