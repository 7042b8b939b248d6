"""HTTP for the platform adapters: httpx's API, lighter underneath.

The adapters speak httpx (requests, responses, errors, ``MockTransport`` in
tests); this transport carries their requests on ``http.client`` connections,
kept alive per origin. The reason is CPU: a burst of a thousand posts is bound
by one interpreter, and httpcore with h11 costs about 0.65 ms of CPU a request
where ``http.client`` (C header parsing, one ``sendall``) costs about 0.3 ms;
`bench/daemon.py fanout` shows what that does to a burst.

Its errors are httpx's own classes, raised at the same moments as httpcore
raises them, so ``platforms.http.send`` tells "surely not sent" (connecting)
from "maybe sent" (writing or reading) exactly as before. A proxy, from an
account's ``proxy:`` or the environment, is left to httpx's own transport
(``dispatch.http_client`` decides).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from typing import Any

import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def __bool__(self) -> bool:
        return False


_NO_COOKIES = _NoCookies()


class ApiClient(httpx.Client):
    """An ``httpx.Client`` that neither keeps nor sends cookies.

    Platform APIs authenticate by token; a cookie set by one answer must not ride
    along with the next post. It also spares every request the standard
    library's cookie machinery, about a third of the client's own CPU per request.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # httpx.Client's constructor sets an empty jar
        return None


class KeepAliveTransport(httpx.BaseTransport):
    """Send each request on an idle kept-alive connection to its origin, or a new one."""

    def __init__(self, ssl_context: ssl.SSLContext, max_idle: int = 4) -> None:
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        if not url.host:
            raise httpx.UnsupportedProtocol(f"no host in the URL {url}", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = request.read()
        conn = self._idle_connection(origin) or self._connect(origin, timeouts, request)
        try:
            status, reason, headers, content, reusable = self._exchange(
                conn, request, body, timeouts
            )
        except BaseException:
            conn.close()
            raise
        if reusable:
            self._release(origin, conn)
        else:
            conn.close()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _connect(
        self,
        origin: tuple[str, str, int],
        timeouts: dict[str, float | None],
        request: httpx.Request,
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.connect()
        except TimeoutError as exc:  # socket.timeout
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # refused, unreachable, name not found, TLS refused
            conn.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> tuple[int, str, list[tuple[str, str]], bytes, bool]:
        sock = conn.sock
        try:
            if sock is not None:
                sock.settimeout(timeouts.get("write"))
            conn.putrequest(
                request.method,
                request.url.raw_path.decode("ascii"),
                skip_host=True,
                skip_accept_encoding=True,
            )
            chunked = False
            for name, value in request.headers.raw:
                if name.lower() == b"transfer-encoding":  # the body is sent whole, with its length
                    chunked = True
                    continue
                conn.putheader(name, value)  # bytes are sent as they are
            if chunked and "content-length" not in request.headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc), request=request) from exc
        try:
            if sock is not None:
                sock.settimeout(timeouts.get("read"))
            response = conn.getresponse()
            content = response.read()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except http.client.RemoteDisconnected as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        except http.client.HTTPException as exc:  # a malformed or cut-short answer
            raise httpx.RemoteProtocolError(repr(exc), request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return (
            response.status,
            response.reason,
            response.getheaders(),
            content,
            not response.will_close,
        )

    def _idle_connection(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                conns = self._idle.get(origin)
                if not conns:
                    return None
                conn = conns.pop()
            if _alive(conn):
                return conn
            conn.close()

    def _release(self, origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(origin, [])
            if not self._closed and len(conns) < self._max_idle:
                conns.append(conn)
                return
        conn.close()


def _alive(conn: http.client.HTTPConnection) -> bool:
    """Say whether an idle connection can carry a request: the server has not closed it.

    An idle HTTP/1.1 connection has nothing to read; if it is readable, the
    server closed it (or sent something unasked), so it must not be reused.
    """
    sock: Any = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
