"""A generic webhook: a JSON POST of the rendered text and its metadata.

With a ``secret``, the body is signed: ``X-Solidarity-Signature: sha256=<hex>``,
the HMAC-SHA256 of the raw body under the secret. ``X-Solidarity-Key`` carries
the occurrence's key, so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from scheduler.platforms import http as web
from scheduler.platforms.base import AccountSettings, Outgoing, Platform, Receipt, Secret, Url

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Solidarity-Signature"
KEY_HEADER = "X-Solidarity-Key"


class WebhookSettings(AccountSettings):
    """Where to POST, and an optional secret to sign the body with (HMAC-SHA256)."""

    url: Url
    secret: Secret | None = None

    url_key = "url"


def sign(secret: str, body: bytes) -> str:
    """Return the signature header value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _reason(response: httpx.Response) -> str:
    body = web.json_or_none(response)
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return web.short_body(response)


class Webhook(Platform):
    """A webhook has no length limit unless the account sets max_characters."""

    name = "webhook"
    label = "Webhook"
    limit = None
    counter = "codepoints"
    has_threads = False
    media_on_parts = True  # each part's media are named in the payload
    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)
    settings_model = WebhookSettings

    settings: WebhookSettings

    def publish(self, out: Outgoing) -> list[Receipt]:
        """POST the whole occurrence once, as JSON."""
        payload = {
            "key": out.key,
            "text": "\n\n".join(out.parts),
            "parts": list(out.parts),
            "language": out.language,
            "content_warning": out.content_warning,
            "link_card": None
            if out.card is None
            else {
                "url": out.card.url,
                "title": out.card.title,
                "description": out.card.description,
            },
            "media": [{"file": m.path.name, "alt": m.alt} for m in out.media],
            "part_media": [
                [{"file": m.path.name, "alt": m.alt} for m in out.media_of(i)]
                for i in range(len(out.parts))
            ],
            "created_at": out.created_at.isoformat(),
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", KEY_HEADER: out.key}
        if self.settings.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.settings.secret.get_secret_value(), body)
        response = web.send(
            self.name,
            lambda: self.http.post(self.settings.url, content=body, headers=headers),
            idempotent=False,
            reason=_reason,
        )
        # a 2xx means delivered: the consumer need not answer anything readable
        answer = web.json_or_none(response)
        answer = answer if isinstance(answer, dict) else {}
        found, url = answer.get("id"), answer.get("url")
        return [
            Receipt(
                str(found) if isinstance(found, str | int) and found != "" else out.key,
                url if isinstance(url, str) else None,
            )
        ]

    def check(self) -> str:
        """A webhook has nothing harmless to call: say where it points."""
        return f"posts to {urlsplit(self.settings.url).hostname} (not called: a webhook has no harmless request)"
