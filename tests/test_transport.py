"""The adapters' HTTP stack (httpx's client and transport, no cookies), against 127.0.0.1.

What matters is what ``platforms.http.send`` makes of each failure: a refused
connection is retried, anything after the request went out is uncertain.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from scheduler import dispatch
from scheduler.accounts import load_accounts
from scheduler.errors import PermanentError, RetryableError, UncertainError
from scheduler.platforms import http as platform_http
from scheduler.transport import Transport, api_client

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with what it received; counts connections."""

    protocol_version = "HTTP/1.1"
    server: Recording

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def finish(self) -> None:
        super().finish()
        self.server.hung_up.release()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        self.server.seen.append(seen)
        route = self.server.routes.get(self.path.split("?")[0])
        if route is not None:
            route(self)
            return
        payload = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class Recording(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Recorder)
        self.lock = threading.Lock()
        self.connections = 0
        self.hung_up = threading.Semaphore(0)  # released as each connection ends
        self.seen: list[dict[str, Any]] = []
        self.routes: dict[str, Callable[[Recorder], None]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def recording(wrap: Callable[[socket.socket], socket.socket] | None = None) -> Iterator[Recording]:
    server = Recording()
    if wrap is not None:
        server.socket = wrap(server.socket)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def raw_server(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server whose every connection is handed to ``handle`` as a bare socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    return data


def client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return api_client(transport or Transport(ssl.create_default_context()), timeout=TIMEOUT)


def post_once(url: str, *, idempotent: bool = False) -> httpx.Response:
    with client() as c:
        return platform_http.send(
            "Mastodon",
            lambda: c.post(url, json={"status": "Day 1"}),
            idempotent=idempotent,
            reason=lambda r: r.text,
        )


# --- what goes out and what comes back ---------------------------------------


def test_a_json_post_arrives_as_httpx_would_send_it() -> None:
    with recording() as server, client() as c:
        reply = c.post(
            server.url + "/api/v1/statuses?x=1&y=%C3%A9",
            json={"status": "Günay Ismayıl, day 412"},
            headers={"Authorization": "Bearer t0ken", "Idempotency-Key": "k1"},
        )
    assert reply.status_code == 200
    assert reply.http_version == "HTTP/1.1"
    assert reply.reason_phrase == "OK"
    seen = reply.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/api/v1/statuses?x=1&y=%C3%A9"
    assert json.loads(seen["body"].encode("latin-1")) == {"status": "Günay Ismayıl, day 412"}
    headers = seen["headers"]
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["idempotency-key"] == "k1"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == server.url.removeprefix("http://")
    assert int(headers["content-length"]) == len(seen["body"].encode("latin-1"))


def test_a_multipart_upload_is_sent_whole_with_its_length() -> None:
    image = bytes(range(256)) * 40
    with recording() as server, client() as c:
        reply = c.post(
            server.url + "/api/v2/media",
            data={"description": "alt text"},
            files={"file": ("portrait.png", image, "image/png")},
        )
    seen = reply.json()
    assert "transfer-encoding" not in seen["headers"]
    assert int(seen["headers"]["content-length"]) == len(seen["body"].encode("latin-1"))
    assert image in seen["body"].encode("latin-1")
    assert seen["headers"]["content-type"].startswith("multipart/form-data; boundary=")


def test_chunked_and_gzipped_answers_are_decoded() -> None:
    def chunked_gzip(handler: Recorder) -> None:
        body = gzip.compress(json.dumps({"id": "109", "url": "https://x/@a/109"}).encode())
        handler.send_response(201)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for i in range(0, len(body), 7):
            piece = body[i : i + 7]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")

    with recording() as server, client() as c:
        server.routes["/gz"] = chunked_gzip
        reply = c.get(server.url + "/gz")
        again = c.get(server.url + "/plain")  # the connection is still good after a chunked body
    assert reply.status_code == 201
    assert reply.json() == {"id": "109", "url": "https://x/@a/109"}
    assert again.status_code == 200
    assert server.connections == 1


def test_a_platform_error_keeps_its_status_headers_and_words() -> None:
    def limited(handler: Recorder) -> None:
        body = b'{"error":"Too many requests"}'
        handler.send_response(429, "Too Many Requests")
        handler.send_header("Retry-After", "30")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with recording() as server:
        server.routes["/limited"] = limited
        with pytest.raises(RetryableError) as caught:
            post_once(server.url + "/limited")
    assert caught.value.status == 429
    assert caught.value.wait == 30
    assert "Too many requests" in str(caught.value)


# --- connections ---------------------------------------------------------------


def test_requests_to_one_origin_share_one_kept_alive_connection() -> None:
    with recording() as server, client() as c:
        for i in range(5):
            assert c.post(server.url + f"/p{i}", json={"n": i}).status_code == 200
    assert server.connections == 1
    assert [s["path"] for s in server.seen] == [f"/p{i}" for i in range(5)]


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    def close_after(handler: Recorder) -> None:
        body = b"{}"
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        # without saying so: the server just hangs up (its FIN sent now, before hung_up is
        # released; socketserver would close the socket only after that)
        handler.connection.shutdown(socket.SHUT_WR)
        handler.close_connection = True

    with recording() as server, client() as c:
        server.routes["/bye"] = close_after
        assert c.post(server.url + "/bye", json={}).status_code == 200
        assert server.hung_up.acquire(timeout=5)
        # the server has closed; the next request must go on a new connection, not fail
        assert c.post(server.url + "/next", json={}).status_code == 200
    assert server.connections == 2


def test_connection_close_from_the_server_is_honoured() -> None:
    def close(handler: Recorder) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "0")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True

    with recording() as server, client() as c:
        server.routes["/close"] = close
        for _ in range(3):
            assert c.get(server.url + "/close").status_code == 200
    assert server.connections == 3


def test_cookies_are_neither_kept_nor_sent() -> None:
    def set_cookie(handler: Recorder) -> None:
        handler.send_response(200)
        handler.send_header("Set-Cookie", "session=abc; Path=/")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with recording() as server, client() as c:
        server.routes["/login"] = set_cookie
        c.get(server.url + "/login")
        seen = c.get(server.url + "/after").json()
        assert not c.cookies
    assert "cookie" not in seen["headers"]


# --- failures, as platforms.http.send classifies them ----------------------------


def test_a_refused_connection_surely_sent_nothing_and_is_retried() -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    with pytest.raises(RetryableError, match="could not connect"):
        post_once(f"http://127.0.0.1:{port}/api/v1/statuses")


def test_no_answer_after_the_request_went_out_is_uncertain() -> None:
    received = threading.Event()

    def silent(conn: socket.socket) -> None:
        read_request(conn)
        received.set()
        threading.Event().wait(3)  # hold the connection, say nothing
        conn.close()

    with raw_server(silent) as url, client() as c:
        c.timeout = httpx.Timeout(0.3, connect=2.0)
        with pytest.raises(UncertainError, match="no usable answer after the request went out"):
            platform_http.send(
                "Mastodon",
                lambda: c.post(url + "/api/v1/statuses", json={"status": "x"}),
                idempotent=False,
                reason=lambda r: r.text,
            )
    assert received.is_set()


def test_a_hang_up_after_the_request_is_uncertain_or_retried_where_keyed() -> None:
    def hang_up(conn: socket.socket) -> None:
        read_request(conn)
        conn.close()

    with raw_server(hang_up) as url:
        with pytest.raises(UncertainError, match="no usable answer after the request went out"):
            post_once(url + "/api/v1/statuses")
        with pytest.raises(RetryableError, match="no usable answer after the request went out"):
            post_once(url + "/api/v1/statuses", idempotent=True)


def test_a_garbled_answer_is_uncertain() -> None:
    def garble(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SMTP ready\r\n\r\n")
        conn.close()

    with raw_server(garble) as url, pytest.raises(UncertainError):
        post_once(url + "/api/v1/statuses")


def test_an_unsupported_scheme_is_refused_before_connecting() -> None:
    with client() as c, pytest.raises(httpx.UnsupportedProtocol):
        c.get("ftp://127.0.0.1/file")


def test_redirects_auth_hooks_and_streams_work_as_httpx_documents() -> None:
    """Redirects are followed only when asked; auth flows, hooks and streams work."""

    def moved(handler: Recorder) -> None:
        handler.send_response(302)
        handler.send_header("Location", "/landed")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    hooked: list[str] = []
    with recording() as server, client() as c:
        server.routes["/moved"] = moved
        assert c.get(server.url + "/moved").status_code == 302  # not followed by default
        followed = c.get(server.url + "/moved", follow_redirects=True)
        assert followed.json()["path"] == "/landed"
        with_auth = c.get(server.url + "/private", auth=("user", "pw")).json()
        assert with_auth["headers"]["authorization"].startswith("Basic ")
        c.event_hooks = {"request": [lambda r: hooked.append(r.url.path)], "response": []}
        c.get(server.url + "/hooked")
        c.event_hooks = {"request": [], "response": []}
        with c.stream("GET", server.url + "/streamed") as streamed:
            assert b"/streamed" in streamed.read()
        plain = c.get(server.url + "/plain")
        assert plain.elapsed.total_seconds() >= 0 and plain.request.url.path == "/plain"
    assert hooked == ["/hooked"]


# --- what the review of this transport found ------------------------------------


def test_a_non_ascii_answer_header_is_read_as_latin_1_not_a_crash() -> None:
    def answer(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 201 Created\r\nX-Note: caf\xe9\r\n"
            b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.txt"\r\n'
            b'Content-Length: 10\r\n\r\n{"id":"1"}'
        )

    with raw_server(answer) as url:
        reply = post_once(url + "/api/v1/statuses")
    assert reply.json() == {"id": "1"}
    assert reply.headers["x-note"] == "caf\xe9"


def test_an_informational_answer_is_skipped_and_never_taken_by_the_next_request() -> None:
    def slow_create(conn: socket.socket) -> None:
        for post_id in (b"A", b"B"):
            if not read_request(conn):
                return
            if post_id == b"A":
                conn.sendall(b"HTTP/1.1 102 Processing\r\nX-Progress: 1\r\n\r\n")
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
            conn.sendall(b'HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\n{"id":"%s"}' % post_id)

    with raw_server(slow_create) as url, client() as c:
        first = c.post(url + "/api/v1/statuses", json={"status": "A"})
        second = c.post(url + "/api/v1/statuses", json={"status": "B"})
    assert (first.status_code, first.json()) == (201, {"id": "A"})
    assert (second.status_code, second.json()) == (201, {"id": "B"})


def test_a_header_that_cannot_be_written_sends_nothing_and_is_retried() -> None:
    with recording() as server, client() as c:
        with pytest.raises(RetryableError, match="request failed before sending"):
            platform_http.send(
                "Mastodon",
                lambda: c.post(server.url + "/x", json={}, headers={"Authorization": "t\r\nX: y"}),
                idempotent=False,
                reason=lambda r: r.text,
            )
        assert c.get(server.url + "/after").status_code == 200  # the client still works
    assert [s["path"] for s in server.seen] == ["/after"]


def test_an_early_answer_to_an_upload_is_read_with_the_platforms_words() -> None:
    def too_big(conn: socket.socket) -> None:
        read_request(conn)  # the headers only: then refuse the body
        conn.sendall(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 19\r\nConnection: close\r\n"
            b'\r\n{"error":"too big"}'
        )
        conn.shutdown(socket.SHUT_WR)
        threading.Event().wait(0.2)
        conn.close()

    with raw_server(too_big) as url, client() as c, pytest.raises(PermanentError) as caught:
        platform_http.send(
            "Mastodon",
            lambda: c.post(url + "/api/v2/media", content=b"x" * 20_000_000),
            idempotent=False,
            reason=lambda r: r.text,
        )
    assert caught.value.status == 413 and "too big" in str(caught.value)


def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    # httpcore reads its own clock (time.monotonic), so the expiry is short and real here;
    # the daemon's is KEEPALIVE_EXPIRY (5 s)
    transport = Transport(ssl.create_default_context(), keepalive_expiry=0.5)
    with recording() as server, client(transport) as c:
        c.get(server.url + "/one")
        c.get(server.url + "/two")  # idle for well under 0.5 s: reused
        assert server.connections == 1
        time.sleep(0.7)
        c.get(server.url + "/three")  # idle past its expiry: a new connection
        assert server.hung_up.acquire(timeout=5)  # and the expired one was closed, not kept
    assert server.connections == 2
    assert [s["path"] for s in server.seen] == ["/one", "/two", "/three"]  # each sent once


def test_no_tls_context_is_built_before_the_first_request() -> None:
    """A daemon warms a client per account, then idles: it must not load the CA bundle."""
    built: list[ssl.SSLContext] = []

    def tls() -> ssl.SSLContext:
        built.append(ssl.create_default_context())
        return built[-1]

    with recording() as server, client(Transport(tls)) as c:
        assert built == []
        c.get(server.url + "/one")
        c.get(server.url + "/two")
    assert len(built) == 1


def test_an_answer_that_will_not_decode_is_uncertain_not_resent() -> None:
    def not_gzip(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
        )

    with raw_server(not_gzip) as url, pytest.raises(UncertainError, match="DecodingError"):
        post_once(url + "/api/v1/statuses")


def test_one_clients_cookie_calls_do_not_reach_another() -> None:
    with client() as one, client() as two:
        one.cookies.set("session", "abc")
        one.cookies["other"] = "x"
        assert not one.cookies and not two.cookies
        assert one.cookies is not two.cookies


# --- TLS --------------------------------------------------------------------------


def test_https_verifies_the_certificate_and_the_name() -> None:
    ca = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    def wrap(sock: socket.socket) -> socket.socket:
        return server_side.wrap_socket(sock, server_side=True)

    with recording(wrap) as server:
        url = server.url.replace("http://", "https://")
        with client(Transport(trusting)) as c:
            assert c.post(url + "/ok", json={"a": 1}).json()["path"] == "/ok"
            assert c.post(url + "/again", json={"a": 2}).status_code == 200
        assert server.connections == 1
        # a client that does not trust the issuer refuses to send anything
        with client() as c, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            c.post(url + "/nope", json={})
    assert [s["path"] for s in server.seen] == ["/ok", "/again"]


# --- which transport an account gets --------------------------------------------


def test_a_proxy_from_the_account_or_the_environment_goes_through_httpx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One server is both origin and proxy: a proxied request names the whole URL."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    with recording() as server:
        path = tmp_path / "accounts.yaml"
        path.write_text(
            "direct:\n  platform: webhook\n  url: https://hooks.example.org/a\n"
            "proxied:\n  platform: webhook\n  url: https://hooks.example.org/b\n"
            f"  proxy: {server.url}\n",
            encoding="utf-8",
        )
        accounts, problems = load_accounts(path, {})
        assert problems == []

        def seen_by(name: str) -> str:
            with dispatch.http_client(accounts[name]) as c:
                return str(c.get(server.url + "/where").json()["path"])

        assert seen_by("direct") == "/where"
        assert seen_by("proxied") == server.url + "/where"
        monkeypatch.setenv("HTTP_PROXY", server.url)
        assert seen_by("direct") == server.url + "/where"
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.setenv("NO_PROXY", "example.org")  # no proxy named: straight to the origin
        assert seen_by("direct") == "/where"
