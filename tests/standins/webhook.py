"""A generic webhook receiver: JSON POSTs, optionally signed.

The signature scheme it verifies, when a secret is set:

    X-Solidarity-Signature: sha256=<lower-case hex of HMAC-SHA256(secret, raw body bytes)>

(the header name is configurable). No signature, a malformed one or a wrong one: 401.
A body that is not JSON (by Content-Type or by parse): 415 or 400. Accepted posts are
answered with ``status`` (200 by default, with {"ok": true, "id": N}; 204 for no body).
A ``*`` in ``path`` matches any run of characters, so ``/hook/*`` takes posts at every
path under /hook/ (many accounts on one stand-in, told apart by the recorded path).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
from typing import Any

from tests.standins.base import Handler, StandIn, route
from tests.standins.wire import Reply, Request

SIGNATURE_HEADER = "X-Solidarity-Signature"


def sign(secret: str | bytes, body: bytes) -> str:
    """Return the signature header's value for a body: "sha256=<hex>"."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class Webhook(StandIn):
    """An HTTP endpoint that takes JSON posts at ``path`` and checks their signature."""

    platform = "webhook"
    post_routes = "post"

    def __init__(
        self,
        *,
        path: str = "/hook",
        secret: str | None = None,
        signature_header: str = SIGNATURE_HEADER,
        status: int = 200,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.path, self.secret = path, secret
        self.signature_header, self.status = signature_header, status

    def route_table(self) -> list[tuple[str, re.Pattern[str], str, Handler]]:
        """Serve the routes at the configured path (or paths, with ``*``) instead of /hook."""
        pattern = re.compile(re.escape(self.path).replace(r"\*", ".*"))
        return [(method, pattern, name, handler) for method, _, name, handler in self._routes]

    @property
    def hook_url(self) -> str:
        """Return the full URL to POST to."""
        return self.url + self.path

    @route("POST", r"/hook", "post")
    def receive(self, req: Request, _: re.Match[str]) -> Reply:
        if self.secret is not None or self.auth_rejected:
            given = req.header(self.signature_header)
            if not given:
                return Reply.json(401, {"error": f"missing {self.signature_header} header"})
            expected = sign(self.secret or "", req.body)
            given_bytes = given.strip().lower().encode("utf-8", "replace")
            if self.auth_rejected or not hmac.compare_digest(given_bytes, expected.encode()):
                return Reply.json(401, {"error": "signature does not match"})
        if req.content_type != "application/json":
            return Reply.json(415, {"error": "expected Content-Type: application/json"})
        try:
            payload = req.json()
        except ValueError:
            return Reply.json(400, {"error": "body is not JSON"})
        post_id = len(self._posts) + 1
        self.add_post(
            {"id": post_id, "payload": payload, "signature": req.header(self.signature_header)}
        )
        if self.status == 204:
            return Reply(204)
        return Reply.json(self.status, {"ok": True, "id": post_id})

    @route("GET", r"/hook", "get")
    def get(self, req: Request, _: re.Match[str]) -> Reply:
        return Reply.json(405, {"error": "use POST"}, {"Allow": "POST"})

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "hook_url": self.hook_url,
            "secret": self.secret,
            "signature_header": self.signature_header,
        }

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--path", default="/hook", help="where posts go; * matches anything")
        parser.add_argument("--secret", help="verify HMAC-SHA256 signatures with this secret")
        parser.add_argument("--signature-header", default=SIGNATURE_HEADER)
        parser.add_argument("--status", type=int, default=200, help="the status of a success")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Webhook:
        """Build from parsed command-line options."""
        return cls(
            path=ns.path,
            secret=ns.secret,
            signature_header=ns.signature_header,
            status=ns.status,
            **common,
        )
