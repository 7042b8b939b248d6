"""Threads (Meta): a container (``POST /{user-id}/threads``), then ``threads_publish``.

A container is nothing public until it is published, and it expires unused. Its
id is kept in the row (``Outgoing.checkpoint``) before it is published, so a
retry publishes the same container, which Threads refuses to publish twice:
never a second post. A retry first asks the container's status: ``PUBLISHED``
means the post exists (found by reading the profile's posts back), anything
else that is still usable is published again. Where the row cannot keep the id
(no ``keep``), a lost answer to ``threads_publish`` is uncertain.

Replies chain by ``reply_to_id``; images come only from a public URL (Threads
fetches them itself, ``image_url``) with ``alt_text``; the link card is
``link_attachment`` on a text post. Text is at most 500 characters with emoji
counted as their UTF-8 bytes (``text.threads_length``), with at most 5 links.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from scheduler.errors import PermanentError, PlatformError, RetryableError, UncertainError
from scheduler.platforms import graph
from scheduler.platforms import http as web
from scheduler.platforms.base import AccountSettings, Outgoing, Platform, Receipt, Secret, Url
from scheduler.platforms.facebook import created, same_text

if TYPE_CHECKING:
    import httpx

THREADS_VERSION = "v1.0"  # the one place the Threads API version is pinned
LINKS_PER_POST = 5
STATUS_POLLS = 10  # how many times to ask whether an image container is ready
STATUS_POLL_SECONDS = 3.0
POSTS_PER_DAY = 250  # per profile in 24 hours (the publishing limit)
CLOCK_SKEW = timedelta(seconds=60)
_LINK = re.compile(r"https?://\S+")


class ThreadsSettings(AccountSettings):
    """A Threads user id and its access token."""

    api: Url = "https://graph.threads.net"
    user_id: str | int
    access_token: Secret


def _id(body: Any) -> str:
    return web.text_of(body["id"])


def _posts(body: Any) -> list[dict[str, Any]]:
    data = body["data"]
    if not isinstance(data, list):
        raise TypeError("expected a list of posts")
    return [p for p in data if isinstance(p, dict)]


def links(text: str) -> int:
    """Count the links in a text as Threads limits them."""
    return len(_LINK.findall(text))


class Threads(Platform):
    """Threads allows 500 characters per post, emoji counted as their UTF-8 bytes."""

    name = "threads"
    label = "Threads"
    limit = 500
    counter = "threads"
    media_on_parts = True
    media_by_url = True
    max_media = 20
    posts_per_day = POSTS_PER_DAY
    can_read_back = True
    # the key is the container: kept in the row before it is published, and Threads
    # refuses to publish one container twice, so a retry never makes a second post
    dedupes_by_key = True
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = ThreadsSettings

    settings: ThreadsSettings

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        url = f"{self.settings.api}/{THREADS_VERSION}{path}"
        token = self.settings.access_token.get_secret_value()
        return graph.call(
            self.http,
            self.name,
            url,
            token,
            "access_token",
            method,
            idempotent=idempotent,
            **kwargs,
        )

    @property
    def _user(self) -> str:
        return str(self.settings.user_id)

    def _refuse(self, out: Outgoing) -> None:
        """Raise before any request for what Threads would refuse or we could not send."""
        for i, part in enumerate(out.parts):
            card = 1 if i == 0 and out.card is not None and out.card.url not in part else 0
            if links(part) + card > LINKS_PER_POST:
                raise PermanentError(
                    self.name,
                    f"part {i + 1} has {links(part) + card} links; Threads takes at most "
                    f"{LINKS_PER_POST}; nothing was sent",
                )
            for m in out.media_of(i):
                if not m.url:
                    raise PermanentError(
                        self.name,
                        f"Threads takes images only from a public URL, and {m.name} has none: "
                        "give the media entry a `url:`; nothing was sent",
                    )

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Create and publish each part's container, each replying to the part before."""
        self._refuse(out)
        marks = list(out.progress[: len(out.parts)])
        posted: list[str] = []
        for i in range(len(out.parts)):
            mark = marks[i] if i < len(marks) else ""
            if mark.startswith("p:"):
                posted.append(mark[2:])
                continue
            container = mark[2:] if mark.startswith("c:") else None
            post_id = None
            if container is not None:  # kept by an earlier try: published, or still usable?
                status = self._status(container)
                if status == "PUBLISHED":
                    post_id = self._published(container, out, i)
                elif status == "IN_PROGRESS":
                    self._wait_ready(container)
                elif status != "FINISHED":
                    container = None  # EXPIRED or ERROR: a new container is made
            if post_id is None:
                kept = True
                if container is None:
                    container = self._container(out, i, posted[-1] if posted else None)
                    marks[i:] = [f"c:{container}"]
                    kept = out.checkpoint(tuple(marks))
                response = self._call(
                    "POST",
                    f"/{self._user}/threads_publish",
                    idempotent=kept,  # the same container again is refused, never a second post
                    data={"creation_id": container},
                )
                post_id = web.parsed(self.name, response, _id, idempotent=kept)
            posted.append(post_id)
            marks[i:] = [f"p:{post_id}"]
            out.checkpoint(tuple(marks))
        return [Receipt(post_id, self._permalink(post_id)) for post_id in posted]

    def _container(self, out: Outgoing, i: int, reply_to: str | None) -> str:
        """Create one part's container (a carousel's items first); an unused one is no post."""
        images = out.media_of(i)
        data: dict[str, str] = {"text": out.parts[i]}
        if reply_to:
            data["reply_to_id"] = reply_to
        if len(images) == 1:
            data.update(media_type="IMAGE", image_url=str(images[0].url), alt_text=images[0].alt)
        elif images:
            items = [
                self._create(
                    {
                        "media_type": "IMAGE",
                        "image_url": str(m.url),
                        "alt_text": m.alt,
                        "is_carousel_item": "true",
                    }
                )
                for m in images
            ]
            data.update(media_type="CAROUSEL", children=",".join(items))
        else:
            data["media_type"] = "TEXT"
            if i == 0 and out.card is not None and out.link_preview:
                data["link_attachment"] = out.card.url
        container = self._create(data)
        if images:
            self._wait_ready(container)
        return container

    def _create(self, data: dict[str, str]) -> str:
        response = self._call("POST", f"/{self._user}/threads", idempotent=True, data=data)
        return web.parsed(self.name, response, _id, idempotent=True)

    def _status(self, container: str) -> str:
        response = self._call(
            "GET", f"/{container}", idempotent=True, params={"fields": "id,status,error_message"}
        )
        return str(web.parsed(self.name, response, lambda b: b["status"], idempotent=True))

    def _wait_ready(self, container: str) -> None:
        """Wait while Threads fetches and processes an image container."""
        for _ in range(STATUS_POLLS):
            if self._status(container) != "IN_PROGRESS":
                return
            self.pause(STATUS_POLL_SECONDS)
        raise RetryableError(self.name, "Threads is still processing the image")

    def _published(self, container: str, out: Outgoing, i: int) -> str:
        """Return the post a kept container became, found among the profile's recent posts."""
        found = self._find(out.parts[i], out)
        if found is None:
            raise UncertainError(
                self.name,
                f"container {container} was published, but the post is not among the "
                "profile's recent ones; check the profile and resolve this row",
            )
        return found

    def _find(self, text: str, out: Outgoing) -> str | None:
        response = self._call(
            "GET",
            f"/{self._user}/threads",
            idempotent=True,
            params={"fields": "id,text,timestamp", "limit": "25"},
        )
        since = (out.since or out.created_at) - CLOCK_SKEW
        for post in web.parsed(self.name, response, _posts, idempotent=True):
            if same_text(str(post.get("text", "")), text):
                made = created(post.get("timestamp"))
                if made is None or made >= since:
                    return web.text_of(post.get("id"))
        return None

    def _permalink(self, post_id: str) -> str | None:
        """Ask for a post's public URL (Threads' URLs are not built from its id)."""
        try:
            response = self._call(
                "GET", f"/{post_id}", idempotent=True, params={"fields": "permalink"}
            )
            return str(web.parsed(self.name, response, lambda b: b["permalink"], idempotent=True))
        except PlatformError:  # the post exists; only its link is unknown
            return None

    def check(self) -> str:
        """Verify the token with GET /me; return @username."""
        response = self._call("GET", "/me", idempotent=True, params={"fields": "id,username"})
        body = web.parsed(self.name, response, dict, idempotent=True)
        return f"@{body.get('username')}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find the first part not known to be posted among the profile's recent posts."""
        done = [m[2:] for m in out.progress if m.startswith("p:")]
        if len(done) >= len(out.parts):
            return Receipt(done[0], None)
        found = self._find(out.parts[len(done)], out)
        if found is None:
            return None
        first = done[0] if done else found
        return Receipt(first, self._permalink(first))
