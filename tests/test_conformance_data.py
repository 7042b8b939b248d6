"""The conformance data the tests use lives in the repository, whole and unchanged.

tests/conformance/MANIFEST.txt lists the sha256 of every file copied from
twitter-text, Bluesky's atproto and atproto-interop-tests (with their licences),
and of what was derived from Bluesky's tests. A clone without ``../shared``
must run every test that reads them: a missing or altered file fails here
instead of silently skipping those tests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "conformance"


def manifest() -> list[tuple[str, str]]:
    lines = (ROOT / "MANIFEST.txt").read_text(encoding="utf-8").splitlines()
    found = []
    for line in lines:
        if line and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            found.append((digest, name))
    return found


def test_every_file_of_the_manifest_is_here_unchanged() -> None:
    listed = manifest()
    assert len(listed) > 50
    for digest, name in listed:
        path = ROOT / name
        assert path.is_file(), f"{name} is missing from tests/conformance"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} was changed"


def test_the_licences_come_with_the_data() -> None:
    for name in (
        "twitter/twitter-text/LICENSE",
        "twitter/twitter-text/conformance/LICENSE",
        "bluesky-social/atproto/LICENSE.txt",
        "bluesky-social/atproto-interop-tests/LICENSE-CC0",
    ):
        assert (ROOT / name).is_file(), name
