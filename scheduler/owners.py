"""Who owns a row in flight, and whether that process still runs."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def owner_alive(owner: str | None) -> bool:
    """Say whether another solidarity process on this host that owns rows still runs.

    Rows of a live owner are its own to settle; only a gone owner's are taken
    over. An owner on another host cannot be checked here (several hosts need
    PostgreSQL and leases), so it is taken for gone.
    """
    host, _, pid_text = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    try:  # a reused pid of an unrelated program is not the owner
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"solidarity" in command or b"scheduler" in command
