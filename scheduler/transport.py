"""HTTP for the platform adapters: httpx's own client and transport, through public API only.

Every request goes out on ``httpx.HTTPTransport`` (httpcore and h11) under a
plain ``httpx.Client``. urllib3 behind ``httpx.BaseTransport`` was measured as
the faster engine and saved nothing under the client (about 0.33 ms of CPU a
kept-alive request either way: converting requests and answers costs what its
parsing saves), and http.client, under it, skips only ``100 Continue``: a
``102`` or ``103`` would be taken for the answer. So the engine is httpx's.

What is ours is small. :class:`Transport` builds httpx's transport at the
first request, so a daemon that warms a client per account and then idles
never loads the CA bundle (30-50 ms, 1-2 MB) or imports httpcore (about 5 MB
with the async back ends it pulls in). :class:`NoCookies` is a cookie jar that
keeps and sends nothing. Errors are httpx's, raised where httpcore raises them,
so ``platforms.http.send`` tells "surely not sent" (connecting) from "maybe
sent" (writing or reading). A proxy, from an account's ``proxy:`` or the
environment, is left to httpx's client itself (``dispatch.http_client`` decides).
"""

from __future__ import annotations

import http.cookiejar
import ssl
import threading
import urllib.request
from collections.abc import Callable
from http.client import HTTPResponse

import httpx

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default too)
MAX_IDLE = 4  # idle connections kept per client: an account's lane sends one at a time


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing and adds nothing: pass it as ``httpx.Client(cookies=...)``.

    Platform APIs authenticate by token; a cookie set by one answer must not ride
    along with the next post. Overriding the jar's documented methods also spares
    each answer the parsing of its ``Set-Cookie`` headers.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: HTTPResponse, request: urllib.request.Request) -> None:
        return None

    def add_cookie_header(self, request: urllib.request.Request) -> None:
        return None


class Transport(httpx.BaseTransport):
    """httpx's ``HTTPTransport``, built when the first request comes.

    ``tls`` is a context, or how to make one (``dispatch._tls`` shares one across
    every account's client). Connections are kept alive per origin for
    ``keepalive_expiry`` seconds; httpcore drops one that expired or that the
    server closed before reusing it, and never resends a request.
    """

    def __init__(
        self,
        tls: ssl.SSLContext | Callable[[], ssl.SSLContext],
        *,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self._tls = tls
        self._limits = httpx.Limits(
            max_keepalive_connections=max_idle, keepalive_expiry=keepalive_expiry
        )
        self._engine: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        engine = self._engine or self._start()
        return engine.handle_request(request)

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def _start(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._engine is None:
                tls = self._tls if isinstance(self._tls, ssl.SSLContext) else self._tls()
                self._engine = httpx.HTTPTransport(verify=tls, limits=self._limits)
            return self._engine


def api_client(
    transport: httpx.BaseTransport | None = None,
    *,
    verify: ssl.SSLContext | bool = True,
    proxy: str | None = None,
    timeout: httpx.Timeout | float = 30.0,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    """Build a plain ``httpx.Client`` for a platform: no cookies, no redirect followed.

    With no ``transport``, httpx builds its own (with ``proxy``, or the
    environment's proxies, and ``verify``).
    """
    return httpx.Client(
        transport=transport,
        verify=verify,
        proxy=proxy,
        cookies=NoCookies(),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
    )
