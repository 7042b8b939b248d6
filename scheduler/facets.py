"""Detect Bluesky rich-text facets as Bluesky's own client does, and build their records.

A Bluesky post carries its links, mentions and hashtags as facets over UTF-8 byte
ranges of the text (lexicon app.bsky.richtext.facet). Which spans become facets is
decided by the composer, not by the server, so a post reads as if written in the app
only if we find the same spans: the rules here are learned from @atproto/api's
packages/api/src/rich-text/detection.ts and util.ts (bluesky-social/atproto) and
checked against the cases of its rich-text-detection.test.ts; the code is ours.

The regexes are JavaScript ones, so their meaning is spelt out: `\\s` is JavaScript's
whitespace set (Python's has \\x1c-\\x1f and \\x85, lacks \\ufeff), `\\d` is ASCII,
`[a-z]` under /i is `[A-Za-z]` (Python's IGNORECASE adds the Kelvin sign and long s),
`\\b` is ASCII and `$` is the end of the text. Bluesky's quirks are kept on purpose:
a bare domain needs a lower-case listed TLD and no hyphen (`amnesty-intl.org` and
`AMNESTY.ORG` stay plain text), a schemed URL needs a lower-case `http`, and a tag
ends at a zero-width joiner, so inside an emoji sequence.

Two deliberate departures, both where Bluesky would send what no one sees or what the
PDS refuses: a facet overlapping an earlier one is dropped (Bluesky's renderer skips
it; it arises only for `(@handle` or `($TICKER` inside a URL), and a tag over 640
UTF-8 bytes is not detected (Bluesky checks only the 64 graphemes of the lexicon).

Cashtags (`$AAPL`, added to @atproto/api in 2026) have no feature of their own in the
lexicon: Bluesky stores them as #tag features whose tag is `$` plus the upper-cased
ticker. They are kind "cashtag" here so callers can tell them apart; to_record()
writes them as Bluesky does. The TLD list is twitter-text's (2020), bundled in
scheduler/data/twitter_tlds.txt. Bluesky uses the `tlds` npm package, which (at 1.261)
also has amazon, kids, music and spa but lacks ~150 retired TLDs such as onion and
intel, so a bare domain under one of those is linked by one and not the other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import regex

__all__ = [
    "LINK_TYPE",
    "MENTION_TYPE",
    "TAG_MAX_BYTES",
    "TAG_MAX_GRAPHEMES",
    "TAG_TYPE",
    "Facet",
    "FacetKind",
    "detect",
    "to_record",
]

LINK_TYPE = "app.bsky.richtext.facet#link"
MENTION_TYPE = "app.bsky.richtext.facet#mention"
TAG_TYPE = "app.bsky.richtext.facet#tag"
TAG_MAX_GRAPHEMES = 64  # facet.json #tag: maxGraphemes
TAG_MAX_BYTES = 640  # facet.json #tag: maxLength, which lexicons count in UTF-8 bytes

FacetKind = Literal["link", "mention", "tag", "cashtag"]

# JavaScript's \s: WhiteSpace (Zs, tab, VT, FF, BOM) and LineTerminator.
_S = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# What TAG_REGEX treats like a space inside a tag: soft hyphen, zero-width characters
# and the enclosing-circle-backslash mark.
_TAG_CUT = r"\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"

# MENTION_REGEX /(^|\s|\()(@)([a-zA-Z0-9.-]+)(\b)/g
_MENTION = re.compile(rf"(?:^|[{_S}(])@([a-zA-Z0-9.-]+)\b", re.ASCII)
# URL_REGEX /(^|\s|\()((https?:\/\/[\S]+)|((?<domain>[a-z][a-z0-9]*(\.[a-z0-9]+)+)[\S]*))/gim
# (/m only moves ^ past a line break, which \s already admits as the lead-in.)
_LINK = re.compile(
    rf"(?:^|[{_S}(])([hH][tT][tT][pP][sS]?://[^{_S}]+"
    rf"|(?P<domain>[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+)[^{_S}]*)"
)
_LINK_TRAILING = frozenset(".,;:!?")
# TAG_REGEX: a '#' or fullwidth U+FF03 after a space, then a run holding something
# that is neither a digit nor punctuation, not opening with VS16 (keycap emoji #️⃣).
_TAG = regex.compile(
    rf"(?:^|[{_S}])[#\uff03]((?!\ufe0f)[^{_S}{_TAG_CUT}]*"
    rf"[^0-9{_S}\p{{P}}{_TAG_CUT}]+[^{_S}{_TAG_CUT}]*)?"
)
# TRAILING_PUNCTUATION_REGEX /\p{P}+$/u, searched from the end so a long run is linear.
_TAG_TRAILING = regex.compile(r"(?r)\p{P}+\Z")
_GRAPHEME = regex.compile(r"\X")
# CASHTAG_REGEX /(^|\s|\()\$([A-Za-z][A-Za-z0-9]{0,4})(?=\s|$|[.,;:!?)"'\u2019])/gu
_CASHTAG = re.compile(rf"(?:^|[{_S}(])\$([A-Za-z][A-Za-z0-9]{{0,4}})(?=[{_S}.,;:!?)\"'\u2019]|\Z)")
# atproto DID syntax (did:method:identifier), which the mention feature's did must meet.
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_DID_MAX_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class Facet:
    """A detected facet: a UTF-8 byte range of the text and what it means.

    value is the link's URI, the mention's handle (a DID only once resolved by
    to_record), the tag without its '#', or the cashtag as stored ('$' and ticker).
    """

    byte_start: int
    byte_end: int
    kind: FacetKind
    value: str


@functools.cache
def _tlds() -> frozenset[str]:
    """Return the bundled TLD list, read once: the file is data, not code."""
    data = resources.files("scheduler") / "data" / "twitter_tlds.txt"
    lines = data.read_text(encoding="utf-8").splitlines()
    return frozenset(t.strip().lower() for t in lines if t.strip() and not t.startswith("#"))


def _valid_domain(name: str) -> bool:
    """Say whether name ends in '.' and a listed TLD, compared case-sensitively.

    Bluesky's isValidDomain tests the TLDs of a lower-case list with lastIndexOf, so
    'example.COM' is no domain to it; matching that keeps bare upper-case text plain.
    """
    _, dot, tld = name.rpartition(".")
    return bool(dot) and tld in _tlds()


def _utf8_len(text: str) -> int:
    """Return the UTF-8 size; a lone surrogate counts 3 bytes, as TextEncoder's U+FFFD."""
    return len(text.encode("utf-8", "surrogatepass"))


def _graphemes(text: str) -> int:
    """Return the number of extended grapheme clusters, as the lexicon counts them."""
    return len(_GRAPHEME.findall(text))


def _mentions(text: str) -> list[tuple[int, int, FacetKind, str]]:
    """Find @handles whose name ends in a listed TLD or in .test, as Bluesky does."""
    found: list[tuple[int, int, FacetKind, str]] = []
    for m in _MENTION.finditer(text):
        handle = m.group(1)
        if _valid_domain(handle) or handle.endswith(".test"):
            found.append((m.start(1) - 1, m.end(1), "mention", handle))
    return found


def _links(text: str) -> list[tuple[int, int, FacetKind, str]]:
    """Find URLs and bare domains, trimming one trailing mark and an unopened ')'.

    A bare domain is linked with https:// only if its TLD is listed; a match that
    fails is still consumed, so 'website.com.jpg/foo' yields nothing at all.
    """
    found: list[tuple[int, int, FacetKind, str]] = []
    for m in _LINK.finditer(text):
        uri = m.group(1)
        start, end = m.span(1)
        if not uri.startswith("http"):
            domain = m.group("domain")
            if domain is None or not _valid_domain(domain):
                continue
            uri = f"https://{uri}"
        if uri[-1] in _LINK_TRAILING:
            uri, end = uri[:-1], end - 1
        if uri.endswith(")") and "(" not in uri:
            uri, end = uri[:-1], end - 1
        found.append((start, end, "link", uri))
    return found


def _tags(text: str) -> list[tuple[int, int, FacetKind, str]]:
    """Find hashtags, trailing punctuation cut off, within the lexicon's limits."""
    found: list[tuple[int, int, FacetKind, str]] = []
    for m in _TAG.finditer(text):
        tag: str | None = m.group(1)
        if not tag:
            continue
        trailing = _TAG_TRAILING.search(tag)
        if trailing is not None:
            tag = tag[: trailing.start()]
        # len() >= graphemes, so the clusters are only counted for long tags.
        too_long = len(tag) > TAG_MAX_GRAPHEMES and _graphemes(tag) > TAG_MAX_GRAPHEMES
        if not tag or too_long or _utf8_len(tag) > TAG_MAX_BYTES:
            continue
        start = m.start(1) - 1  # the '#' or U+FF03
        found.append((start, start + 1 + len(tag), "tag", tag))
    return found


def _cashtags(text: str) -> list[tuple[int, int, FacetKind, str]]:
    """Find $TICKER cashtags: a letter and up to four letters or digits."""
    return [
        (m.start(1) - 1, m.end(1), "cashtag", "$" + m.group(1).upper())
        for m in _CASHTAG.finditer(text)
    ]


def detect(text: str) -> list[Facet]:
    """Return the facets Bluesky's client finds in text, ordered by byte_start.

    Pure: mentions carry their handle, to be resolved by to_record(). Of overlapping
    facets only the first is kept, since Bluesky's renderer shows no other.
    """
    spans = _mentions(text) + _links(text) + _tags(text) + _cashtags(text)
    spans.sort(key=lambda span: span[0])  # stable: detection order breaks ties
    facets: list[Facet] = []
    cursor = 0  # character index where the last kept facet ends
    for start, end, kind, value in spans:
        if start < cursor:
            continue
        cursor = end
        facets.append(Facet(_utf8_len(text[:start]), _utf8_len(text[:end]), kind, value))
    return facets


def _feature(facet: Facet, did: str | None) -> dict[str, Any]:
    """Return the lexicon feature for facet, checking what the PDS would refuse."""
    if facet.kind == "link":
        return {"$type": LINK_TYPE, "uri": facet.value}
    if facet.kind == "mention":
        if did is None or len(did) > _DID_MAX_LENGTH or not _DID.fullmatch(did):
            raise ValueError(f"resolver gave {did!r} for @{facet.value}, not a DID")
        return {"$type": MENTION_TYPE, "did": did}
    tag = facet.value
    if _utf8_len(tag) > TAG_MAX_BYTES or _graphemes(tag) > TAG_MAX_GRAPHEMES:
        raise ValueError(
            f"tag {tag!r} exceeds {TAG_MAX_GRAPHEMES} graphemes or {TAG_MAX_BYTES} bytes"
        )
    return {"$type": TAG_TYPE, "tag": tag}


def to_record(
    facets: Sequence[Facet], resolve: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Return the facets as app.bsky.richtext.facet JSON, mentions resolved to DIDs.

    resolve maps a handle to its DID, or None (or "") if it has none; such mentions
    are dropped, as bsky.app drops the empty DIDs @atproto/api leaves. Each handle is
    resolved once, and whatever resolve raises propagates, so a caller can retry a
    network failure instead of posting without the mention.
    """
    dids: dict[str, str | None] = {}
    records: list[dict[str, Any]] = []
    for facet in facets:
        if not 0 <= facet.byte_start <= facet.byte_end:
            raise ValueError(f"bad byte range {facet.byte_start}..{facet.byte_end}")
        did = None
        if facet.kind == "mention":
            if facet.value not in dids:
                dids[facet.value] = resolve(facet.value)
            did = dids[facet.value]
            if not did:
                continue
        index = {"byteStart": facet.byte_start, "byteEnd": facet.byte_end}
        records.append({"index": index, "features": [_feature(facet, did)]})
    return records
