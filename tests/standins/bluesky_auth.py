"""An atproto PDS's sessions: app-password login, access and refresh JWTs, XRPC shapes.

What the PDS does, mimicked: createSession counts logins (a test asserts sessions are
reused) and answers 401 AuthenticationRequired "Invalid identifier or password"; an
access token past its life answers 400 ExpiredToken "Token has expired"; refreshSession
takes the refresh token as Bearer and rotates both tokens, and a used refresh token stays
usable for a grace period (2 h), yielding the same successor, so a client that lost the
answer recovers; past it, 400 ExpiredToken "Token has been revoked". Tokens are real
HS256 JWTs whose exp a client may read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from tests.standins.base import StandIn, route
from tests.standins.lexicon import LexiconError, Lexicons
from tests.standins.wire import Reply, Request


def xrpc_error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    """Return an XRPC error: {"error": ..., "message": ...}."""
    return Reply.json(status, {"error": error, "message": message}, headers)


def invalid(message: str) -> Reply:
    """Return 400 InvalidRequest with a message."""
    return xrpc_error(400, "InvalidRequest", message)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class _Token:
    kind: str  # "access" | "refresh"
    seq: int  # order of issue, for the expire_* knobs
    exp: float
    jti: str = ""


class PdsSessions(StandIn):
    """The account and session half of a PDS; Bluesky adds the repo."""

    knobs = StandIn.knobs | {"expire_access_tokens", "expire_refresh_tokens", "clear_requests"}

    def __init__(
        self,
        *,
        handle: str = "test.example",
        password: str = "test-app-password",
        did: str = "did:plc:solidaritystandin2345aa",
        access_ttl: float = 2 * 3600,
        refresh_ttl: float = 90 * 86400,
        refresh_grace: float = 2 * 3600,
        max_logins: int | None = None,
        lexicons: Lexicons | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.handle, self.password, self.did = handle, password, did
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        self.refresh_grace, self.max_logins = refresh_grace, max_logins
        self.lexicons = lexicons or Lexicons.load()
        self.logins = self.login_attempts = self.refreshes = 0
        self._secret = secrets.token_bytes(32)
        self._tokens: dict[str, _Token] = {}
        self._refresh: dict[str, dict[str, Any]] = {}  # jti -> {"expires", "next"}
        self._seq = self._access_floor = self._refresh_floor = 0

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (400 ExpiredToken)."""
        with self._lock:
            self._access_floor = self._seq

    def expire_refresh_tokens(self) -> None:
        """Make every refresh token issued so far expired: the client must log in again."""
        with self._lock:
            self._refresh_floor = self._seq

    # -- sessions ----------------------------------------------------------------------

    def _issue(self, kind: str, jti: str = "") -> str:
        self._seq += 1
        now = int(self.clock())
        ttl = self.access_ttl if kind == "access" else self.refresh_ttl
        claims: dict[str, Any] = {
            "scope": "com.atproto.appPass" if kind == "access" else "com.atproto.refresh",
            "sub": self.did,
            "aud": f"did:web:{self.host}",
            "iat": now,
            "exp": int(now + ttl),
        }
        if kind == "refresh":
            claims["jti"] = jti
        header = {"typ": "at+jwt" if kind == "access" else "refresh+jwt", "alg": "HS256"}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        token = f"{signing}.{_b64url(signature)}"
        self._tokens[token] = _Token(kind, self._seq, now + ttl, jti)
        return token

    def _session(self, jti: str | None = None) -> dict[str, Any]:
        jti = jti or secrets.token_urlsafe(24)
        self._refresh.setdefault(jti, {"expires": self.clock() + self.refresh_ttl, "next": None})
        return {
            "accessJwt": self._issue("access"),
            "refreshJwt": self._issue("refresh", jti),
            "handle": self.handle,
            "did": self.did,
            "didDoc": self._did_doc(),
            "active": True,
        }

    def _did_doc(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": self.did,
            "alsoKnownAs": [f"at://{self.handle}"],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": self.url,
                }
            ],
        }

    def _access(self, req: Request) -> Reply | None:
        """Return an error answer unless the request carries a valid access token."""
        token = req.bearer()
        if token is None:
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        info = self._tokens.get(token)
        if info is None or self.auth_rejected:
            return xrpc_error(400, "InvalidToken", "Token could not be verified")
        if info.kind != "access":
            return xrpc_error(400, "InvalidToken", "Invalid token type")
        if info.exp <= self.clock() or info.seq <= self._access_floor:
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        return None

    def _owns(self, repo: str) -> bool:
        return repo == self.did or repo.lower() == self.handle.lower()

    @route("POST", r"/xrpc/com\.atproto\.server\.createSession", "com.atproto.server.createSession")
    def create_session(self, req: Request, _: re.Match[str]) -> Reply:
        body, error = self._input(req, "com.atproto.server.createSession")
        if error is not None:
            return error
        self.login_attempts += 1
        if self.max_logins is not None and self.login_attempts > self.max_logins:
            return self._rate_limit_reply(300, limit=30, window=300)
        if (
            self.auth_rejected
            or not self._owns(body["identifier"])
            or body["password"] != self.password
        ):
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        self.logins += 1
        return Reply.json(200, self._session())

    @route(
        "POST", r"/xrpc/com\.atproto\.server\.refreshSession", "com.atproto.server.refreshSession"
    )
    def refresh_session(self, req: Request, _: re.Match[str]) -> Reply:
        token = req.bearer()
        if token is None:
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        info = self._tokens.get(token)
        if info is None:
            return xrpc_error(400, "InvalidToken", "Token could not be verified")
        if info.kind != "refresh":
            return xrpc_error(400, "InvalidToken", "Invalid token type")
        now = self.clock()
        if info.exp <= now or info.seq <= self._refresh_floor:
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        stored = self._refresh.get(info.jti)
        if self.auth_rejected or stored is None or stored["expires"] <= now:
            return xrpc_error(400, "ExpiredToken", "Token has been revoked")
        # The PDS shortens a used token's life to a grace period; reused within it, the
        # token yields a successor with the same id (a client that lost the answer recovers).
        stored["expires"] = min(stored["expires"], now + self.refresh_grace)
        stored["next"] = stored["next"] or secrets.token_urlsafe(24)
        self.refreshes += 1
        return Reply.json(200, self._session(stored["next"]))

    @route("GET", r"/xrpc/com\.atproto\.server\.getSession", "com.atproto.server.getSession")
    def get_session(self, req: Request, _: re.Match[str]) -> Reply:
        if (error := self._access(req)) is not None:
            return error
        return Reply.json(
            200, {"handle": self.handle, "did": self.did, "didDoc": self._did_doc(), "active": True}
        )

    @route(
        "GET", r"/xrpc/com\.atproto\.identity\.resolveHandle", "com.atproto.identity.resolveHandle"
    )
    def resolve_handle(self, req: Request, _: re.Match[str]) -> Reply:
        handle = req.query.get("handle", [""])[0]
        if not handle:
            return xrpc_error(400, "InvalidRequest", 'Params must have the property "handle"')
        if handle.lower() != self.handle.lower():
            return xrpc_error(400, "HandleNotFound", "Unable to resolve handle")
        return Reply.json(200, {"did": self.did})

    # -- the XRPC shapes ------------------------------------------------------------

    def _input(self, req: Request, nsid: str) -> tuple[dict[str, Any], Reply | None]:
        """Return a procedure's JSON input, or an error answer as the XRPC server gives."""
        if req.content_type != "application/json":
            return {}, invalid(
                f"Wrong request encoding (Content-Type): {req.content_type or 'none'}"
            )
        try:
            body = req.json()
            self.lexicons.validate_input(nsid, body)
        except ValueError as exc:
            message = str(exc) if isinstance(exc, LexiconError) else "Invalid JSON body"
            return {}, invalid(message)
        return body, None

    def _rate_limit_reply(
        self, retry_after: float, *, limit: int = 3000, window: int = 300
    ) -> Reply:
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(int(self.clock() + retry_after)),
            "RateLimit-Policy": f"{limit};w={window}",
        }
        return xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        return self._rate_limit_reply(retry_after)

    def server_error(self, req: Request, status: int) -> Reply:
        if status == 500:
            return xrpc_error(500, "InternalServerError", "Internal Server Error")
        return Reply.proxy_error(status)

    def not_found(self, req: Request) -> Reply:
        if req.path.startswith("/xrpc/"):
            return xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")
        return xrpc_error(404, "NotFound", "Not Found")

    def method_not_allowed(self, req: Request) -> Reply:
        return invalid(f"Incorrect HTTP method ({req.method})")

    def decorate(self, req: Request, route_name: str, reply: Reply) -> Reply:
        if reply.status != 429 and req.path.startswith("/xrpc/"):
            window = 300
            used = sum(1 for r in self._requests if r.at > self.clock() - window)
            reply.headers.setdefault("RateLimit-Limit", "3000")
            reply.headers.setdefault("RateLimit-Remaining", str(max(0, 3000 - used)))
            reply.headers.setdefault("RateLimit-Reset", str(int(self.clock()) + window))
            reply.headers.setdefault("RateLimit-Policy", f"3000;w={window}")
        return reply

    def extra_state(self) -> dict[str, Any]:
        return {
            "logins": self.logins,
            "login_attempts": self.login_attempts,
            "refreshes": self.refreshes,
        }

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "handle": self.handle,
            "password": self.password,
            "did": self.did,
        }
