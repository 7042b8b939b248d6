"""Opening a user's file only inside its folder, checked on what is actually opened.

A template or an image is named relative to its folder (``templates/``,
``campaigns/``). A check of the name at validation is not enough: the file can
be swapped for a symlink to ``../.env`` afterwards. So each file is opened when
it is used, one path component at a time from the folder, with ``O_NOFOLLOW``
on every component: a symlink anywhere below the folder is refused, whatever it
points at, and the bytes returned are the bytes of the file that was checked.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from scheduler.errors import SolidarityError

MAX_BYTES = 20 * 1024 * 1024  # no template or image we post is larger


class OutsideError(SolidarityError):
    """A file named inside a folder leads outside it (or is not a plain file there)."""


def _parts(name: str) -> list[str]:
    if "\x00" in name:
        raise OutsideError(f"{name!r} has a NUL character; name a file inside the folder")
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute():
        raise OutsideError(f"'{name}' is an absolute path; name a file inside the folder")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OutsideError(f"'{name}' leads outside the folder; name a file inside it")
    return parts


def read_inside(folder: Path, name: str, limit: int = MAX_BYTES) -> bytes:
    """Return the bytes of ``folder/name``, refusing any symlink or ``..`` on the way.

    Raises OutsideError (leads outside, a symlink, not a plain file, too large)
    or FileNotFoundError.
    """
    parts = _parts(name)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory = getattr(os, "O_DIRECTORY", 0)
    fd = os.open(folder, flags | directory)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, flags | nofollow | (0 if last else directory), dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise OutsideError(
                        f"'{name}' goes through a symbolic link; keep the file itself inside the folder"
                    ) from None
                raise
            os.close(fd)
            fd = nxt
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutsideError(f"'{name}' is not a plain file")
        if info.st_size > limit:
            raise OutsideError(f"'{name}' is larger than {limit // (1024 * 1024)} MB")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise OutsideError(f"'{name}' is larger than {limit // (1024 * 1024)} MB")
        return data
    finally:
        os.close(fd)


def check_inside(folder: Path, name: str) -> str | None:
    """Say what is wrong with ``folder/name`` as a file to use, or None if it can be read."""
    try:
        read_inside(folder, name, limit=MAX_BYTES)
    except OutsideError as exc:
        return str(exc)
    except FileNotFoundError:
        return f"'{name}' not found"
    except OSError as exc:
        return f"'{name}' cannot be read: {exc.strerror or exc}"
    return None
