"""Media at send time: the bytes uploaded are the bytes checked, and thread parts keep theirs.

Issue 10, item 2 (media): `media: img/photo.png` passes validate; the file is replaced by
a symlink to ../../.env while the daemon runs; at send time it was followed and `.env`
uploaded to Telegram and Mastodon. Item 8: media on thread parts was silently dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scheduler.errors import PermanentError
from scheduler.platforms import PLATFORMS
from scheduler.platforms.base import MediaFile, Outgoing, Platform
from tests.standins.base import StandIn
from tests.standins.bluesky import Bluesky as Pds
from tests.standins.fixtures import (  # noqa: F401 - pytest fixtures
    bluesky_standin,
    discord_standin,
    mastodon_standin,
    telegram_standin,
)
from tests.standins.mastodon import Mastodon as MastodonStandIn
from tests.standins.telegram import Telegram as TelegramStandIn
from tests.test_send_e2e import tiny_png

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
SECRET = "MASTODON_ACCESS_TOKEN=the-real-secret\n"


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """A project: .env at its root, campaigns/img/photo.png below it."""
    (tmp_path / ".env").write_text(SECRET, encoding="utf-8")
    (tmp_path / "campaigns" / "img").mkdir(parents=True)
    (tmp_path / "campaigns" / "img" / "photo.png").write_bytes(tiny_png())
    return tmp_path / "campaigns"


def settings_for(standin: StandIn) -> dict[str, object]:
    if isinstance(standin, MastodonStandIn):
        return {
            "platform": "mastodon",
            "instance": standin.url,
            "access_token": "test-access-token",
        }
    if isinstance(standin, TelegramStandIn):
        return {
            "platform": "telegram",
            "api": standin.url,
            "bot_token": standin.token,
            "chat": "@test",
        }
    assert isinstance(standin, Pds)
    return {
        "platform": "bluesky",
        "service": standin.url,
        "handle": "test.example",
        "app_password": "test-app-password",
    }


def adapter_for(standin: StandIn, client: httpx.Client) -> Platform:
    cls = PLATFORMS[standin.platform]
    return cls(cls.settings_model.model_validate(settings_for(standin)), client)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


@pytest.mark.parametrize("platform", ["telegram", "mastodon"])
def test_an_image_swapped_for_a_symlink_after_validation_is_refused_at_send_time(
    platform: str,
    folders: Path,
    client: httpx.Client,
    request: pytest.FixtureRequest,
) -> None:
    standin: StandIn = request.getfixturevalue(f"{platform}_standin")
    photo = MediaFile(folders, "img/photo.png", "A portrait")
    out = Outgoing("c/p/a/2026-07-01T09:00:00Z/-", ("Free them",), NOW, media=(photo,))
    # validated; then, while the daemon runs, the file becomes a link to the secrets
    os.remove(folders / "img" / "photo.png")
    os.symlink("../../.env", folders / "img" / "photo.png")
    with pytest.raises(PermanentError, match=re.escape("img/photo.png")) as info:
        adapter_for(standin, client).publish(out)
    assert "symbolic link" in str(info.value)
    assert standin.requests == []  # nothing uploaded, nothing posted
    assert "the-real-secret" not in str(info.value)


def test_a_media_path_with_dot_dot_is_refused(folders: Path) -> None:
    with pytest.raises(PermanentError, match="outside"):
        MediaFile(folders, "../.env", "secrets").read("telegram")


def thread(folders: Path) -> Outgoing:
    photo = MediaFile(folders, "img/photo.png", "A portrait of Sevinj Vagifgizi")
    return Outgoing(
        "c/t/a/2026-07-01T09:00:00Z/-",
        ("Part one 1/2", "Part two 2/2"),
        NOW,
        scheduled_for=NOW,
        part_media=((), (photo,)),
    )


def test_bluesky_posts_an_image_on_the_second_part(
    folders: Path,
    client: httpx.Client,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    adapter_for(bluesky_standin, client).publish(thread(folders))
    first, second = (p["value"] for p in bluesky_standin.posts)
    assert "embed" not in first
    assert second["embed"]["images"][0]["alt"] == "A portrait of Sevinj Vagifgizi"


def test_mastodon_posts_an_image_on_the_second_part(
    folders: Path,
    client: httpx.Client,
    mastodon_standin: MastodonStandIn,  # noqa: F811
) -> None:
    adapter_for(mastodon_standin, client).publish(thread(folders))
    first, second = mastodon_standin.posts
    assert first["media_attachments"] == []
    assert second["media_attachments"][0]["description"] == "A portrait of Sevinj Vagifgizi"


def test_telegram_sends_the_second_part_as_a_photo(
    folders: Path,
    client: httpx.Client,
    telegram_standin: TelegramStandIn,  # noqa: F811
) -> None:
    adapter_for(telegram_standin, client).publish(thread(folders))
    sent = [r.path.rsplit("/", 1)[-1] for r in telegram_standin.requests]
    assert sent == ["sendMessage", "sendPhoto"]


def test_a_platform_without_part_media_refuses_it_before_any_request(folders: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "1"})

    cls = PLATFORMS["discord"]
    settings = cls.settings_model.model_validate(
        {"platform": "discord", "webhook_url": "https://d.example/api/webhooks/1/t"}
    )
    with pytest.raises(PermanentError, match="part 2"):
        cls(settings, httpx.Client(transport=httpx.MockTransport(handler))).publish(thread(folders))
    assert seen == []


def test_a_missing_image_on_a_later_part_sends_nothing(
    folders: Path,
    client: httpx.Client,
    bluesky_standin: Pds,  # noqa: F811
) -> None:
    out = thread(folders)
    (folders / "img" / "photo.png").unlink()
    with pytest.raises(PermanentError, match=re.escape("img/photo.png")):
        adapter_for(bluesky_standin, client).publish(out)
    assert bluesky_standin.posts == []


def test_discord_attaches_the_first_parts_images_with_their_alt_text(
    folders: Path, client: httpx.Client, request: pytest.FixtureRequest
) -> None:
    from scheduler.platforms.discord import Discord, DiscordSettings
    from tests.standins.discord import Discord as DiscordStandIn

    standin: DiscordStandIn = request.getfixturevalue("discord_standin")
    photo = MediaFile(folders, "img/photo.png", "A portrait of Sevinj Vagifgizi")
    out = Outgoing("c/p/d/2026-07-01T09:00:00Z/-", ("Free them",), NOW, media=(photo,))
    settings = DiscordSettings.model_validate(
        {"platform": "discord", "webhook_url": standin.webhook_url}
    )
    (receipt,) = Discord(settings, client).publish(out)
    (post,) = standin.posts
    assert post["content"] == "Free them" and receipt.remote_id == post["id"]
    assert post["attachments"] == [
        {"id": f"{post['id']}0", "filename": "photo.png", "description": photo.alt}
    ]
