"""The images of the HTML preview: each read once, inside its folder, and embedded as a data URI.

A file is read through :func:`~scheduler.confine.read_inside` (never through a symlink or
``..``), and its type is told by its first bytes, not by its name. One that cannot be shown
keeps its alt text and says why, and the page is written all the same.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scheduler.campaigns import Media
from scheduler.confine import OutsideError, read_inside
from scheduler.errors import display_path
from scheduler.redact import redact

# the image types a browser shows, by their first bytes (the name's extension is not trusted)
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypavif", 4, "image/avif"),
)


@dataclass(frozen=True)
class Image:
    """One image on a card: the embedded data it names (``ref``), or why it cannot be shown."""

    path: str
    alt: str
    ref: str | None
    problem: str | None


class Images:
    """Read each image once, inside the campaigns folder, and remember its data URI or problem."""

    def __init__(self, folder: Path, mask: Callable[[str], str] = redact) -> None:
        self.folder = folder
        self.mask = mask
        self.uris: dict[str, str] = {}
        self._seen: dict[str, tuple[str | None, str | None]] = {}

    def image(self, media: Media) -> Image:
        if media.path not in self._seen:
            self._seen[media.path] = self._load(media.path)
        ref, problem = self._seen[media.path]
        mask = self.mask
        return Image(mask(media.path), mask(media.alt), ref, mask(problem) if problem else None)

    def _load(self, path: str) -> tuple[str | None, str | None]:
        try:
            data = read_inside(self.folder, path)
        except OutsideError as exc:
            return None, str(exc)
        except FileNotFoundError:
            return None, f"'{path}' not found in {display_path(self.folder)}"
        except OSError as exc:
            return None, f"'{path}' cannot be read: {exc.strerror or exc}"
        mime = next((m for magic, at, m in _MAGIC if data[at : at + len(magic)] == magic), None)
        if mime is None:
            return None, f"'{path}' is not a PNG, JPEG, GIF, WebP or AVIF image"
        ref = f"img-{len(self.uris) + 1}"
        self.uris[ref] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return ref, None
