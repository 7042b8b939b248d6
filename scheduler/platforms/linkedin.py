"""LinkedIn: posts by a person or an organization through the Posts API (``/rest/posts``).

Every request carries ``LinkedIn-Version`` (pinned once, LINKEDIN_VERSION) and
``X-Restli-Protocol-Version: 2.0.0``. ``commentary`` is in LinkedIn's "little
text" format, where ``| { } @ [ ] ( ) < > # * _ ~ \\`` are markup: each is
escaped with a backslash (LinkedIn otherwise cuts the post at the first one,
silently), except the ``#`` that starts a hashtag, so hashtags stay hashtags.

Images: ``/rest/images?action=initializeUpload``, a PUT of the bytes to the
upload URL it hands out, then ``content.media`` (several: ``content.multiImage``)
with ``altText``. The link card is ``content.article`` (LinkedIn shows one or
the other). The post's id (``urn:li:share:…``) comes in the ``x-restli-id``
header. LinkedIn has no threads: the parts after the first are comments on it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from scheduler.errors import UncertainError
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

LINKEDIN_VERSION = "202506"  # the one place the Marketing API version (YYYYMM) is pinned
RESERVED = "|{}@[]()<>#*_~\\"
CLOCK_SKEW = timedelta(seconds=60)
_HASHTAG = re.compile(r"(?<![\w#])#(?=[^\W_])")  # a '#' LinkedIn reads as a hashtag's start
_UNESCAPE = re.compile(r"\\(.)", re.S)


class LinkedInSettings(AccountSettings):
    """The author (``urn:li:person:…`` or ``urn:li:organization:…``) and a token."""

    api: Url = "https://api.linkedin.com"
    author: str
    access_token: Secret


def little(text: str) -> str:
    """Escape a text for LinkedIn's little text format, keeping hashtags as hashtags.

    A hashtag is ``#`` then letters or digits; a ``_`` inside one is escaped like
    any other (the hashtag then ends there, as LinkedIn's own composer does).
    """
    keep = {m.start() for m in _HASHTAG.finditer(text)}
    return "".join(f"\\{c}" if c in RESERVED and i not in keep else c for i, c in enumerate(text))


def plain(commentary: str) -> str:
    """Undo little's escapes (for read-back matching)."""
    return _UNESCAPE.sub(r"\1", commentary)


def post_url(urn: str) -> str:
    """Return a post's public URL from its URN."""
    return f"https://www.linkedin.com/feed/update/{urn}/"


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        code = body.get("code") or body.get("serviceErrorCode")
        return f"{body['message']} [{code}]" if code else str(body["message"])
    return web.short_body(response)


def _upload(body: Any) -> tuple[str, str]:
    value = body["value"]
    return web.text_of(value["uploadUrl"]), web.text_of(value["image"])


def _elements(body: Any) -> list[dict[str, Any]]:
    found = body["elements"]
    if not isinstance(found, list):
        raise TypeError("expected a list of posts")
    return [p for p in found if isinstance(p, dict)]


class LinkedIn(Platform):
    """A LinkedIn post's commentary may hold 3,000 characters."""

    name = "linkedin"
    label = "LinkedIn"
    limit = 3000
    counter = "codepoints"
    has_threads = False  # the parts after the first go as comments on the post
    can_read_back = True
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = LinkedInSettings

    settings: LinkedInSettings

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.settings.access_token.get_secret_value()}",
            "LinkedIn-Version": LINKEDIN_VERSION,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.settings.api}{path}"
        every = {**self._headers(), **(headers or {})}
        return web.send(
            self.name,
            lambda: self.http.request(method, url, headers=every, **kwargs),
            idempotent=idempotent,
            reason=_reason,
        )

    def _created(self, response: httpx.Response) -> str:
        """Return the URN in ``x-restli-id``: without it the outcome cannot be told."""
        urn = str(
            response.headers.get("x-restli-id") or response.headers.get("x-linkedin-id") or ""
        )
        if not urn:
            raise UncertainError(
                self.name,
                f"the answer could not be read after the request went out (HTTP "
                f"{response.status_code}): it named no post id (x-restli-id)",
                status=response.status_code,
            )
        return urn

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post the first part (with its images or link card); each later part as a comment."""
        out.refuse_part_media(self.name, self.label)
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        posted = list(out.progress[: len(out.parts)])
        if not posted:
            body: dict[str, Any] = {
                "author": self.settings.author,
                "commentary": little(out.parts[0]),
                "visibility": "PUBLIC",
                "distribution": {
                    "feedDistribution": "MAIN_FEED",
                    "targetEntities": [],
                    "thirdPartyDistributionChannels": [],
                },
                "lifecycleState": "PUBLISHED",
                "isReshareDisabledByAuthor": False,
            }
            images = [{"id": self._image(m, content), "altText": m.alt} for m, content in media[0]]
            if len(images) == 1:
                body["content"] = {"media": images[0]}
            elif images:
                body["content"] = {"multiImage": {"images": images}}
            elif out.card is not None and out.link_preview:
                article = {"source": out.card.url, "title": out.card.title}
                if out.card.description:
                    article["description"] = out.card.description
                body["content"] = {"article": article}
            response = self._call("POST", "/rest/posts", idempotent=False, json=body)
            posted.append(self._created(response))
            if len(out.parts) > 1:
                out.checkpoint(tuple(posted))
        for i in range(len(posted), len(out.parts)):
            response = self._call(
                "POST",
                f"/rest/socialActions/{quote(posted[0], safe='')}/comments",
                idempotent=False,
                json={
                    "actor": self.settings.author,
                    "object": posted[0],
                    "message": {"text": little(out.parts[i])},
                },
            )
            posted.append(self._comment(response))
            if i + 1 < len(out.parts):
                out.checkpoint(tuple(posted))
        return [Receipt(posted[0], post_url(posted[0]))] + [
            Receipt(c, post_url(posted[0])) for c in posted[1:]
        ]

    def _comment(self, response: httpx.Response) -> str:
        found = str(response.headers.get("x-restli-id") or "")
        if found:
            return found
        return web.parsed(
            self.name, response, lambda b: web.text_of(b.get("$URN") or b["id"]), idempotent=False
        )

    def _image(self, media: MediaFile, content: bytes) -> str:
        """Register an upload, PUT the bytes; return the image URN (unused, it is no post)."""
        response = self._call(
            "POST",
            "/rest/images",
            idempotent=True,
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": self.settings.author}},
        )
        upload_url, urn = web.parsed(self.name, response, _upload, idempotent=True)
        self._call(
            "PUT",
            upload_url,
            idempotent=True,
            content=content,
            headers={"Content-Type": media.mime},
        )
        return urn

    def check(self) -> str:
        """Verify the token: read the organization (or, for a person, the member's userinfo)."""
        kind, _, number = self.settings.author.removeprefix("urn:li:").partition(":")
        if kind == "organization":
            response = self._call("GET", f"/rest/organizations/{number}", idempotent=True)
            body = web.parsed(self.name, response, dict, idempotent=True)
            return f"organization {body.get('localizedName') or number}"
        response = self._call("GET", "/v2/userinfo", idempotent=True)
        body = web.parsed(self.name, response, dict, idempotent=True)
        return f"member {body.get('name') or self.settings.author}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find this occurrence's post among the author's recent posts, made after its row."""
        if out.progress:
            return Receipt(out.progress[0], post_url(out.progress[0]))
        response = self._call(
            "GET",
            "/rest/posts",
            idempotent=True,
            params={
                "author": self.settings.author,
                "q": "author",
                "count": "20",
                "sortBy": "LAST_MODIFIED",
            },
            headers={"X-RestLi-Method": "FINDER"},
        )
        since = (out.since or out.created_at) - CLOCK_SKEW
        want = " ".join(out.parts[0].split())
        for post in web.parsed(self.name, response, _elements, idempotent=True):
            if " ".join(plain(str(post.get("commentary", ""))).split()) != want:
                continue
            made = post.get("createdAt") or post.get("publishedAt")
            if not isinstance(made, int) or datetime.fromtimestamp(made / 1000, UTC) >= since:
                urn = web.text_of(post.get("id"))
                return Receipt(urn, post_url(urn))
        return None
