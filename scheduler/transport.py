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
import ssl
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}
KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default too)
Origin = tuple[str, str, int]


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing and sends nothing."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None

    def update(self, cookies: Any = None) -> None:  # type: ignore[override]
        return None

    def __setitem__(self, name: str, value: str) -> None:
        return None

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def __bool__(self) -> bool:
        return False


class ApiClient(httpx.Client):
    """An ``httpx.Client`` that neither keeps nor sends cookies (``cookies=`` is ignored).

    Platform APIs authenticate by token; a cookie set by one answer must not ride
    along with the next post. It also spares every request the standard
    library's cookie machinery, about a third of the client's own CPU per request.

    On a :class:`KeepAliveTransport`, a plain request (no auth flow, no redirect
    to follow, no event hook, not streamed: every request of the adapters) goes
    straight to the transport; anything else takes httpx's own path.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        transport = kwargs.get("transport")
        self._direct = transport if isinstance(transport, KeepAliveTransport) else None

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        direct = self._direct
        default = httpx.USE_CLIENT_DEFAULT
        plain = (
            direct is not None
            and not stream
            and not self.is_closed
            and self.auth is None
            and (auth is default or auth is None)
            and not (self.follow_redirects if follow_redirects is default else follow_redirects)
            and not any(self.event_hooks.values())
            and not request.url.userinfo
        )
        if not plain or direct is None:
            return super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        # what httpx.Client.send does for such a request, without its layers
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self.timeout.as_dict()}
        started = time.perf_counter()
        response = direct.handle_request(request)
        response.request = request
        response.read()
        response.elapsed = timedelta(seconds=time.perf_counter() - started)
        return response

    @property
    def cookies(self) -> httpx.Cookies:
        found: httpx.Cookies | None = self.__dict__.get("_no_cookies")
        if found is None:
            found = self.__dict__["_no_cookies"] = _NoCookies()
        return found

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # httpx.Client's constructor sets an empty jar
        return None


class _FinalResponse(http.client.HTTPResponse):
    """Skip every informational (1xx) answer, as h11 does; http.client skips only 100.

    Otherwise a ``102 Processing`` would be taken for the answer, and the real
    one would be read by the next request on the connection.
    """

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 < status < 200 or status == 101:  # begin() skips 100 Continue itself
                return version, status, reason
            http.client.parse_headers(self.fp)  # the informational answer's headers: dropped


class KeepAliveTransport(httpx.BaseTransport):
    """Send each request on an idle kept-alive connection to its origin, or a new one."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        max_idle: int = 4,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # a context, or how to make one when the first https:// request needs it
        # (loading the CA bundle costs 30-50 ms and 1-2 MB; plain-http use never pays)
        self._ssl = ssl_context
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._monotonic = monotonic
        self._idle: dict[Origin, list[tuple[http.client.HTTPConnection, float]]] = {}
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
            # http.client decoded them as latin-1; httpx would encode text as ASCII
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1")},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn, _ in conns:
                conn.close()

    def _connect(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> http.client.HTTPConnection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        conn: http.client.HTTPConnection
        if scheme == "https":
            tls = self._ssl if isinstance(self._ssl, ssl.SSLContext) else self._ssl()
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.response_class = _FinalResponse
        try:
            conn.connect()
        except TimeoutError as exc:  # socket.timeout
            conn.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out", request=request) from exc
        except (OSError, UnicodeError) as exc:  # refused, unreachable, no such name, TLS refused
            conn.close()
            raise httpx.ConnectError(str(exc), request=request) from exc
        return conn

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        request: httpx.Request,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> tuple[int, str, list[tuple[str, str]], bytes, bool]:
        """Send the request and read the whole answer.

        Errors say what may have reached the server: ``LocalProtocolError`` for a
        request that could not even be written down, ``Write*`` once bytes may
        have gone out, ``Read*``/``RemoteProtocolError`` once the request was sent.
        """
        try:  # these only fill a buffer: nothing is sent yet
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
        except (ValueError, http.client.HTTPException) as exc:  # a newline in a header, say
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        sock = conn.sock
        write_error: OSError | None = None
        try:
            if sock is not None:
                sock.settimeout(timeouts.get("write"))
            conn.endheaders(body or None)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:  # the server may have answered early (a 413) and hung up
            write_error = exc
        try:
            if sock is not None:
                sock.settimeout(timeouts.get("read"))
            response = conn.getresponse()
            content = response.read()
        except Exception as exc:
            if write_error is not None:  # no early answer after all: the write failed
                raise httpx.WriteError(str(write_error), request=request) from write_error
            raise _read_error(exc, request) from exc
        return (
            response.status,
            response.reason,
            response.getheaders(),
            content,
            write_error is None and not response.will_close,
        )

    def _idle_connection(self, origin: Origin) -> http.client.HTTPConnection | None:
        now = self._monotonic()
        while True:
            with self._lock:
                conns = self._idle.get(origin)
                if not conns:
                    return None
                conn, since = conns.pop()
            # a connection idle for long may have been dropped by the server or a NAT
            # in between without a word: a request on it would end uncertain
            if now - since < self._expiry and _alive(conn):
                return conn
            conn.close()

    def _release(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            conns = self._idle.setdefault(origin, [])
            if not self._closed and len(conns) < self._max_idle:
                conns.append((conn, self._monotonic()))
                return
        conn.close()


def _read_error(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """Name what went wrong once the request was sent, as httpcore would."""
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out", request=request)
    if isinstance(exc, http.client.RemoteDisconnected):
        return httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    if isinstance(exc, http.client.HTTPException):  # a malformed or cut-short answer
        return httpx.RemoteProtocolError(repr(exc), request=request)
    if isinstance(exc, OSError):
        return httpx.ReadError(str(exc), request=request)
    return httpx.RemoteProtocolError(f"unreadable answer: {exc!r}", request=request)


def _alive(conn: http.client.HTTPConnection) -> bool:
    """Say whether an idle connection can carry a request: the server has not closed it.

    An idle HTTP/1.1 connection has nothing to read; if it is readable, the
    server closed it (or sent something unasked), so it must not be reused.
    """
    sock = conn.sock
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False
