"""Matrix: m.room.message events sent to one room through the client-server API (v3).

Every event goes out with ``PUT /rooms/{roomId}/send/m.room.message/{txnId}``, its txnId
derived from the occurrence's identity (and the part and image it carries). A homeserver
answers a txnId it has seen from the same access token with the event it made then
(Synapse remembers it for a day), so a retry cannot post twice: the adapter deduplicates
by key.

Matrix has no threads in our sense, so a thread's parts go as consecutive messages, each
part's images (``m.image``, alt text as ``body``) right after its text. Replies
(``m.relates_to``/``m.in_reply_to``) were the other choice; clients show each reply with a
quote of the one before, which reads badly for the parts of one text. Links are sent twice
over, as Matrix clients expect: in the plain ``body`` and as ``<a href>`` in an HTML
``formatted_body``. There is no link card (a client or the homeserver previews the link
itself). A content warning becomes a spoiler (``data-mx-spoiler``) with the warning in
front of the plain body.

The length limit: the spec caps a whole event at 65,536 bytes (JSON, signatures and all),
and the HTML ``formatted_body`` can be several times the text (escapes, each link twice),
so a part may hold at most 8,000 UTF-8 bytes, counted as the ``body``'s bytes; an event
that still comes out too large is refused before anything is sent.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import field_validator

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

CLIENT = "/_matrix/client/v3"
EVENT_MAX_BYTES = 65_536  # the spec's limit on a whole event
CONTENT_MAX_BYTES = 60_000  # what we allow the content, leaving room for the envelope
READ_BACK_PAGES = 5  # at most this many pages of 100 events are read to find a send
CLOCK_SKEW = timedelta(seconds=60)
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?'"


class MatrixSettings(AccountSettings):
    """A homeserver, a room (``!id:server``, ``!id`` or ``#alias:server``) and an access token."""

    homeserver: Url = "https://matrix.org"
    room: str
    access_token: Secret

    url_key = "homeserver"

    @field_validator("room")
    @classmethod
    def _room_shape(cls, value: str) -> str:
        # room version 12 ids carry no server name (!opaque); an alias always does
        name, colon, server = value[1:].partition(":")
        alias = value.startswith("#") and name and colon and server
        spaced = any(c.isspace() for c in value)
        if spaced or not (alias or (value.startswith("!") and name)):
            raise ValueError(
                f"'{value}' is not a room; write a room id (!abc:example.org) "
                "or a room alias (#name:example.org), in quotes"
            )
        return value


def _reason(response: httpx.Response) -> str:
    """Return the homeserver's own words: ``errcode: error``."""
    body = web.json_or_none(response)
    if isinstance(body, dict):
        words = [str(body[k]) for k in ("errcode", "error") if body.get(k)]
        if words:
            return ": ".join(words)
    return web.short_body(response)


def _retry_after_ms(response: httpx.Response) -> float | None:
    body = web.json_or_none(response)
    wait = body.get("retry_after_ms") if isinstance(body, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait >= 0:
        return float(wait) / 1000
    return None


def transaction_id(out: Outgoing, part: int, image: int = 0) -> str:
    """Derive the txnId of one event: a part's text (image 0) or its n-th image."""
    if image == 0:
        return f"solidarity-{out.idempotency_key(part)}"
    digest = hashlib.sha256(f"{out.key}#{part}#image{image}".encode()).hexdigest()[:40]
    return f"solidarity-{digest}"


def linked_html(text: str) -> str | None:
    """Return the text as HTML with its links as <a href>, or None if it has no link."""
    pieces: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        url = match.group().rstrip(_TRAILING)
        if url.endswith(")") and "(" not in url:
            url = url[:-1].rstrip(_TRAILING)
        if "://" not in url or url.endswith("://"):
            continue
        pieces.append(html.escape(text[last : match.start()], quote=False))
        pieces.append(f'<a href="{html.escape(url)}">{html.escape(url, quote=False)}</a>')
        last = match.start() + len(url)
    if not pieces:
        return None
    pieces.append(html.escape(text[last:], quote=False))
    return "".join(pieces).replace("\n", "<br>")


def text_content(text: str, warning: str | None = None) -> dict[str, Any]:
    """Return an m.text event's content: the plain body and, where needed, its HTML."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": text}
    formatted = linked_html(text)
    if warning:
        inner = formatted if formatted is not None else html.escape(text, quote=False)
        inner = inner.replace("\n", "<br>")
        formatted = f'<span data-mx-spoiler="{html.escape(warning)}">{inner}</span>'
        content["body"] = f"[{warning}]\n{text}"
    if formatted is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = formatted
    return content


def image_content(media: MediaFile, data: bytes, uri: str) -> dict[str, Any]:
    """Return an m.image event's content: the alt text as body, the file's facts as info."""
    from scheduler.platforms.imagesize import image_size

    info: dict[str, Any] = {"mimetype": media.mime, "size": len(data)}
    size = image_size(data)
    if size is not None:
        info["w"], info["h"] = size
    return {
        "msgtype": "m.image",
        "body": media.alt,
        "filename": media.path.name,
        "url": uri,
        "info": info,
    }


def event_url(room_id: str, event_id: str) -> str:
    """Return the matrix.to link of an event."""
    return f"https://matrix.to/#/{quote(room_id, safe='!:')}/{quote(event_id, safe='$:')}"


class Matrix(Platform):
    """Matrix takes 8,000 UTF-8 bytes per message here (the spec caps an event at 64 KiB)."""

    name = "matrix"
    label = "Matrix"
    limit = 8000
    counter = "bytes"
    has_threads = False  # parts go as consecutive messages
    media_on_parts = True  # each part's images follow its text
    dedupes_by_key = True  # the same txnId from the same token returns the same event
    can_read_back = True  # our events carry their txnId back to us (unsigned.transaction_id)
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = MatrixSettings

    settings: MatrixSettings
    _room_id: str | None = None

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        url = f"{self.settings.homeserver}{path}"
        headers = {
            **kwargs.pop("headers", {}),
            "Authorization": f"Bearer {self.settings.access_token.get_secret_value()}",
        }
        return web.send(
            self.name,
            lambda: self.http.request(method, url, headers=headers, **kwargs),
            idempotent=idempotent,
            reason=_reason,
            body_wait=_retry_after_ms,
        )

    def _room(self) -> str:
        """Return the room's id, resolving an alias once per adapter."""
        if self._room_id is None:
            room = self.settings.room
            if room.startswith("#"):
                response = self._call(
                    "GET", f"{CLIENT}/directory/room/{quote(room, safe='')}", idempotent=True
                )
                room = web.parsed(
                    self.name, response, lambda b: web.text_of(b["room_id"]), idempotent=True
                )
            self._room_id = room
        return self._room_id

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Send each part as an m.text event, then its images as m.image events, in order."""
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        texts = [text_content(part, out.content_warning) for part in out.parts]
        for i, content in enumerate(texts):
            size = len(json.dumps(content, ensure_ascii=False).encode())
            if size > CONTENT_MAX_BYTES:
                raise PermanentError(
                    self.name,
                    f"part {i + 1} comes to {size} bytes as an event, over what a Matrix event "
                    f"holds ({EVENT_MAX_BYTES} bytes in all); nothing was sent: shorten it",
                )
        room = self._room()
        receipts: list[Receipt] = []
        for i, content in enumerate(texts):
            receipts.append(self._send(room, transaction_id(out, i), content))
            for n, (file, data) in enumerate(media[i], 1):
                uri = self._upload(file, data)
                image = image_content(file, data, uri)
                receipts.append(self._send(room, transaction_id(out, i, n), image))
        return receipts

    def _send(self, room: str, txn: str, content: dict[str, Any]) -> Receipt:
        response = self._call(
            "PUT",
            f"{CLIENT}/rooms/{quote(room, safe='')}/send/m.room.message/{quote(txn, safe='')}",
            idempotent=True,
            json=content,
        )
        event_id = web.parsed(
            self.name, response, lambda b: web.text_of(b["event_id"]), idempotent=True
        )
        return Receipt(event_id, event_url(room, event_id))

    def _upload(self, media: MediaFile, data: bytes) -> str:
        """Upload one file to the media repository; return its mxc:// URI.

        A file no event uses is no post, so a lost answer is retried, never read back.
        """
        response = self._call(
            "POST",
            "/_matrix/media/v3/upload",
            idempotent=True,
            params={"filename": media.path.name},
            content=data,
            headers={"Content-Type": media.mime},
        )
        return web.parsed(
            self.name, response, lambda b: web.text_of(b["content_uri"]), idempotent=True
        )

    def check(self) -> str:
        """Ask whoami, then whether that user has joined the room; say who and where."""
        response = self._call("GET", f"{CLIENT}/account/whoami", idempotent=True)
        user = web.parsed(self.name, response, lambda b: web.text_of(b["user_id"]), idempotent=True)
        room = self._room()
        response = self._call("GET", f"{CLIENT}/joined_rooms", idempotent=True)
        joined = web.parsed(
            self.name, response, lambda b: [str(r) for r in b["joined_rooms"]], idempotent=True
        )
        if room not in joined:
            raise PermanentError(
                self.name,
                f"{user} has not joined {self.settings.room}; join the room with this account "
                "(or invite it) before posting",
            )
        return f"{user} in {self.settings.room}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find this occurrence's events among the room's recent ones, by their txnIds.

        A homeserver shows the sending device an event's txnId (``unsigned.transaction_id``),
        so with the same access token every event we made is found by the txnId it was sent
        with. None unless all of them are there: publishing again under the same txnIds
        completes the post without sending any event twice.
        """
        room = self._room()
        wanted = {
            transaction_id(out, i, n): (i, n)
            for i, part_media in enumerate(out.media_of(p) for p in range(len(out.parts)))
            for n in range(len(part_media) + 1)
        }
        found: dict[str, str] = {}
        since_ms = ((out.since or out.created_at) - CLOCK_SKEW).timestamp() * 1000
        start: str | None = None
        for _page in range(READ_BACK_PAGES):
            params: dict[str, str] = {"dir": "b", "limit": "100"}
            if start:
                params["from"] = start
            response = self._call(
                "GET",
                f"{CLIENT}/rooms/{quote(room, safe='')}/messages",
                idempotent=True,
                params=params,
            )
            chunk, start = web.parsed(self.name, response, _page_of, idempotent=True)
            older = False
            for event in chunk:
                txn = (event.get("unsigned") or {}).get("transaction_id")
                if txn in wanted and isinstance(event.get("event_id"), str):
                    found[txn] = event["event_id"]
                if isinstance(event.get("origin_server_ts"), int | float):
                    older = older or event["origin_server_ts"] < since_ms
            if len(found) == len(wanted) or older or not start or not chunk:
                break
        if len(found) < len(wanted):
            return None
        first = found[transaction_id(out, 0)]
        return Receipt(first, event_url(room, first))


def _page_of(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    chunk = body["chunk"]
    if not isinstance(chunk, list):
        raise TypeError("expected a list of events")
    end = body.get("end")
    return [e for e in chunk if isinstance(e, dict)], end if isinstance(end, str) else None
