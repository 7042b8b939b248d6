"""Discord: a channel webhook."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from scheduler.errors import PermanentError
from scheduler.platforms import http as web
from scheduler.platforms.base import AccountSettings, Outgoing, Platform, Receipt, Secret

if TYPE_CHECKING:
    import httpx


class DiscordSettings(AccountSettings):
    """A Discord webhook; its URL carries both the base URL and the secret."""

    webhook_url: Secret

    def base_url(self) -> str:
        return self.webhook_url.get_secret_value().split("/api/", 1)[0]


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        if response.status_code == 404:
            return (
                f"{body['message']}: the webhook was deleted; make a new one and update the secret"
            )
        return str(body["message"])
    return web.short_body(response)


def _retry_after(response: httpx.Response) -> float | None:
    """Read Discord's wait: the Retry-After header (seconds), else the body's retry_after.

    The body's value is in seconds on versioned URLs (/api/v10/...) but in
    milliseconds on the unversioned URL Discord hands out for webhooks, so the
    header wins, and a body value is read by the URL's version.
    """
    header = web.parse_wait(response.headers.get("Retry-After"))
    if header is not None:
        return header
    body = web.json_or_none(response)
    try:
        value = float(body["retry_after"])
    except (TypeError, KeyError, ValueError):
        return None
    versioned = "/api/v" in str(response.request.url) if response.request else False
    return value if versioned else value / 1000


def _receipt(body: Any) -> Receipt:
    message = web.text_of(body["id"])
    guild = body.get("guild_id")
    url = (
        f"https://discord.com/channels/{guild}/{body.get('channel_id')}/{message}"
        if guild
        else None
    )
    return Receipt(message, url)


class Discord(Platform):
    """Discord counts code points: 2000 per message."""

    name = "discord"
    label = "Discord"
    limit = 2000
    counter = "codepoints"
    has_threads = False
    max_media = 10
    max_alt = 1024
    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)
    settings_model = DiscordSettings

    settings: DiscordSettings

    def _call(self, method: str, **kwargs: Any) -> httpx.Response:
        url = self.settings.webhook_url.get_secret_value()
        return web.send(
            self.name,
            lambda: self.http.request(method, url, **kwargs),
            idempotent=False,
            reason=_reason,
            body_wait=_retry_after,
        )

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post each part as a message, with ?wait=true so that its id comes back.

        The first part's images go with it as attachments, each with its alt
        text as the attachment's ``description`` (at most 10, as Discord allows).
        """
        out.refuse_part_media(self.name, self.label)
        media = out.read_media(self.name)[0] if out.parts else []
        if len(media) > 10:
            raise PermanentError(self.name, "a message takes at most 10 images; nothing was sent")
        receipts = []
        for i, part in enumerate(out.parts):
            payload: dict[str, Any] = {"content": part, "allowed_mentions": {"parse": []}}
            if i == 0 and media:
                payload["attachments"] = [
                    {"id": k, "filename": m.path.name, "description": m.alt[:1024]}
                    for k, (m, _data) in enumerate(media)
                ]
                files = [
                    (f"files[{k}]", (m.path.name, data, m.mime))
                    for k, (m, data) in enumerate(media)
                ]
                response = self._call(
                    "POST",
                    params={"wait": "true"},
                    data={"payload_json": json.dumps(payload)},
                    files=files,
                )
            else:
                response = self._call("POST", params={"wait": "true"}, json=payload)
            receipts.append(web.parsed(self.name, response, _receipt, idempotent=False))
        return receipts

    def check(self) -> str:
        """Fetch the webhook itself: it answers with its name and channel."""
        body = web.parsed(self.name, self._call("GET"), dict, idempotent=True)
        return f"webhook '{body.get('name')}' in channel {body.get('channel_id')}"
