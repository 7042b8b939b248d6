"""Hostile answers and URLs: "maybe sent" is never failed, never a hang (issue 10, item 6).

The break: a 200 whose body cannot be read after the post was made: Telegram recorded
failed (a human may resend it: a duplicate); Mastodon's `run --once` never exited and
the row stayed sending. And `api: "http://[::1"` passed validate, then `send` crashed
and left the row `sending`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest

from scheduler.errors import PermanentError, PlatformError, RetryableError, UncertainError
from scheduler.ledger import Claim, Ledger
from scheduler.platforms import PLATFORMS
from scheduler.platforms import http as web
from scheduler.platforms.base import Outgoing, Platform, Receipt
from tests.test_adapters import CASES, Case, adapter, outgoing

UNREADABLE = [
    pytest.param(b'{"id": "1', id="cut-short"),
    pytest.param(b"<html>502</html>", id="html"),
    pytest.param(b"null", id="null"),
    pytest.param(b"[]", id="a-list"),
    pytest.param(b"{}", id="no-fields"),
    pytest.param(
        b'{"id": {"x": 1}, "uri": 5, "cid": [], "ok": true, "result": 3}', id="wrong-types"
    ),
]


def _answer(case: Case, body: bytes) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    return handler


@pytest.mark.parametrize("body", UNREADABLE)
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.platform != "webhook"], ids=lambda c: c.platform
)
def test_an_unreadable_success_is_maybe_sent(case: Case, body: bytes) -> None:
    expected = RetryableError if PLATFORMS[case.platform].dedupes_by_key else UncertainError
    with pytest.raises(PlatformError) as info:
        adapter(case, _answer(case, body)).publish(outgoing())
    assert type(info.value) is expected, info.value
    assert "could not be read" in str(info.value)


@pytest.mark.parametrize("body", UNREADABLE)
def test_a_webhook_takes_any_success_as_delivered(body: bytes) -> None:
    case = next(c for c in CASES if c.platform == "webhook")
    (receipt,) = adapter(case, _answer(case, body)).publish(outgoing())
    assert receipt.remote_id


def test_an_unreadable_login_is_retried_nothing_was_posted() -> None:
    case = next(c for c in CASES if c.platform == "bluesky")
    with pytest.raises(RetryableError):
        adapter(case, _answer(case, b"<html>"), with_setup=False).publish(outgoing())


@pytest.mark.parametrize("url", ["http://[::1", "http://host:99999", "https://", "http://a b"])
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.platform != "discord"], ids=lambda c: c.platform
)
def test_a_broken_base_url_is_refused_when_accounts_yaml_is_read(case: Case, url: str) -> None:
    cls = PLATFORMS[case.platform]
    settings = dict(case.settings)
    key = "url" if case.platform == "webhook" else cls.settings_model.url_key
    settings[key] = url
    with pytest.raises(pydantic.ValidationError, match="not a valid URL"):
        cls.settings_model.model_validate(settings)


@pytest.mark.parametrize(
    "error", [httpx.InvalidURL("Invalid IPv6 URL"), httpx.UnsupportedProtocol("no")]
)
def test_a_url_httpx_cannot_use_is_a_permanent_error_nothing_sent(error: Exception) -> None:
    def request() -> httpx.Response:
        raise error

    with pytest.raises(PermanentError, match="base URL"):
        web.send("mastodon", request, idempotent=True, reason=web.short_body)


class Broken(Platform):
    """An adapter with a bug: it raises what no adapter should, before or after a request."""

    name = "broken"
    label = "Broken"
    limit = None
    after_request = False

    def publish(self, out: Outgoing) -> list[Receipt]:
        if self.after_request:
            web.send("broken", lambda: httpx.Response(200), idempotent=False, reason=web.short_body)
        raise KeyError("id")


@pytest.mark.parametrize(("after", "status"), [(False, "failed"), (True, "uncertain")])
def test_an_unexpected_adapter_error_ends_the_row(tmp_path: Path, after: bool, status: str) -> None:
    from scheduler.dispatch import Dispatcher

    now = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    claim = Claim("c/p/a/2026-07-01T09:00:00Z/-", "c", "p", "a", "broken", None, now)
    entry = ledger.claim_sending(claim, ("hi",), now, "test:1")
    assert entry is not None
    broken = Broken.__new__(Broken)
    broken.after_request = after
    dispatcher = Dispatcher(project=None, ledger=ledger, clock=lambda: now)  # type: ignore[arg-type]
    done = dispatcher._publish(entry, broken, Outgoing(entry.key, ("hi",), now))
    assert done.status == status
    assert "KeyError" in (done.error or "")
