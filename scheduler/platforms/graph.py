"""Meta's Graph API errors (Facebook Pages and Threads): classified by their own codes.

The Graph API answers throttling with HTTP 400 or 403 and a code, so the status
alone would call it permanent. Its error object::

    {"error": {"message": "...", "type": "OAuthException", "code": 190,
               "error_subcode": 463, "is_transient": false, "fbtrace_id": "..."}}

Codes (Graph API "Error Handling" and "Rate Limiting" pages): 190 (and 102) the
token; 4, 17, 32, 613, 80001, 80002 throttling (nothing was created: retried with
backoff, as long as the usage headers' ``estimated_time_to_regain_access`` says);
anything ``is_transient`` (retried); 368 blocked for a while (policy);
506 a duplicate post; 1609005 the link could not be posted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler.errors import PermanentError, PlatformError, RetryableError
from scheduler.platforms import http as web

if TYPE_CHECKING:
    import httpx

TOKEN_CODES = frozenset({102, 190})
THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001, 80002})


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Return the answer's Graph error object, or an empty one."""
    body = web.json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _code(error: dict[str, Any]) -> int | None:
    code = error.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def reason(response: httpx.Response) -> str:
    """Return the platform's own words: its message, the user message, and the code."""
    error = error_of(response)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        return web.short_body(response)
    extra = error.get("error_user_msg")
    if isinstance(extra, str) and extra and extra not in message:
        message = f"{message} ({extra})"
    code = _code(error)
    return f"{message} [code {code}]" if code is not None else message


USAGE_HEADERS = ("x-business-use-case-usage", "x-page-usage", "x-app-usage")


def regain_wait(response: httpx.Response) -> float | None:
    """Read ``estimated_time_to_regain_access`` (minutes) from the usage headers, in seconds."""
    minutes: list[float] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            found = value.get("estimated_time_to_regain_access")
            if isinstance(found, int | float) and not isinstance(found, bool):
                minutes.append(float(found))
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    for name in USAGE_HEADERS:
        raw = response.headers.get(name)
        if raw:
            try:
                collect(json.loads(raw))
            except ValueError:
                continue
    return max(minutes) * 60 if minutes else None


def refiner(platform: str, token_key: str) -> Callable[[httpx.Response], PlatformError | None]:
    """Return the ``refine`` of web.send for one Graph platform, naming its token's account key."""

    def refine(response: httpx.Response) -> PlatformError | None:
        error = error_of(response)
        code = _code(error)
        words = reason(response)
        status = response.status_code
        if code in TOKEN_CODES:
            return PermanentError(
                platform,
                f"the {token_key} was refused: {words}; renew it and update the account's secret",
                status=status,
            )
        if code in THROTTLE_CODES:
            return RetryableError(
                platform, f"throttled: {words}", status=status, wait=regain_wait(response)
            )
        if error.get("is_transient") is True:
            return RetryableError(platform, f"a passing error: {words}", status=status)
        if code == 368:
            return PermanentError(
                platform, f"blocked from posting for a while: {words}", status=status
            )
        if code == 506:
            return PermanentError(platform, f"duplicate post, not retried: {words}", status=status)
        if code == 1609005:
            return PermanentError(platform, f"the link could not be posted: {words}", status=status)
        return None

    return refine


def call(
    http: httpx.Client,
    platform: str,
    url: str,
    token: str,
    token_key: str,
    method: str,
    *,
    idempotent: bool,
    **kwargs: Any,
) -> httpx.Response:
    """Make one Graph request with the account's bearer token, read as Meta answers it."""
    return web.send(
        platform,
        lambda: http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs),
        idempotent=idempotent,
        reason=reason,
        refine=refiner(platform, token_key),
    )
