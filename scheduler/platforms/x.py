"""X (Twitter): API v2 posts with OAuth 1.0a user context.

Every request is signed by oauthlib (HMAC-SHA1). A JSON or multipart body is not
part of an OAuth 1.0a signature (RFC 5849 3.4.1.3: only a form-encoded body is),
so requests are signed over method, URL and query alone, then sent with their body.

X does not deduplicate by key: a post whose answer was lost is uncertain and is
read back (``GET /2/users/:id/tweets``) before anything is sent again. A thread
keeps the ids of the parts already posted in its row, so a retry after a 429 on
part 3 resumes at part 3 instead of posting parts 1 and 2 again.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlencode

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

ALT_TEXT_LIMIT = 1000  # /2/media/metadata: alt_text.text, at most 1,000 characters
MEDIA_PER_POST = 4
CLOCK_SKEW = timedelta(seconds=60)
_URL = re.compile(r"https?://\S+")
Method = Literal["GET", "POST"]


class XSettings(AccountSettings):
    """An X account: the app's key and secret and the user's access token and secret."""

    api: Url = "https://api.x.com"
    api_key: Secret
    api_secret: Secret
    access_token: Secret
    access_token_secret: Secret


def _reason(response: httpx.Response) -> str:
    """Return X's own words: v2's ``detail`` (or ``title``), or v1.1's ``errors[0].message``."""
    body = web.json_or_none(response)
    if isinstance(body, dict):
        for key in ("detail", "title"):
            if isinstance(body.get(key), str) and body[key]:
                words = str(body[key])
                if "duplicate" in words.lower():
                    return f"{words} (X refuses a post identical to a recent one; not retried)"
                return words
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message") or errors[0].get("detail")
            if isinstance(message, str):
                return message
    return web.short_body(response)


def _data(body: Any) -> dict[str, Any]:
    data = body["data"]
    if not isinstance(data, dict):
        raise TypeError("expected a data object")
    return data


def _id(body: Any) -> str:
    return web.text_of(_data(body)["id"])


def _tweets(body: Any) -> list[dict[str, Any]]:
    data = body.get("data", [])  # no data at all: no posts in the window
    if not isinstance(data, list):
        raise TypeError("expected a list of posts")
    return [t for t in data if isinstance(t, dict)]


def comparable(text: str) -> str:
    """Return a post's text as X gives it back: URLs as t.co links, ``&`` as ``&amp;``, undone."""
    return " ".join(_URL.sub("URL", html.unescape(text)).split())


def post_url(tweet_id: str) -> str:
    """Return a post's public URL (X redirects /i/web/status/ID to the author's own path)."""
    return f"https://x.com/i/web/status/{tweet_id}"


class X(Platform):
    """X counts twitter-text's weighted length: 280, URLs as 23, CJK and emoji as 2."""

    name = "x"
    label = "X"
    limit = 280
    counter = "x"
    media_on_parts = True
    max_media = 4
    max_alt = ALT_TEXT_LIMIT
    can_read_back = True
    secret_fields: ClassVar[tuple[str, ...]] = (
        "api_key",
        "api_secret",
        "access_token",
        "access_token_secret",
    )
    settings_model = XSettings

    settings: XSettings

    def _signed(self, method: Method, url: str) -> dict[str, str]:
        """Return the Authorization header of a request, signed over method and URL only."""
        from oauthlib.oauth1 import Client

        s = self.settings
        client = Client(
            s.api_key.get_secret_value(),
            client_secret=s.api_secret.get_secret_value(),
            resource_owner_key=s.access_token.get_secret_value(),
            resource_owner_secret=s.access_token_secret.get_secret_value(),
        )
        _uri, headers, _body = client.sign(url, http_method=method)
        return {"Authorization": str(headers["Authorization"])}

    def _call(
        self,
        method: Method,
        path: str,
        *,
        idempotent: bool,
        params: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        url = f"{self.settings.api}{path}"
        if params:
            url = f"{url}?{urlencode(params)}"  # the query is signed: it goes in the URL as signed
        return web.send(
            self.name,
            lambda: self.http.request(method, url, headers=self._signed(method, url), **kwargs),
            idempotent=idempotent,
            reason=_reason,
            wait_headers=("x-rate-limit-reset", "Retry-After"),
        )

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post each part, replying to the one before; resume after the parts already posted."""
        for i in range(len(out.parts)):
            media = out.media_of(i)
            if len(media) > MEDIA_PER_POST:
                raise PermanentError(
                    self.name,
                    f"part {i + 1} has {len(media)} images; X takes at most {MEDIA_PER_POST}",
                )
            for m in media:
                if len(m.alt) > ALT_TEXT_LIMIT:
                    raise PermanentError(
                        self.name,
                        f"the alt text of {m.name} has {len(m.alt)} characters; X takes at most "
                        f"{ALT_TEXT_LIMIT}; nothing was sent",
                    )
        files = out.read_media(self.name)  # every file first: a bad one sends nothing
        posted = list(out.progress[: len(out.parts)])
        for i in range(len(posted), len(out.parts)):
            body: dict[str, Any] = {"text": out.parts[i]}
            if posted:
                body["reply"] = {"in_reply_to_tweet_id": posted[-1]}
            if files[i]:
                body["media"] = {"media_ids": [self._upload(m, content) for m, content in files[i]]}
            response = self._call("POST", "/2/tweets", idempotent=False, json=body)
            posted.append(web.parsed(self.name, response, _id, idempotent=False))
            if i + 1 < len(out.parts):
                out.checkpoint(tuple(posted))  # a retry resumes after this part
        return [Receipt(tweet_id, post_url(tweet_id)) for tweet_id in posted]

    def _upload(self, media: MediaFile, content: bytes) -> str:
        """Upload one image (v2 one-shot upload) and set its alt text.

        Media no post uses is no post (X discards it after a day), so a lost
        answer here is retried, never read back.
        """
        response = self._call(
            "POST",
            "/2/media/upload",
            idempotent=True,
            files={"media": (media.path.name, content, media.mime)},
            data={"media_category": "tweet_image", "media_type": media.mime},
        )
        media_id = web.parsed(self.name, response, _id, idempotent=True)
        self._call(
            "POST",
            "/2/media/metadata",
            idempotent=True,
            json={"id": media_id, "metadata": {"alt_text": {"text": media.alt}}},
        )
        return media_id

    def _me(self) -> dict[str, Any]:
        response = self._call("GET", "/2/users/me", idempotent=True)
        return web.parsed(self.name, response, _data, idempotent=True)

    def check(self) -> str:
        """Verify the four secrets with GET /2/users/me; return @username."""
        return f"@{self._me().get('username')}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find the part whose answer was lost among the account's posts since its row was made.

        The parts kept in the row were posted; the one after them is looked for.
        Found, the row is sent (a thread's later parts, if any, are not posted:
        never a second copy); not found, a retry resumes at that part.
        """
        done = out.progress[: len(out.parts)]
        if len(done) == len(out.parts):
            return Receipt(done[0], post_url(done[0]))
        me = self._me()
        since = ((out.since or out.created_at) - CLOCK_SKEW).astimezone(UTC)
        response = self._call(
            "GET",
            f"/2/users/{web.text_of(me.get('id'))}/tweets",
            idempotent=True,
            params={
                "max_results": "20",
                "start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "tweet.fields": "created_at",
            },
        )
        want = comparable(out.parts[len(done)])
        for tweet in web.parsed(self.name, response, _tweets, idempotent=True):
            if comparable(str(tweet.get("text", ""))) != want:
                continue
            made = _created(tweet)
            if made is None or made >= since:
                first = done[0] if done else web.text_of(tweet.get("id"))
                return Receipt(first, post_url(first))
        return None


def _created(tweet: dict[str, Any]) -> datetime | None:
    try:
        made = datetime.fromisoformat(str(tweet.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return made if made.tzinfo is not None else made.replace(tzinfo=UTC)
