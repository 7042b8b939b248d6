"""Matrix: m.room.message events sent to a room through the client-server API."""

from __future__ import annotations

from typing import ClassVar

from scheduler.platforms.base import AccountSettings, Platform, Secret, Url


class MatrixSettings(AccountSettings):
    """A homeserver, a room (``!id:server`` or ``#alias:server``) and an access token."""

    homeserver: Url = "https://matrix.org"
    room: str
    access_token: Secret

    url_key = "homeserver"


class Matrix(Platform):
    """Matrix events are capped at 65,536 bytes; we keep text well inside that."""

    name = "matrix"
    label = "Matrix"
    limit = 32000
    counter = "codepoints"
    byte_limit = 60000
    has_threads = False
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)
    settings_model = MatrixSettings
