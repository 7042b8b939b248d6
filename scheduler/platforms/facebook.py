"""Facebook: posts to a Page through the Graph API (one pinned version, GRAPH_VERSION).

A post is ``POST /{page-id}/feed`` with ``message`` and ``link`` (the link card).
Images go first to ``/{page-id}/photos`` unpublished, each with its alt text
(``alt_text_custom``), and are attached to the feed post (``attached_media``);
Facebook shows no link card on a post with photos, so the link stays in the text.
A Page has no threads: the parts after the first are comments on the post, and
the ids of what was posted are kept in the row so a retry never posts them twice.

Facebook does not deduplicate by key: a post whose answer was lost is read back
from ``/{page-id}/published_posts``. Errors are classified by their Graph codes
(scheduler.platforms.graph).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from scheduler.platforms import graph
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

GRAPH_VERSION = "v23.0"  # the one place the Graph API version is pinned
CLOCK_SKEW = timedelta(seconds=60)


class FacebookSettings(AccountSettings):
    """A Facebook Page and a Page access token."""

    api: Url = "https://graph.facebook.com"
    page_id: str | int
    page_access_token: Secret


def _id(body: Any) -> str:
    return web.text_of(body["id"])


def _posts(body: Any) -> list[dict[str, Any]]:
    data = body["data"]
    if not isinstance(data, list):
        raise TypeError("expected a list of posts")
    return [p for p in data if isinstance(p, dict)]


def post_url(post_id: str) -> str:
    """Return a Page post's public URL (``PAGEID_POSTID`` works as a path)."""
    return f"https://www.facebook.com/{post_id}"


def same_text(a: str, b: str) -> bool:
    """Say whether two texts are the same post's, white space aside."""
    return " ".join(a.split()) == " ".join(b.split())


def created(value: Any) -> datetime | None:
    """Read a Graph time (``2026-07-01T09:00:00+0000``)."""
    try:
        made = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return made if made.tzinfo is not None else made.replace(tzinfo=UTC)


class Facebook(Platform):
    """A Page post may hold 63,206 characters."""

    name = "facebook"
    label = "Facebook"
    limit = 63206
    counter = "codepoints"
    has_threads = False  # the parts after the first go as comments on the post
    can_read_back = True
    secret_fields: ClassVar[tuple[str, ...]] = ("page_access_token",)
    settings_model = FacebookSettings

    settings: FacebookSettings

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        url = f"{self.settings.api}/{GRAPH_VERSION}{path}"
        token = self.settings.page_access_token.get_secret_value()
        return graph.call(
            self.http,
            self.name,
            url,
            token,
            "page_access_token",
            method,
            idempotent=idempotent,
            **kwargs,
        )

    @property
    def _page(self) -> str:
        return str(self.settings.page_id)

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post the first part to the Page's feed; each later part as a comment on it."""
        out.refuse_part_media(self.name, self.label)
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        posted = list(out.progress[: len(out.parts)])
        if not posted:
            data: dict[str, str] = {"message": out.parts[0]}
            photos = [self._photo(m, content) for m, content in media[0]]
            for i, photo in enumerate(photos):
                data[f"attached_media[{i}]"] = json.dumps({"media_fbid": photo})
            if out.card is not None and not photos and out.link_preview:
                data["link"] = out.card.url
            response = self._call("POST", f"/{self._page}/feed", idempotent=False, data=data)
            posted.append(web.parsed(self.name, response, _id, idempotent=False))
            if len(out.parts) > 1:
                out.checkpoint(tuple(posted))
        for i in range(len(posted), len(out.parts)):
            response = self._call(
                "POST",
                f"/{posted[0]}/comments",
                idempotent=False,
                data={"message": out.parts[i]},
            )
            posted.append(web.parsed(self.name, response, _id, idempotent=False))
            if i + 1 < len(out.parts):
                out.checkpoint(tuple(posted))
        return [Receipt(posted[0], post_url(posted[0]))] + [
            Receipt(comment, f"{post_url(posted[0])}?comment_id={comment.rsplit('_', 1)[-1]}")
            for comment in posted[1:]
        ]

    def _photo(self, media: MediaFile, content: bytes) -> str:
        """Upload one photo unpublished, with its alt text; return its id.

        An unpublished photo is no post, so a lost answer here is retried.
        """
        response = self._call(
            "POST",
            f"/{self._page}/photos",
            idempotent=True,
            files={"source": (media.path.name, content, media.mime)},
            data={"published": "false", "alt_text_custom": media.alt},
        )
        return web.parsed(self.name, response, _id, idempotent=True)

    def check(self) -> str:
        """Verify the Page token by reading the Page's name."""
        response = self._call(
            "GET", f"/{self._page}", idempotent=True, params={"fields": "id,name"}
        )
        body = web.parsed(self.name, response, dict, idempotent=True)
        return f"Page {body.get('name') or self._page}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find this occurrence's post among the Page's recent ones, made after its row."""
        if out.progress:
            return Receipt(out.progress[0], post_url(out.progress[0]))
        response = self._call(
            "GET",
            f"/{self._page}/published_posts",
            idempotent=True,
            params={"fields": "id,message,created_time", "limit": "25"},
        )
        since = (out.since or out.created_at) - CLOCK_SKEW
        for post in web.parsed(self.name, response, _posts, idempotent=True):
            if not same_text(str(post.get("message", "")), out.parts[0]):
                continue
            made = created(post.get("created_time"))
            if made is None or made >= since:
                post_id = web.text_of(post.get("id"))
                return Receipt(post_id, post_url(post_id))
        return None
