"""What every platform declares: its facts, and the settings of an account on it.

A platform is a small declarative class: its name, how it counts length, its
limits, and the pydantic model of an account's keys in ``accounts.yaml``. The
code that talks to the platform's API hangs off the same class.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from scheduler import text
from scheduler.timeutil import parse_duration

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

PROXY_SCHEMES = ("http://", "https://", "socks5://", "socks5h://")


class AccountSettings(BaseModel):
    """Keys every account takes; each platform adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platform: str
    pace: Duration = timedelta(seconds=2)
    proxy: str | None = None
    # the account's own limit where it differs from the platform's usual one
    # (a Mastodon instance allowing 5000, a webhook's consumer allowing 1000)
    max_characters: int | None = Field(default=None, gt=0)

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
    return value.rstrip("/") if isinstance(value, str) else value


Url = Annotated[str, BeforeValidator(_url)]
Secret = SecretStr


class Platform:
    """Facts about one platform; subclasses set the class attributes."""

    name: ClassVar[str]
    label: ClassVar[str]
    limit: ClassVar[int | None]
    counter: ClassVar[str] = "graphemes"  # how text.count() measures a post
    byte_limit: ClassVar[int | None] = None  # a second cap in UTF-8 bytes (Bluesky)
    media_caption_limit: ClassVar[int | None] = None  # a caption's limit when media is attached
    has_threads: ClassVar[bool] = True  # replies chain into a thread
    secret_fields: ClassVar[tuple[str, ...]] = ()
    settings: ClassVar[type[AccountSettings]]

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
