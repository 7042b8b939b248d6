"""Read-back settles by identity the platform keeps, never by text alone (issue 10, item 3).

The break: a weekly post with a fixed text; the second week's first attempt gets a 500
before anything is created; read-back found last week's post with the same text and
recorded the new occurrence sent with last week's URL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scheduler.errors import PlatformError, RetryableError
from scheduler.platforms.base import MediaFile, Outgoing
from scheduler.platforms.bluesky import Bluesky, BlueskySettings, record_key
from scheduler.platforms.mastodon import Mastodon, MastodonSettings
from tests.standins import atsyntax
from tests.standins.bluesky import Bluesky as Pds
from tests.standins.fixtures import bluesky_standin  # noqa: F401 - a pytest fixture
from tests.standins.mastodon import Mastodon as MastodonStandIn

WEEK1 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
WEEK2 = WEEK1 + timedelta(days=7)
TEXT = ("Free Sevinj Vagifgizi. #FreeThePress",)


def occurrence(
    when: datetime, parts: tuple[str, ...] = TEXT, *, since: datetime | None = None
) -> Outgoing:
    key = f"c/weekly/b/{when:%Y-%m-%dT%H:%M:%SZ}/-"
    return Outgoing(key, parts, when, scheduled_for=when, since=since or when)


@pytest.fixture
def bsky(bluesky_standin: Pds) -> Iterator[Bluesky]:  # noqa: F811
    settings = BlueskySettings(
        platform="bluesky",
        service=bluesky_standin.url,
        handle="test.example",
        app_password="test-app-password",  # type: ignore[arg-type]
    )
    with httpx.Client() as client:
        yield Bluesky(settings, client)


def test_record_keys_are_valid_tids_derived_from_the_occurrence() -> None:
    one, two = occurrence(WEEK1), occurrence(WEEK2)
    keys = {record_key(one, 0), record_key(one, 1), record_key(two, 0)}
    assert len(keys) == 3
    assert all(atsyntax.is_tid(k) for k in keys)
    assert record_key(one, 0) == record_key(occurrence(WEEK1), 0)  # same on every retry
    other = Outgoing("c/other/b/2026-07-01T09:00:00Z/-", TEXT, WEEK1, scheduled_for=WEEK1)
    assert record_key(other, 0) != record_key(one, 0)  # same instant, another post
    assert record_key(one, 0) < record_key(two, 0)  # sorted by the scheduled instant


def test_bluesky_a_500_before_creation_is_not_settled_with_last_weeks_post(
    bsky: Bluesky,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    (first,) = bsky.publish(occurrence(WEEK1))
    bluesky_standin.fail_next(status=500)  # nothing is created
    week2 = occurrence(WEEK2)
    with pytest.raises(RetryableError):  # a record key makes the retry safe
        bsky.publish(week2)
    assert bsky.read_back(week2) is None  # last week's post is not this week's
    (second,) = bsky.publish(week2)
    assert second.remote_id != first.remote_id
    assert len(bluesky_standin.posts) == 2


def test_bluesky_a_lost_answer_is_settled_by_its_record_key(
    bsky: Bluesky,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    out = occurrence(WEEK2)
    bluesky_standin.fail_next(status=502, after=True)  # created, the answer lost
    (made,) = bsky.publish(out)  # the record at its key is read: no second post
    assert made.remote_id.endswith("/" + record_key(out, 0))
    found = bsky.read_back(out)
    assert found is not None and found.remote_id == made.remote_id
    (again,) = bsky.publish(out)  # a retry finds the record (the PDS answers its key with 500)
    assert again.remote_id == made.remote_id
    assert len(bluesky_standin.posts) == 1


def test_bluesky_a_thread_cut_short_is_completed_once(
    bsky: Bluesky,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    out = occurrence(WEEK1, ("one 1/3", "two 2/3", "three 3/3"))
    bsky.publish(occurrence(WEEK1, ("one 1/3",)))  # part 1 went out before a crash
    receipts = bsky.publish(out)
    assert [p["value"]["text"] for p in bluesky_standin.posts] == [
        "one 1/3",
        "two 2/3",
        "three 3/3",
    ]
    assert bluesky_standin.posts[2]["value"]["reply"]["root"]["uri"] == receipts[0].remote_id


def test_bluesky_a_record_at_our_key_with_other_text_is_not_proof(
    bsky: Bluesky,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    bsky.publish(occurrence(WEEK1, ("Something else entirely",)))
    with pytest.raises(PlatformError, match="another text"):
        bsky.read_back(occurrence(WEEK1))


def test_the_pds_refuses_a_second_record_at_the_same_key(bluesky_standin: Pds) -> None:  # noqa: F811
    with httpx.Client(base_url=f"{bluesky_standin.url}/xrpc/") as api:
        session = api.post(
            "com.atproto.server.createSession",
            json={"identifier": "test.example", "password": "test-app-password"},
        ).json()
        auth = {"Authorization": f"Bearer {session['accessJwt']}"}
        record = {"text": "hi", "createdAt": "2026-07-01T09:00:00.000Z"}
        body = {"repo": session["did"], "collection": "app.bsky.feed.post", "record": record}
        assert api.post(
            "com.atproto.repo.createRecord", json={**body, "rkey": "3l3qo2vutsw2b"}, headers=auth
        ).is_success
        again = api.post(
            "com.atproto.repo.createRecord", json={**body, "rkey": "3l3qo2vutsw2b"}, headers=auth
        )
        assert again.status_code == 500  # the repo's MST refuses the key: a plain error
        assert again.json()["error"] == "InternalServerError"
        bad = api.post(
            "com.atproto.repo.createRecord", json={**body, "rkey": "not-a-tid"}, headers=auth
        )
        assert bad.status_code == 400 and bad.json()["error"] == "InvalidRequest"
    assert len(bluesky_standin.posts) == 1


def test_mastodon_reads_back_only_posts_made_after_the_attempt_began() -> None:
    now = {"t": WEEK1.timestamp()}
    with MastodonStandIn(clock=lambda: now["t"]) as standin, httpx.Client() as client:
        settings = MastodonSettings(
            platform="mastodon",
            instance=standin.url,
            access_token="test-access-token",  # type: ignore[arg-type]
        )
        masto = Mastodon(settings, client)
        masto.publish(occurrence(WEEK1))
        now["t"] = WEEK2.timestamp()
        week2 = occurrence(WEEK2, since=WEEK2)
        assert masto.read_back(week2) is None  # the same text a week ago is not this post
        (made,) = masto.publish(week2)
        found = masto.read_back(week2)
        assert found is not None and found.remote_id == made.remote_id


def test_mastodon_a_failed_media_upload_is_retried_not_read_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "a.png").write_bytes(b"\x89PNG")
        settings = MastodonSettings(
            platform="mastodon",
            instance="https://m.example",
            access_token="t",  # type: ignore[arg-type]
        )
        masto = Mastodon(settings, httpx.Client(transport=httpx.MockTransport(handler)))
        out = Outgoing("k", TEXT, WEEK1, media=(MediaFile(Path(folder), "a.png", "alt"),))
        with pytest.raises(RetryableError):  # an unattached upload is not a post
            masto.publish(out)
