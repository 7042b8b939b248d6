"""Bluesky: app.bsky.feed.post records through an atproto PDS.

One session per account, reused: createSession is rate-limited to a few hundred
a day, so an expired access token is refreshed with the refresh token (which
rotates) instead of logging in again.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any, ClassVar

from scheduler.errors import PermanentError
from scheduler.platforms import http as web
from scheduler.platforms.base import (
    AccountSettings,
    MediaFile,
    Outgoing,
    Platform,
    Receipt,
    Secret,
    Url,
)

if TYPE_CHECKING:
    import httpx


class BlueskySettings(AccountSettings):
    """An account on Bluesky (or another atproto service), with an app password."""

    service: Url = "https://bsky.social"
    handle: str
    app_password: Secret

    url_key = "service"


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict):
        error, message = body.get("error"), body.get("message")
        if error or message:
            return ": ".join(str(x) for x in (error, message) if x)
    return web.short_body(response)


def post_url(handle: str, uri: str) -> str:
    """Return the public bsky.app link of a post's at:// URI."""
    return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"


class Bluesky(Platform):
    """Bluesky allows 300 graphemes and 3000 UTF-8 bytes per post."""

    name = "bluesky"
    label = "Bluesky"
    limit = 300
    counter = "graphemes"
    byte_limit = 3000
    secret_fields: ClassVar[tuple[str, ...]] = ("app_password",)
    settings_model = BlueskySettings
    can_read_back = True

    settings: BlueskySettings
    _session: dict[str, str] | None = None
    logins = 0  # createSession calls made by this adapter (sessions must be reused)

    def _xrpc(
        self,
        method: str,
        nsid: str,
        *,
        auth: str | None = None,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        url = f"{self.settings.service}/xrpc/{nsid}"
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers["Authorization"] = f"Bearer {auth}"
        return web.send(
            self.name,
            lambda: self.http.request(method, url, headers=headers, **kwargs),
            idempotent=idempotent,
            reason=_reason,
            wait_headers=("RateLimit-Reset", "Retry-After"),
        )

    def _login(self) -> dict[str, str]:
        self.logins += 1
        response = self._xrpc(
            "POST",
            "com.atproto.server.createSession",
            json={
                "identifier": self.settings.handle,
                "password": self.settings.app_password.get_secret_value(),
            },
        )
        body = response.json()
        self._session = {k: str(body[k]) for k in ("accessJwt", "refreshJwt", "did", "handle")}
        return self._session

    def _refresh(self) -> dict[str, str]:
        assert self._session is not None
        try:
            response = self._xrpc(
                "POST", "com.atproto.server.refreshSession", auth=self._session["refreshJwt"]
            )
        except PermanentError:  # the refresh token expired too: log in once more
            return self._login()
        body = response.json()
        self._session = {
            **self._session,
            "accessJwt": str(body["accessJwt"]),
            "refreshJwt": str(body["refreshJwt"]),
        }
        return self._session

    def _authed(
        self, method: str, nsid: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Call with the session, refreshing it once if the access token has expired."""
        session = self._session or self._login()
        try:
            return self._xrpc(
                method, nsid, auth=session["accessJwt"], idempotent=idempotent, **kwargs
            )
        except PermanentError as exc:
            if exc.status not in (400, 401) or "Token" not in exc.reason:
                raise
        session = self._refresh()
        return self._xrpc(method, nsid, auth=session["accessJwt"], idempotent=idempotent, **kwargs)

    def _resolve(self, handle: str) -> str | None:
        try:
            response = self._xrpc(
                "GET", "com.atproto.identity.resolveHandle", params={"handle": handle}
            )
        except PermanentError:
            return None
        did = web.json_or_none(response)
        return str(did["did"]) if isinstance(did, dict) and "did" in did else None

    def _record(
        self,
        text: str,
        out: Outgoing,
        first: bool,
        root: dict[str, str] | None,
        parent: dict[str, str] | None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": out.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        from scheduler import facets  # regex-heavy: loaded when a post is built, not at start-up

        found = facets.to_record(facets.detect(text), self._resolve)
        if found:
            record["facets"] = found
        if out.language:
            record["langs"] = [out.language]
        if root and parent:
            record["reply"] = {"root": root, "parent": parent}
        if first and out.media:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [self._upload(m) for m in out.media[:4]],
            }
        elif first and out.card:
            card = out.card
            record["embed"] = {
                "$type": "app.bsky.embed.external",
                "external": {"uri": card.url, "title": card.title, "description": card.description},
            }
        return record

    def _upload(self, media: MediaFile) -> dict[str, Any]:
        content = media.read(self.name)
        response = self._authed(
            "POST",
            "com.atproto.repo.uploadBlob",
            content=content,
            headers={"Content-Type": media.mime},
        )
        return {"alt": media.alt, "image": response.json()["blob"]}

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Create one post per part, each replying to the one before (root kept)."""
        session = self._session or self._login()
        receipts: list[Receipt] = []
        root: dict[str, str] | None = None
        parent: dict[str, str] | None = None
        for i, part in enumerate(out.parts):
            record = self._record(part, out, i == 0, root, parent)
            response = self._authed(
                "POST",
                "com.atproto.repo.createRecord",
                idempotent=False,
                json={"repo": session["did"], "collection": "app.bsky.feed.post", "record": record},
            )
            body = response.json()
            ref = {"uri": str(body["uri"]), "cid": str(body["cid"])}
            root, parent = root or ref, ref
            receipts.append(Receipt(ref["uri"], post_url(session["handle"], ref["uri"])))
        return receipts

    def check(self) -> str:
        """Open a session (the harmless call) and say whose it is."""
        session = self._session or self._login()
        return f"@{session['handle']} ({session['did']})"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Look for the first part's exact text among the account's recent posts."""
        session = self._session or self._login()
        response = self._authed(
            "GET",
            "com.atproto.repo.listRecords",
            params={"repo": session["did"], "collection": "app.bsky.feed.post", "limit": 50},
        )
        for item in response.json().get("records", []):
            if item.get("value", {}).get("text") == out.parts[0]:
                return Receipt(str(item["uri"]), post_url(session["handle"], str(item["uri"])))
        return None
