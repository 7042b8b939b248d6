"""Bluesky: app.bsky.feed.post records through an atproto PDS.

One session per account, reused: createSession is rate-limited to a few hundred
a day, so an expired access token is refreshed with the refresh token (which
rotates) instead of logging in again.

Every part of an occurrence has its own record key, derived from the occurrence's
identity (``record_key``). A repo holds one record per key, so a retry cannot post
twice: a create that fails because the key is taken (or whose answer was lost) is
settled by reading that very record (``getRecord``), never by a post's text.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from scheduler.errors import PermanentError, PlatformError, UncertainError
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


POST = "app.bsky.feed.post"
_S32 = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable, as atproto's TIDs are written


def record_key(out: Outgoing, part: int) -> str:
    """Derive the record key of one part: a TID from the occurrence's identity.

    The timestamp is the scheduled instant's whole second; the microseconds and the
    10-bit clock id come from a hash of the key and the part's index, so two posts
    scheduled for the same second (or two parts of a thread) get different keys
    (about 2^30 values per second), and every retry gets the same ones.
    """
    digest = int.from_bytes(hashlib.sha256(f"{out.key}#{part}".encode()).digest()[:8], "big")
    micros = _instant(out) * 1_000_000 + digest % 1_000_000
    n = (micros << 10) | ((digest // 1_000_000) & 0x3FF)
    return "".join(_S32[(n >> shift) & 31] for shift in range(60, -1, -5))


def _instant(out: Outgoing) -> int:
    if out.scheduled_for is not None:
        return int(out.scheduled_for.timestamp())
    for piece in out.key.split("/"):  # an occurrence key holds its instant
        try:
            return int(
                datetime.strptime(piece, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            )
        except ValueError:
            continue
    return 0


def _ref(body: Any) -> dict[str, str]:
    return {"uri": web.text_of(body["uri"]), "cid": web.text_of(body["cid"])}


def _taken(exc: PlatformError) -> bool:
    """Say whether an error may mean the record exists (the PDS answers a taken key with a 500)."""
    if isinstance(exc, PermanentError):
        return "already exists" in exc.reason.lower()
    return exc.status != 429


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
    dedupes_by_key = True  # one record per record key: a retry finds the record it made
    media_on_parts = True

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
        self._session = web.parsed(
            self.name,
            response,
            lambda b: {k: web.text_of(b[k]) for k in ("accessJwt", "refreshJwt", "did", "handle")},
            idempotent=True,
        )
        return self._session

    def _refresh(self) -> dict[str, str]:
        assert self._session is not None
        try:
            response = self._xrpc(
                "POST", "com.atproto.server.refreshSession", auth=self._session["refreshJwt"]
            )
        except PermanentError:  # the refresh token expired too: log in once more
            return self._login()
        tokens = web.parsed(
            self.name,
            response,
            lambda b: {k: web.text_of(b[k]) for k in ("accessJwt", "refreshJwt")},
            idempotent=True,
        )
        self._session = {**self._session, **tokens}
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
        media: list[tuple[MediaFile, bytes]],
        root: dict[str, str] | None,
        parent: dict[str, str] | None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST,
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
        if media:
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [self._upload(m, content) for m, content in media[:4]],
            }
        elif root is None and out.card:
            card = out.card
            record["embed"] = {
                "$type": "app.bsky.embed.external",
                "external": {"uri": card.url, "title": card.title, "description": card.description},
            }
        return record

    def _upload(self, media: MediaFile, content: bytes) -> dict[str, Any]:
        response = self._authed(  # a blob no record uses is harmless: retrying is safe
            "POST",
            "com.atproto.repo.uploadBlob",
            content=content,
            headers={"Content-Type": media.mime},
        )
        blob = web.parsed(self.name, response, lambda b: dict(b["blob"]), idempotent=True)
        from scheduler.platforms.imagesize import image_size

        image: dict[str, Any] = {"alt": media.alt, "image": blob}
        size = image_size(content)  # bsky.app lays an image out by it before it loads
        if size is not None:
            image["aspectRatio"] = {"width": size[0], "height": size[1]}
        return image

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Create one post per part under its own record key, each replying to the one before."""
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        session = self._session or self._login()
        receipts: list[Receipt] = []
        root: dict[str, str] | None = None
        parent: dict[str, str] | None = None
        for i, part in enumerate(out.parts):
            record = self._record(part, out, media[i], root, parent)
            ref = self._create(session, record_key(out, i), record)
            root, parent = root or ref, ref
            receipts.append(Receipt(ref["uri"], post_url(session["handle"], ref["uri"])))
        return receipts

    def _create(self, session: dict[str, str], rkey: str, record: dict[str, Any]) -> dict[str, str]:
        """Create a record at its key; if that fails in a way that may mean it exists, read it."""
        try:
            response = self._authed(
                "POST",
                "com.atproto.repo.createRecord",
                json={"repo": session["did"], "collection": POST, "rkey": rkey, "record": record},
            )
            return web.parsed(self.name, response, _ref, idempotent=True)
        except PlatformError as exc:
            if not _taken(exc):
                raise
            try:
                found = self._lookup(session, rkey)
            except PlatformError:
                raise exc from None
            if found is None:
                raise
        return self._proof(found, str(record["text"]))

    def _lookup(self, session: dict[str, str], rkey: str) -> dict[str, Any] | None:
        """Return the record at a key of the account's posts, or None if there is none."""
        try:
            response = self._authed(
                "GET",
                "com.atproto.repo.getRecord",
                params={"repo": session["did"], "collection": POST, "rkey": rkey},
            )
        except PermanentError as exc:
            if "RecordNotFound" in exc.reason or "Could not locate record" in exc.reason:
                return None
            raise
        return web.parsed(
            self.name, response, lambda b: {**_ref(b), "text": b["value"]["text"]}, idempotent=True
        )

    def _proof(self, found: dict[str, Any], text: str) -> dict[str, str]:
        """Accept the record at our key only if it holds the text we meant to post."""
        if found["text"] != text:
            raise UncertainError(
                self.name,
                f"the record at this occurrence's key ({found['uri']}) holds another text; "
                "check the account before sending it again",
            )
        return {"uri": found["uri"], "cid": found["cid"]}

    def check(self) -> str:
        """Open a session (the harmless call) and say whose it is."""
        session = self._session or self._login()
        return f"@{session['handle']} ({session['did']})"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Read each part's record at its own key: the post of this occurrence, or None.

        None also when only the first parts exist (a thread cut short): publishing
        again under the same keys completes it without posting any part twice.
        """
        session = self._session or self._login()
        refs = []
        for i, part in enumerate(out.parts):
            found = self._lookup(session, record_key(out, i))
            if found is None:
                return None
            refs.append(self._proof(found, part))
        uri = refs[0]["uri"]
        return Receipt(uri, post_url(session["handle"], uri))
