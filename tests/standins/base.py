"""What every stand-in shares: a threaded HTTP server that records what it receives, and faults.

A stand-in answers on 127.0.0.1 as one platform's API does, checks what that platform
checks, and keeps every request and every post it created, so a test can assert that
nothing arrived twice. Faults are queued per route (by default the platform's posting
route) and consumed in order:

    before the request takes effect   rate_limit_next, fail_next, drop_next
    after it took effect (the post    delay_next, fail_next(after=True),
      exists, the answer is lost)     drop_next(after=True), garble_next (a 200 cut short)

An "after" fault is how a test makes "the request went out, the outcome is unknown":
the post is recorded (and the --state file written) before the answer is delayed,
replaced by a 5xx, or the connection is dropped.

Control routes under /__standin__/ (never recorded) let a test drive a stand-in that
runs in another process: GET /__standin__/state, GET /__standin__/count (how many
requests and posts, cheap enough to poll), POST /__standin__/knob
{"name": ..., "args": {...}} for any name in ``knobs``.

``latency`` (seconds, default 0) holds every answer back that long after the request
was recorded, outside the stand-in's lock, as a real service's processing time would
(benchmarks). Each recorded request keeps when it was received (``Received.at``,
epoch seconds).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from tests.standins.server import RequestHandler, Server
from tests.standins.wire import Fault, Outcome, Received, Reply, Request

__all__ = ["CONTROL", "Handler", "StandIn", "route"]

CONTROL = "/__standin__/"


Handler = Callable[[Any, Request, re.Match[str]], Reply]


def route(method: str, pattern: str, name: str) -> Callable[[Handler], Handler]:
    """Mark a stand-in method as the handler of ``method`` on paths matching ``pattern``.

    The route's name may take named groups of the pattern: "{method}" for Telegram.
    """

    def mark(handler: Handler) -> Handler:
        handler.__standin_route__ = (method, re.compile(pattern), name)  # type: ignore[attr-defined]
        return handler

    return mark


class StandIn:
    """A platform's API on 127.0.0.1; subclasses add routes, checks and error shapes."""

    platform: ClassVar[str]
    post_routes: ClassVar[str] = "*"  # fnmatch pattern: where faults go by default
    knobs: ClassVar[frozenset[str]] = frozenset(
        {
            "rate_limit_next",
            "fail_next",
            "delay_next",
            "drop_next",
            "garble_next",
            "reject_auth",
            "clear_faults",
            "clear_requests",
        }
    )
    _routes: ClassVar[list[tuple[str, re.Pattern[str], str, Handler]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._routes = [
            (*value.__standin_route__, value)
            for klass in reversed(cls.__mro__)
            for value in vars(klass).values()
            if hasattr(value, "__standin_route__")
        ]

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
    ) -> None:
        if latency < 0:
            raise ValueError("latency cannot be negative")
        self.host = host
        self.latency = latency
        self.port = port
        self.state_file = Path(state_file) if state_file is not None else None
        self.clock = clock
        self.auth_rejected = False
        self._lock = threading.RLock()
        self._requests: list[Received] = []
        self._posts: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._errors: list[str] = []
        self.stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Serve on a background thread; with port 0 the OS picks the port."""
        if self._server is not None:
            return self
        self.stopping.clear()
        server = Server((self.host, self.port), RequestHandler)
        server.standin = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        with self._lock:
            self._write_state()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers still pending are abandoned."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        if self._server is None:
            raise RuntimeError(f"the {self.platform} stand-in is not started")
        return f"http://{self.host}:{self.port}"

    # -- what was received -------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        """Return a copy of every request received, oldest first (control routes excluded)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, pattern: str) -> list[Received]:
        """Return the requests whose route name matches an fnmatch pattern."""
        return [r for r in self.requests if fnmatch.fnmatchcase(r.route, pattern)]

    @property
    def posts(self) -> list[dict[str, Any]]:
        """Return a copy of every post the stand-in created, oldest first."""
        with self._lock:
            return [dict(p) for p in self._posts]

    @property
    def errors(self) -> list[str]:
        """Return tracebacks of handler crashes (a stand-in bug; each was answered 500)."""
        with self._lock:
            return list(self._errors)

    def clear_requests(self) -> None:
        """Forget the request log (posts, sessions and idempotency keys stay)."""
        with self._lock:
            self._requests.clear()
            self._write_state()

    # -- fault knobs ---------------------------------------------------------------

    def rate_limit_next(
        self, n: int = 1, *, retry_after: float = 3, route: str | None = None
    ) -> None:
        """Answer the next n requests with the platform's own 429, asking to wait retry_after s."""
        self._queue(Fault("rate_limit", route or self.post_routes, n, seconds=retry_after))

    def fail_next(
        self, n: int = 1, *, status: int = 500, after: bool = False, route: str | None = None
    ) -> None:
        """Answer the next n requests with a 5xx; with after=True the post is created first."""
        self._queue(Fault("status", route or self.post_routes, n, status=status, after=after))

    def delay_next(self, seconds: float, n: int = 1, *, route: str | None = None) -> None:
        """Create the post, then hold the answer back for seconds (to cause client timeouts)."""
        self._queue(Fault("delay", route or self.post_routes, n, seconds=seconds, after=True))

    def drop_next(self, n: int = 1, *, after: bool = False, route: str | None = None) -> None:
        """Close the connection without answering; with after=True the post is created first."""
        self._queue(Fault("drop", route or self.post_routes, n, after=after))

    def garble_next(self, n: int = 1, *, route: str | None = None) -> None:
        """Create the post, then answer its 200 with the body cut in half (unreadable)."""
        self._queue(Fault("garble", route or self.post_routes, n, after=True))

    def reject_auth(self, rejected: bool = True) -> None:
        """Make the credentials invalid (revoked token or password) until called with False."""
        with self._lock:
            self.auth_rejected = rejected
            self._write_state()

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()
            self._write_state()

    def _queue(self, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault needs n >= 1")
        with self._lock:
            self._faults.append(fault)
            self._write_state()

    def _take_fault(self, route_name: str, *, after: bool) -> Fault | None:
        for fault in self._faults:
            if fault.after == after and fnmatch.fnmatchcase(route_name, fault.route):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- what subclasses provide ---------------------------------------------------

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        """Return the platform's 429 answer."""
        return Reply.json(429, {"error": "Too Many Requests"}, {"Retry-After": str(retry_after)})

    def server_error(self, req: Request, status: int) -> Reply:
        """Return the platform's answer for a 5xx (500 from the app, 502-504 from its proxy)."""
        if status == 500:
            return Reply.json(500, {"error": "Internal Server Error"})
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        """Return the platform's answer for a path it does not serve."""
        return Reply.json(404, {"error": "Not Found"})

    def method_not_allowed(self, req: Request) -> Reply:
        """Return the platform's answer for a path it serves, asked with the wrong method."""
        return Reply.json(405, {"error": "Method Not Allowed"})

    def decorate(self, req: Request, route_name: str, reply: Reply) -> Reply:
        """Return an answer with what the platform adds to every one (rate-limit headers)."""
        return reply

    def route_table(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        """Return (method, path pattern, route name, handler) of every route."""
        return self._routes

    def extra_state(self) -> dict[str, Any]:
        """Return platform-specific state for snapshots (sessions, media...)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Return what a client needs to use this stand-in (URLs, credentials)."""
        return {"platform": self.platform, "url": self.url}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options (python -m tests.standins PLATFORM)."""

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Self:
        """Build from parsed command-line options; common: host, port, state_file."""
        return cls(**common)

    def add_post(self, post: dict[str, Any]) -> None:
        """Record a created post (call with the lock held, from a handler)."""
        self._posts.append(post)

    # -- plumbing ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return everything received and created, as JSON-able data."""
        with self._lock:
            return {
                "platform": self.platform,
                "url": self.url if self._server is not None else None,
                "requests": [r.to_json() for r in self._requests],
                "posts": [dict(p) for p in self._posts],
                "faults": [f.describe() for f in self._faults],
                "auth_rejected": self.auth_rejected,
                "errors": list(self._errors),
                **self.extra_state(),
            }

    def _write_state(self) -> None:
        if self.state_file is None or self._server is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.snapshot(), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def _resolve(
        self, req: Request
    ) -> tuple[str, Callable[[Request, re.Match[str]], Reply] | None, re.Match[str] | None]:
        allowed = False
        for method, pattern, name, handler in self.route_table():
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            allowed = True
            if method == req.method or (method == "GET" and req.method == "HEAD"):
                return name.format(**match.groupdict()), handler.__get__(self), match
        return ("method_not_allowed" if allowed else "unknown"), None, None

    def serve_request(self, req: Request) -> Outcome:
        with self._lock:
            if req.path.startswith(CONTROL):
                return Outcome(self._control(req))
            name, handler, match = self._resolve(req)
            record = Received(
                len(self._requests) + 1, self.clock(), name, req.method, req.path,
                req.query, dict(req.headers), req.body,
            )  # fmt: skip
            self._requests.append(record)
            outcome = self._answer(req, name, handler, match, record)
            if outcome.reply is not None:
                outcome.reply = self.decorate(req, name, outcome.reply)
            record.status = outcome.reply.status if outcome.reply is not None else None
            if outcome.reply is not None and self.latency:
                outcome.delay += self.latency  # waited out by the server, lock released
            self._write_state()
            return outcome

    def _answer(
        self,
        req: Request,
        name: str,
        handler: Callable[[Request, re.Match[str]], Reply] | None,
        match: re.Match[str] | None,
        record: Received,
    ) -> Outcome:
        fault = self._take_fault(name, after=False)
        if fault is not None:
            record.fault = fault.describe()
            if fault.kind == "drop":
                return Outcome(None)
            if fault.kind == "rate_limit":
                return Outcome(self.rate_limited(req, fault.seconds))
            return Outcome(self.server_error(req, fault.status))
        if handler is None or match is None:
            if name == "method_not_allowed":
                return Outcome(self.method_not_allowed(req))
            return Outcome(self.not_found(req))
        try:
            reply = handler(req, match)
        except Exception:
            self._errors.append(traceback.format_exc())
            print(f"{self.platform} stand-in crashed:\n{self._errors[-1]}", file=sys.stderr)
            return Outcome(self.server_error(req, 500))
        fault = self._take_fault(name, after=True)
        if fault is None:
            return Outcome(reply)
        record.fault = fault.describe()
        if fault.kind == "drop":
            return Outcome(None)
        if fault.kind == "delay":
            return Outcome(reply, fault.seconds)
        if fault.kind == "garble":
            return Outcome(Reply(200, reply.body[: len(reply.body) // 2], reply.headers))
        return Outcome(self.server_error(req, fault.status))

    def _control(self, req: Request) -> Reply:
        if req.path == CONTROL + "state" and req.method == "GET":
            return Reply.json(200, self.snapshot())
        if req.path == CONTROL + "count" and req.method == "GET":
            return Reply.json(200, {"requests": len(self._requests), "posts": len(self._posts)})
        if req.path == CONTROL + "knob" and req.method == "POST":
            try:
                call = req.json()
                name, args = call["name"], call.get("args", {})
            except (ValueError, KeyError, TypeError):
                return Reply.json(400, {"error": 'expected {"name": ..., "args": {...}}'})
            if name not in self.knobs:
                return Reply.json(
                    400, {"error": f"unknown knob {name!r}", "knobs": sorted(self.knobs)}
                )
            try:
                result = getattr(self, name)(**args)
            except (TypeError, ValueError) as exc:
                return Reply.json(400, {"error": str(exc)})
            self._write_state()
            return Reply.json(200, {"ok": True, "result": result})
        return Reply.json(404, {"error": "unknown control route"})
