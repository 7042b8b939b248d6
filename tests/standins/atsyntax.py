"""atproto string formats, as @atproto/syntax checks them (did, handle, at-uri, datetime...).

Checked against bluesky-social/atproto-interop-tests/syntax in tests/test_standins.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_HANDLE = re.compile(
    r"([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
_NSID_DOMAIN = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_NSID_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9]{0,62}")
_ATURI_CHARS = re.compile(r"[a-zA-Z0-9._~:@!$&')(*+,;=%/-]*")
_ATURI_FRAGMENT = re.compile(r"/[a-zA-Z0-9._~:@!$&')(*+,;=%\[\]/-]*")
_DATETIME = re.compile(
    r"([0-9]{4})-([01][0-9])-([0-3][0-9])T([0-2][0-9]):([0-6][0-9]):([0-6][0-9])"
    r"(\.[0-9]{1,20})?(Z|([+-])([0-2][0-9]):([0-5][0-9]))"
)
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_RECORD_KEY = re.compile(r"[a-zA-Z0-9_~.:-]{1,512}")
_CID = re.compile(r"[a-zA-Z0-9+=]{8,256}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?://)?[^\s/]\S*")
# RFC 5646 well-formed tags; the primary language subtag lower-case, as atproto requires.
_LANGUAGE = re.compile(
    r"(en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn"
    r"|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|no-nyn"
    r"|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang)"
    r"|([a-z]{2,3}(-[a-z]{3}(-[a-z]{3}){0,2})?)(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
    r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(-[0-9A-WY-Za-wy-z](-[A-Za-z0-9]{2,8})+)*"
    r"(-[xX](-[A-Za-z0-9]{1,8})+)?"
    r"|[xX](-[A-Za-z0-9]{1,8})+"
)


def is_did(value: str) -> bool:
    """Return whether value is a syntactically valid DID."""
    return len(value) <= 2048 and _DID.fullmatch(value) is not None


def is_handle(value: str) -> bool:
    """Return whether value is a syntactically valid handle."""
    return len(value) <= 253 and _HANDLE.fullmatch(value) is not None


def is_at_identifier(value: str) -> bool:
    """Return whether value is a DID or a handle."""
    return is_did(value) if value.startswith("did:") else is_handle(value)


def is_nsid(value: str) -> bool:
    """Return whether value is a valid NSID (reversed domain, then a camelCase name)."""
    labels = value.split(".")
    if len(value) > 317 or len(labels) < 3 or not value.isascii():
        return False
    *domain, name = labels
    if domain[0][:1].isdigit() or not _NSID_NAME.fullmatch(name):
        return False
    return all(_NSID_DOMAIN.fullmatch(label) for label in domain)


def is_at_uri(value: str) -> bool:
    """Return whether value is a valid at:// URI (authority, then optional collection and rkey)."""
    uri, hash_, fragment = value.partition("#")
    if "#" in fragment or (hash_ and not _ATURI_FRAGMENT.fullmatch(fragment)):
        return False
    if not _ATURI_CHARS.fullmatch(uri) or len(uri) > 8 * 1024:
        return False
    parts = uri.split("/")
    if len(parts) < 3 or parts[0] != "at:" or parts[1] != "" or len(parts) > 5:
        return False
    if not is_at_identifier(parts[2]):
        return False
    if len(parts) >= 4 and not is_nsid(parts[3]):
        return False
    return len(parts) < 5 or is_record_key(parts[4])


def is_datetime(value: str) -> bool:
    """Return whether value is an atproto datetime: RFC 3339 and ISO 8601, with a zone."""
    m = _DATETIME.fullmatch(value)
    if m is None or len(value) > 64 or value.endswith("-00:00"):
        return False
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:  # 400 years on, the calendar repeats: lets datetime check year 0 too
        local = datetime(year + 400, month, day, hour, minute, second)
    except ValueError:
        return False
    offset = 0
    if m.group(8) != "Z":
        if int(m.group(10)) > 23:
            return False
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * (1 if m.group(9) == "+" else -1)
    return (local - timedelta(minutes=offset)).year >= 400  # not before year 0 in UTC


def is_tid(value: str) -> bool:
    """Return whether value is a timestamp identifier."""
    return _TID.fullmatch(value) is not None


def is_record_key(value: str) -> bool:
    """Return whether value is a valid record key."""
    return value not in (".", "..") and _RECORD_KEY.fullmatch(value) is not None


def is_cid(value: str) -> bool:
    """Return whether value looks like a CID string (CIDv0 "Qm..." is not accepted)."""
    return _CID.fullmatch(value) is not None and not value.startswith("Qm")


def is_language(value: str) -> bool:
    """Return whether value is a well-formed BCP 47 language tag."""
    return _LANGUAGE.fullmatch(value) is not None


def is_uri(value: str) -> bool:
    """Return whether value is a generic URI (scheme, then no whitespace), at most 8 KiB."""
    return len(value) <= 8192 and _URI.fullmatch(value) is not None


# format name -> (check, the lexicon validator's message after the path)
FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "datetime": (is_datetime, "must be an valid atproto datetime (both RFC-3339 and ISO-8601)"),
    "uri": (is_uri, "must be a uri"),
    "at-uri": (is_at_uri, "must be a valid at-uri"),
    "did": (is_did, "must be a valid did"),
    "handle": (is_handle, "must be a valid handle"),
    "at-identifier": (is_at_identifier, "must be a valid did or a handle"),
    "nsid": (is_nsid, "must be a valid nsid"),
    "cid": (is_cid, "must be a cid string"),
    "language": (is_language, "must be a well-formed BCP 47 language tag"),
    "tid": (is_tid, "must be a valid TID (timestamp identifier)"),
    "record-key": (is_record_key, "must be a valid Record Key"),
}
