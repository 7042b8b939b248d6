"""A platform stand-in whose error pages quote the request, as some proxies' and servers' do.

Every request (a post, a credentials check, a proxied request) is refused with
401 and a JSON body whose ``description`` (Telegram), ``error`` (Mastodon) and
``message`` (Discord, webhooks) quote the request line, every header and the
body: whatever secret the request carried comes back in the platform's words.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        headers = " ".join(f"{k}: {v}" for k, v in self.headers.items())
        quoted = f"refused {self.requestline} {headers} {body[:2000]}"
        self.server.requests.append(quoted)  # type: ignore[attr-defined]
        payload = json.dumps(
            {
                "ok": False,
                "error_code": 401,
                "description": quoted,
                "error": quoted,
                "message": quoted,
            }
        ).encode()
        self.send_response(401, "Unauthorized")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


@contextmanager
def echo_server() -> Iterator[tuple[str, list[str]]]:
    """Serve on 127.0.0.1; yield its base URL and the requests it quoted."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    requests: list[str] = []
    server.requests = requests  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
