"""What every platform declares: its facts, and the settings of an account on it.

A platform is a small declarative class: its name, how it counts length, its
limits, and the pydantic model of an account's keys in ``accounts.yaml``. The
code that talks to the platform's API hangs off the same class.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from scheduler import text
from scheduler.errors import PermanentError
from scheduler.timeutil import parse_duration

if TYPE_CHECKING:
    import httpx

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

PROXY_SCHEMES = ("http://", "https://", "socks5://", "socks5h://")


class AccountSettings(BaseModel):
    """Keys every account takes; each platform adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    platform: str
    pace: Duration = timedelta(seconds=2)
    proxy: str | None = None
    # the account's own limit where it differs from the platform's usual one
    # (a Mastodon instance allowing 5000, a webhook's consumer allowing 1000)
    max_characters: int | None = Field(default=None, gt=0)
    # an alert when this account had posts due and posted nothing for this long
    silence_alert: Duration = timedelta(hours=24)

    @field_validator("proxy")
    @classmethod
    def _proxy_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(PROXY_SCHEMES):
            raise ValueError(
                f"'{value}' is not a proxy URL; use http://, https:// or socks5://HOST:PORT"
            )
        return value

    url_key: ClassVar[str] = "api"  # the key that holds the base URL

    def base_url(self) -> str:
        """Return the API's base URL for this account (overridable per account)."""
        return str(getattr(self, self.url_key))


def _url(value: Any) -> Any:
    if isinstance(value, str) and not value.startswith(("http://", "https://")):
        raise ValueError(
            f"'{value}' is not a URL; write it with https:// (or http:// for a test server)"
        )
    if isinstance(value, str) and (why := url_problem(value)):
        raise ValueError(f"this is not a valid URL ({why}); write it as https://HOST[:PORT][/PATH]")
    return value.rstrip("/") if isinstance(value, str) else value


def url_problem(value: str) -> str | None:
    """Say what stops a request from being made to this URL, or None (the value is not echoed)."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port out of range or not a number
    except ValueError as exc:
        return str(exc).split(":")[0].lower() or "it cannot be read"
    if not parts.hostname:
        return "no host name"
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "it holds white space"
    if port == 0:
        return "port 0"
    return None


Url = Annotated[str, BeforeValidator(_url)]
Secret = SecretStr


@dataclass(frozen=True)
class MediaFile:
    """An image to attach, named inside its folder (the campaigns folder), with its alt text."""

    folder: Path
    name: str  # relative to folder, as the campaign file wrote it
    alt: str
    url: str | None = None  # where the same image is public (Threads takes images only so)

    @property
    def path(self) -> Path:
        """Return where the file is meant to be (for its file name; never opened as such)."""
        return self.folder / self.name

    @property
    def mime(self) -> str:
        """Guess the media type from the file name."""
        return mimetypes.guess_type(self.path.name)[0] or "application/octet-stream"

    def read(self, platform: str) -> bytes:
        """Return the file's bytes, opened inside its folder now: the bytes checked are the bytes sent.

        A file that was swapped for a symlink (to ``../../.env``, say) after it was
        validated is refused here, whatever it points at; so is any other file that
        cannot be read. Each is a permanent error that names the file.
        """
        from scheduler.confine import OutsideError, read_inside

        try:
            return read_inside(self.folder, self.name)
        except OutsideError as exc:
            why = str(exc)
        except FileNotFoundError:
            why = f"'{self.name}' not found"
        except OSError as exc:
            why = f"'{self.name}' cannot be read: {exc.strerror or type(exc).__name__}"
        raise PermanentError(platform, f"media not sent: {why}; nothing was posted") from None


@dataclass(frozen=True)
class Card:
    """A link card: where it points and what it says."""

    url: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class Outgoing:
    """Exactly what to publish for one occurrence on one account."""

    key: str  # the occurrence's identity: the same on every retry and after a restart
    parts: tuple[str, ...]  # one part, or a thread's parts in order
    created_at: datetime
    language: str | None = None
    content_warning: str | None = None
    media: tuple[MediaFile, ...] = ()
    card: Card | None = None
    link_preview: bool = True
    visibility: str | None = None  # overrides the account's default where the platform has one
    # media of each thread part in order, beyond ``media`` (which goes with the first part)
    part_media: tuple[tuple[MediaFile, ...], ...] = ()
    scheduled_for: datetime | None = None  # the occurrence's instant (part of its identity)
    since: datetime | None = None  # no post of this occurrence can be older (its row's creation)
    # marks an earlier try of this row kept (a Threads container, the parts already posted)
    progress: tuple[str, ...] = ()
    # keeps marks in the row before the next request goes out; None: nothing can be kept
    keep: Callable[[tuple[str, ...]], None] | None = field(default=None, compare=False, repr=False)

    def checkpoint(self, marks: tuple[str, ...]) -> bool:
        """Keep marks in the row (so a retry resumes from them); say whether they were kept."""
        if self.keep is None:
            return False
        self.keep(marks)
        return True

    def media_of(self, part: int) -> tuple[MediaFile, ...]:
        """Return the media that go with one part (the post's own media go with the first)."""
        own = self.part_media[part] if part < len(self.part_media) else ()
        return (*self.media, *own) if part == 0 else own

    def read_media(self, platform: str) -> list[list[tuple[MediaFile, bytes]]]:
        """Read every part's media before any request, so that a bad file sends nothing at all."""
        return [[(m, m.read(platform)) for m in self.media_of(i)] for i in range(len(self.parts))]

    def refuse_part_media(self, platform: str, label: str) -> None:
        """Raise, before any request, if a part after the first has media (never drop them)."""
        for i in range(1, len(self.parts)):
            if self.media_of(i):
                raise PermanentError(
                    platform,
                    f"thread part {i + 1} has media, which {label} cannot attach to a part after "
                    "the first; nothing was sent (move the image to the first part)",
                )

    def idempotency_key(self, part: int) -> str:
        """Derive a stable key for one part, for platforms that deduplicate by key."""
        return hashlib.sha256(f"{self.key}#{part}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Receipt:
    """What the platform says it created."""

    remote_id: str
    url: str | None


class Platform:
    """One platform: its facts as class attributes, its API behind an instance.

    An instance gets its account's settings and an ``httpx.Client`` (so tests can
    hand it a ``MockTransport`` and accounts can have their own proxy), and
    returns receipts or raises one of the PlatformError subclasses.
    """

    dedupes_by_key: ClassVar[bool] = False  # a retry with the same key cannot post twice
    can_read_back: ClassVar[bool] = False  # recent posts can be read to settle an uncertain send

    def __init__(
        self,
        settings: AccountSettings,
        http: httpx.Client,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.pause = pause or (lambda _seconds: None)

    def publish(self, out: Outgoing) -> list[Receipt]:
        """Post every part in order (each replying to the one before); return their receipts."""
        raise PermanentError(self.name, f"posting to {self.label} is not supported yet")

    def check(self) -> str:
        """Verify the credentials with one harmless call; return who we are there."""
        raise PermanentError(self.name, f"checking {self.label} accounts is not supported yet")

    def read_back(self, out: Outgoing) -> Receipt | None:
        """Find a post of this occurrence among the account's recent posts, or None."""
        raise PermanentError(self.name, f"{self.label} cannot read back recent posts")

    def live_limit(self) -> int | None:
        """Return the limit the platform reports for this account, when it reports one."""
        return None

    name: ClassVar[str]
    label: ClassVar[str]
    limit: ClassVar[int | None]
    counter: ClassVar[str] = "graphemes"  # how text.count() measures a post
    byte_limit: ClassVar[int | None] = None  # a second cap in UTF-8 bytes (Bluesky)
    media_caption_limit: ClassVar[int | None] = None  # a caption's limit when media is attached
    has_threads: ClassVar[bool] = True  # replies chain into a thread
    media_on_parts: ClassVar[bool] = False  # a thread part after the first can carry media
    max_media: ClassVar[int | None] = None  # images one post (or part) can carry
    max_alt: ClassVar[int | None] = None  # characters of alt text an image can carry
    media_by_url: ClassVar[bool] = False  # images go by a public URL (media url:), not uploaded
    posts_per_day: ClassVar[int | None] = None  # the platform's publishing limit per account
    secret_fields: ClassVar[tuple[str, ...]] = ()
    settings_model: ClassVar[type[AccountSettings]]

    @classmethod
    def measure(cls, body: str) -> int:
        """Return the length of a text as this platform counts it."""
        return text.count(body, cls.counter)

    @classmethod
    def limit_for(cls, settings: AccountSettings, *, with_media: bool = False) -> int | None:
        """Return the limit a post must fit for this account."""
        if with_media and cls.media_caption_limit is not None:
            return cls.media_caption_limit
        return settings.max_characters or cls.limit
