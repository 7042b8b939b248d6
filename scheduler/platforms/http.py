"""Classify what came back from a platform, so that a retry can never post twice.

The rule (SPEC's promise): retry only what surely created nothing (the
connection was refused, 429, an explicit "come back later"), or anything on a
platform that deduplicates by key. A timeout or 5xx after the request went out,
on a platform without such a key, is uncertain: the row waits for a read-back
or a person, never for a blind retry.
"""

from __future__ import annotations

import email.utils
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from scheduler.errors import PermanentError, PlatformError, RetryableError, UncertainError

if TYPE_CHECKING:  # httpx itself is imported when the first request is made
    import httpx

T = TypeVar("T")
_went_out = threading.local()  # requests that may have reached a platform, per thread


def requests_out() -> int:
    """Count the requests this thread let go out (for telling "before" from "after")."""
    return int(getattr(_went_out, "n", 0))


def _mark_out() -> None:
    _went_out.n = requests_out() + 1


def parse_wait(value: str | None, now: datetime | None = None) -> float | None:
    """Read a wait from a header: seconds, an HTTP date, an epoch time or an ISO 8601 time."""
    if not value:
        return None
    value = value.strip()
    current = now or datetime.now(UTC)
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if number > 1_000_000_000:  # an epoch time (Bluesky's RateLimit-Reset)
            return max(0.0, number - current.timestamp())
        return max(0.0, number)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))  # Mastodon's X-RateLimit-Reset
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)  # Retry-After as an HTTP date
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


def send(
    platform: str,
    request: Callable[[], httpx.Response],
    *,
    idempotent: bool,
    reason: Callable[[httpx.Response], str],
    wait_headers: tuple[str, ...] = ("Retry-After",),
    body_wait: Callable[[httpx.Response], float | None] | None = None,
    refine: Callable[[httpx.Response], PlatformError | None] | None = None,
) -> httpx.Response:
    """Make one request and raise the right PlatformError for anything but success.

    ``idempotent`` says the platform deduplicates this request by a key we sent,
    so a timeout or 5xx may be retried safely. ``refine`` reads a platform's own
    error codes where its status says less (the Graph API's throttling answers
    400 with code 4); it returns None to leave the answer to the status.
    """
    import httpx

    # transport errors raised before a byte of the request could reach the platform
    nothing_sent = (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.UnsupportedProtocol,
        httpx.ProxyError,  # the proxy refused to connect us
    )
    try:
        response = request()
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        # the request could not be built: nothing was sent, and asking again cannot help
        raise PermanentError(
            platform,
            f"the account's base URL cannot be used ({type(exc).__name__}); nothing was sent: "
            "fix it in accounts.yaml",
        ) from None
    except nothing_sent as exc:
        raise RetryableError(platform, f"could not connect: {_transport(exc)}") from None
    except httpx.LocalProtocolError as exc:  # the request could not even be written down
        raise RetryableError(
            platform, f"request failed before sending: {_transport(exc)}"
        ) from None
    except httpx.HTTPError as exc:
        _mark_out()
        # anything else (a timeout, a hang-up, an answer that would not decode) came
        # after the request may have gone out: resending could post twice
        cls = RetryableError if idempotent else UncertainError
        raise cls(
            platform, f"no usable answer after the request went out: {_transport(exc)}"
        ) from None
    _mark_out()
    if response.is_success:
        return response
    if refine is not None and (refined := refine(response)) is not None:
        raise refined
    # a wait is read only where the platform asks for one: rate-limit headers such as
    # Mastodon's X-RateLimit-Reset ride on every response and mean nothing for a 502
    wait = _wait(response, wait_headers, body_wait) if response.status_code in (429, 503) else None
    raise classify(platform, response, idempotent=idempotent, reason=reason(response), wait=wait)


def classify(
    platform: str, response: httpx.Response, *, idempotent: bool, reason: str, wait: float | None
) -> PlatformError:
    """Return the error a non-success response stands for."""
    status = response.status_code
    if status == 429:
        return RetryableError(platform, reason, status=status, wait=wait)
    if status == 503 and wait is not None:  # explicitly "unavailable, come back later"
        return RetryableError(platform, reason, status=status, wait=wait)
    if status >= 500 or status == 408:
        cls = RetryableError if idempotent else UncertainError
        return cls(platform, reason, status=status, wait=wait)
    return PermanentError(platform, reason, status=status)


def _wait(
    response: httpx.Response,
    headers: tuple[str, ...],
    body_wait: Callable[[httpx.Response], float | None] | None,
) -> float | None:
    if body_wait is not None:
        found = body_wait(response)
        if found is not None:
            return found
    for name in headers:
        found = parse_wait(response.headers.get(name))
        if found is not None:
            return found
    return None


def parsed(
    platform: str, response: httpx.Response, read: Callable[[Any], T], *, idempotent: bool
) -> T:
    """Read a success's JSON body with ``read``; an answer that cannot be read is "maybe sent".

    Every adapter reads what came back through here. The request went out and the
    platform said yes, so whatever it did may have happened: never a permanent
    failure (a person would resend it: a duplicate). ``idempotent`` says a retry
    cannot post twice (a read, or a platform that deduplicates by key).
    """
    try:
        return read(response.json())
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        cls = RetryableError if idempotent else UncertainError
        raise cls(
            platform,
            f"the answer could not be read after the request went out "
            f"({type(exc).__name__}): {short_body(response)}",
            status=response.status_code,
        ) from None


def text_of(value: Any) -> str:
    """Return a string field of an answer; anything else is an answer that cannot be read."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def json_or_none(response: httpx.Response) -> Any:
    """Return the response's JSON body, or None if it has none."""
    try:
        return response.json()
    except ValueError:
        return None


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def short_body(response: httpx.Response) -> str:
    """Return the start of a response body, for an error without a structured reason.

    An HTML error page (a proxy's or a server's) is reduced to its title, or to
    its first line of text: a person reads the reason, not the markup.
    """
    text = response.text.strip()
    if text[:1] == "<" and (
        "html" in response.headers.get("content-type", "") or "<html" in text[:500].lower()
    ):
        title = _TITLE.search(text[:20_000])
        found = title.group(1) if title else _TAG.sub(" ", text[:20_000])
        text = next((line.strip() for line in found.splitlines() if line.strip()), "")
        text = " ".join(text.split()) or response.reason_phrase or "an HTML error page"
    text = text.replace("\n", " ")
    return (
        (text[:200] + "…")
        if len(text) > 200
        else (text or response.reason_phrase or "no reason given")
    )


def _transport(exc: Exception) -> str:
    # httpx messages can hold the URL, and Telegram's URL holds the token: say only what happened
    return type(exc).__name__
