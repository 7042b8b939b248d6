"""Mastodon (and compatible servers): statuses through the instance's REST API."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from scheduler.errors import RetryableError
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

MEDIA_POLLS = 30  # how many times to ask whether an upload is processed
MEDIA_POLL_SECONDS = 1.0
CLOCK_SKEW = timedelta(seconds=60)  # the instance's clock may be behind ours by this much


class MastodonSettings(AccountSettings):
    """An account on a Mastodon instance."""

    instance: Url = "https://mastodon.social"
    access_token: Secret
    visibility: Literal["public", "unlisted", "private", "direct"] = "public"

    url_key = "instance"


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return web.short_body(response)


def html_to_text(content: str) -> str:
    """Turn a status's HTML back into the text that was posted (for read-back matching)."""
    text = re.sub(r"</p>\s*<p>", "\n\n", content)
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip()


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _receipt(body: Any) -> Receipt:
    url = body.get("url") or body.get("uri")
    return Receipt(web.text_of(body["id"]), url if isinstance(url, str) else None)


def _media(body: Any) -> tuple[str, bool]:
    return web.text_of(body["id"]), body.get("url") is not None


def _account(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError("expected an account")
    return body


def _statuses(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise TypeError("expected a list of statuses")
    return [s for s in body if isinstance(s, dict)]


def _created(status: dict[str, Any]) -> datetime | None:
    try:
        made = datetime.fromisoformat(str(status.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return made if made.tzinfo is not None else made.replace(tzinfo=UTC)


class Mastodon(Platform):
    """Mastodon counts graphemes, URLs as 23 and remote mentions by their local part."""

    name = "mastodon"
    label = "Mastodon"
    limit = 500
    counter = "mastodon"
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = MastodonSettings
    dedupes_by_key = True  # Idempotency-Key: the same key within an hour returns the same status
    can_read_back = True
    media_on_parts = True

    settings: MastodonSettings

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _call(self, method: str, path: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        url = f"{self.settings.instance}{path}"
        return web.send(
            self.name,
            lambda: self.http.request(method, url, **kwargs),
            idempotent=idempotent,
            reason=_reason,
            wait_headers=("X-RateLimit-Reset", "Retry-After"),
        )

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post each part as a status, replying to the one before, with Idempotency-Key."""
        media = out.read_media(self.name)  # every file first: a bad one sends nothing
        receipts: list[Receipt] = []
        for i, part in enumerate(out.parts):
            data: dict[str, Any] = {
                "status": part,
                "visibility": out.visibility or self.settings.visibility,
            }
            if out.language:
                data["language"] = out.language
            if out.content_warning:
                data["spoiler_text"] = out.content_warning
            if receipts:
                data["in_reply_to_id"] = receipts[-1].remote_id
            if media[i]:
                data["media_ids"] = [self._upload(m, content) for m, content in media[i]]
            response = self._call(
                "POST",
                "/api/v1/statuses",
                idempotent=True,
                json=data,
                headers=self._headers(out.idempotency_key(i)),
            )
            receipts.append(web.parsed(self.name, response, _receipt, idempotent=True))
        return receipts

    def _upload(self, media: MediaFile, content: bytes) -> str:
        """Upload one image with its alt text; wait while the instance processes it.

        An upload no status uses is no post (the instance deletes it), so a lost
        answer is retried, never read back.
        """
        response = self._call(
            "POST",
            "/api/v2/media",
            idempotent=True,
            files={"file": (media.path.name, content, media.mime)},
            data={"description": media.alt},
            headers=self._headers(),
        )
        media_id, ready = web.parsed(self.name, response, _media, idempotent=True)
        polls = 0
        while response.status_code in (202, 206) or not ready:
            polls += 1
            if polls > MEDIA_POLLS:
                raise RetryableError(
                    self.name, f"the instance is still processing {media.path.name}"
                )
            self.pause(MEDIA_POLL_SECONDS)
            response = self._call(
                "GET", f"/api/v1/media/{media_id}", idempotent=True, headers=self._headers()
            )
            media_id, ready = web.parsed(self.name, response, _media, idempotent=True)
        return media_id

    def _me(self) -> dict[str, Any]:
        response = self._call(
            "GET", "/api/v1/accounts/verify_credentials", idempotent=True, headers=self._headers()
        )
        return web.parsed(self.name, response, _account, idempotent=True)

    def check(self) -> str:
        """Verify the token with verify_credentials; return @user@instance."""
        me = self._me()
        host = urlsplit(self.settings.instance).hostname
        return f"@{me.get('acct') or me.get('username')}@{host}"

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find this occurrence's status: the first part's text, created after its row was.

        Text alone is no proof (a weekly post with a fixed text matches last week's);
        a status made before the occurrence's row existed cannot be this one. Within
        the hour a retry needs no read-back at all: the Idempotency-Key settles it.
        """
        me = self._me()
        response = self._call(
            "GET",
            f"/api/v1/accounts/{web.text_of(me.get('id'))}/statuses",
            idempotent=True,
            params={"limit": 40},
            headers=self._headers(),
        )
        statuses = web.parsed(self.name, response, _statuses, idempotent=True)
        since = (out.since or out.created_at) - CLOCK_SKEW
        for status in statuses:
            if not _same(html_to_text(str(status.get("content", ""))), out.parts[0]):
                continue
            made = _created(status)
            if made is not None and made >= since:
                return _receipt(status)
        return None

    def live_limit(self) -> int | None:
        """Read the instance's own limit (configuration.statuses.max_characters)."""
        response = self._call("GET", "/api/v2/instance", idempotent=True)
        body = web.json_or_none(response)
        try:
            value = body["configuration"]["statuses"]["max_characters"]
        except (TypeError, KeyError):
            return None
        return int(value) if isinstance(value, int) and value > 0 else None
