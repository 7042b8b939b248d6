"""Tests for scheduler.facets: Bluesky rich-text facet detection and facet records.

Detection is checked against the cases of Bluesky's own rich-text-detection.test.ts,
copied into tests/conformance with their licences (tests/conformance/MANIFEST.txt),
and every record built is checked against the facet lexicon stored there too.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import regex

from scheduler.facets import (
    LINK_TYPE,
    MENTION_TYPE,
    TAG_TYPE,
    Facet,
    detect,
    to_record,
)

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
CASES = CONFORMANCE / "derived" / "bluesky-social" / "atproto" / "rich-text-detection.cases.json"
LEXICONS = CONFORMANCE / "bluesky-social" / "atproto" / "lexicons"
FACET_LEXICON = LEXICONS / "app" / "bsky" / "richtext" / "facet.json"
DID_SYNTAX = CONFORMANCE / "bluesky-social" / "atproto-interop-tests" / "syntax"
SECTIONS = ("detectFacets_segments", "tags", "cashtags")
MISSING = f"Bluesky conformance data not found under {CONFORMANCE} (tests/conformance is part of the repository)"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f467"  # 1 grapheme, 25 bytes
DOVE = "\U0001f54a\ufe0f"  # 1 grapheme, 7 bytes
FLAG_AZ = "\U0001f1e6\U0001f1ff"  # 1 grapheme, 8 bytes
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # 28 bytes


def fake_did(handle: str) -> str:
    """Resolve as Bluesky's test agent does, so the cases' DIDs come out."""
    return f"did:fake:{handle}"


@cache
def _cases() -> dict[str, Any]:
    """Return the extracted cases, read once."""
    data: dict[str, Any] = json.loads(CASES.read_text(encoding="utf-8"))
    return data


def _params(section: str) -> list[Any]:
    """Return one pytest param per case of section, or one skipped if the data is absent."""
    if not CASES.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    cases = _cases()[section]
    return [pytest.param(case, id=f"{section}-{i:02d}") for i, case in enumerate(cases)]


@cache
def _lexicon() -> dict[str, Any]:
    """Return facet.json's defs."""
    defs: dict[str, Any] = json.loads(FACET_LEXICON.read_text(encoding="utf-8"))["defs"]
    return defs


_DID = regex.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_URI = regex.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


def assert_lexicon_valid(record: list[dict[str, Any]], text: str) -> None:
    """Check facet records against facet.json's constraints and the text they index."""
    if not FACET_LEXICON.is_file():
        pytest.skip(MISSING)
    defs = _lexicon()
    size = len(text.encode("utf-8"))
    previous_end = 0
    for facet in record:
        assert set(facet) == set(defs["main"]["required"])
        index = facet["index"]
        assert set(index) == set(defs["byteSlice"]["required"])
        start, end = index["byteStart"], index["byteEnd"]
        for key, value in index.items():
            assert type(value) is int
            assert value >= defs["byteSlice"]["properties"][key]["minimum"]
        assert previous_end <= start <= end <= size, "sorted, disjoint and inside the text"
        text.encode("utf-8")[start:end].decode("utf-8")  # raises if a character is cut
        previous_end = end
        refs = defs["main"]["properties"]["features"]["items"]["refs"]
        assert len(facet["features"]) == 1
        for feature in facet["features"]:
            ref = feature["$type"].removeprefix("app.bsky.richtext.facet")
            assert ref in refs
            spec = defs[ref[1:]]
            assert set(feature) == {"$type", *spec["required"]}
            for name, prop in spec["properties"].items():
                value = feature[name]
                assert prop["type"] == "string" and isinstance(value, str)
                assert len(value.encode("utf-8")) <= prop.get("maxLength", len(value) * 4)
                graphemes = len(regex.findall(r"\X", value))
                assert graphemes <= prop.get("maxGraphemes", graphemes)
                pattern = {"did": _DID, "uri": _URI}.get(prop.get("format", ""))
                assert pattern is None or pattern.fullmatch(value), (name, value)


def test_cases_file_has_only_known_sections() -> None:
    if not CASES.is_file():
        pytest.skip(MISSING)
    assert set(_cases()) - {"_source", "_license"} == set(SECTIONS)


def segments(text: str, record: list[dict[str, Any]]) -> list[list[str]]:
    """Split text as RichText.segments() does, each faceted part with its DID or URI."""
    data = text.encode("utf-8")
    if not record:
        return [[text]]
    out: list[list[str]] = []
    cursor = 0
    for facet in record:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        if cursor < start:
            out.append([data[cursor:start].decode("utf-8")])
        elif cursor > start:
            continue
        if start < end:
            part = data[start:end].decode("utf-8")
            feature = facet["features"][0]
            value = feature.get("did") or feature.get("uri") or ""
            out.append([part, value] if part.strip() else [part])
        cursor = end
    if cursor < len(data):
        out.append([data[cursor:].decode("utf-8")])
    return out


@pytest.mark.parametrize("case", _params("detectFacets_segments"))
def test_detect_facets_segments(case: dict[str, Any]) -> None:
    text = case["text"]
    facets = detect(text)
    record = to_record(facets, fake_did)
    assert segments(text, record) == case["segments"]
    got = [
        (f.kind, fake_did(f.value) if f.kind == "mention" else f.value, f.byte_start, f.byte_end)
        for f in facets
    ]
    want = [(f["kind"], f["value"], f["byteStart"], f["byteEnd"]) for f in case["facets"]]
    assert got == want
    for f in case["facets"]:
        assert text.encode("utf-8")[f["byteStart"] : f["byteEnd"]].decode("utf-8") == f["text"]
    assert_lexicon_valid(record, text)


@pytest.mark.parametrize("case", [*_params("tags"), *_params("cashtags")])
def test_detect_tags_and_cashtags(case: dict[str, Any]) -> None:
    # As the upstream test: tag values of tag features, indices of every facet.
    record = to_record(detect(case["text"]), fake_did)
    tags = [f["features"][0]["tag"] for f in record if f["features"][0]["$type"] == TAG_TYPE]
    assert tags == case["tags"]
    assert [f["index"] for f in record] == case["indices"]
    assert_lexicon_valid(record, case["text"])


def _tag(start: int, end: int, tag: str) -> dict[str, Any]:
    return {
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": TAG_TYPE, "tag": tag}],
    }


def _link(start: int, end: int, uri: str) -> dict[str, Any]:
    return {
        "index": {"byteStart": start, "byteEnd": end},
        "features": [{"$type": LINK_TYPE, "uri": uri}],
    }


def _mention(start: int, end: int, did: str) -> dict[str, Any]:
    feature = {"$type": MENTION_TYPE, "did": did}
    return {"index": {"byteStart": start, "byteEnd": end}, "features": [feature]}


HANDLES = {"fatime.bsky.social": "did:plc:fatime", "nobody.example.com": None}

# text, the spans' texts, the expected record (resolving through HANDLES).
RECORD_CASES: list[tuple[str, list[str], list[dict[str, Any]]]] = [
    ("", [], []),
    (f"{DOVE} #FreeFatimə", ["#FreeFatimə"], [_tag(8, 20, "FreeFatimə")]),
    (
        "Fatimə İsmayılova: https://amnesty.org/az.",
        ["https://amnesty.org/az"],
        [_link(22, 44, "https://amnesty.org/az")],
    ),
    (
        f"{FAMILY} #ailə @fatime.bsky.social",
        ["#ailə", "@fatime.bsky.social"],
        [_tag(26, 32, "ailə"), _mention(33, 52, "did:plc:fatime")],
    ),
    (
        "cc @nobody.example.com @fatime.bsky.social",
        ["@fatime.bsky.social"],
        [_mention(23, 42, "did:plc:fatime")],
    ),
    (
        "Azadlıq! $aapl və amnesty.org",
        ["$aapl", "amnesty.org"],
        [_tag(10, 15, "$AAPL"), _link(20, 31, "https://amnesty.org")],
    ),
    ("##Azərbaycan", ["##Azərbaycan"], [_tag(0, 13, "#Azərbaycan")]),
]


@pytest.mark.parametrize(("text", "spans", "want"), RECORD_CASES)
def test_to_record(text: str, spans: list[str], want: list[dict[str, Any]]) -> None:
    record = to_record(detect(text), HANDLES.get)
    assert record == want
    data = text.encode("utf-8")
    got = [data[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in record]
    assert got == spans
    assert_lexicon_valid(record, text)


def test_to_record_resolves_each_handle_once() -> None:
    calls: list[str] = []

    def resolve(handle: str) -> str | None:
        calls.append(handle)
        return HANDLES.get(handle)

    text = "@fatime.bsky.social @nobody.example.com @fatime.bsky.social @nobody.example.com"
    assert len(to_record(detect(text), resolve)) == 2
    assert calls == ["fatime.bsky.social", "nobody.example.com"]


def test_to_record_drops_empty_did_and_lets_resolver_errors_through() -> None:
    facets = detect("hi @fatime.bsky.social")
    assert to_record(facets, lambda handle: "") == []

    def offline(handle: str) -> str | None:
        raise ConnectionError(handle)

    with pytest.raises(ConnectionError):
        to_record(facets, offline)


def _did_lines(name: str) -> list[str]:
    if not (DID_SYNTAX / name).is_file():
        return []
    lines = (DID_SYNTAX / name).read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def test_to_record_accepts_only_did_syntax() -> None:
    valid, invalid = _did_lines("did_syntax_valid.txt"), _did_lines("did_syntax_invalid.txt")
    if not valid or not invalid:
        pytest.skip(MISSING)
    facets = detect("@fatime.bsky.social")
    for did in valid:
        assert to_record(facets, {"fatime.bsky.social": did}.get)[0]["features"][0]["did"] == did
    for did in invalid:
        with pytest.raises(ValueError, match="not a DID"):
            to_record(facets, {"fatime.bsky.social": did}.get)


@pytest.mark.parametrize(
    "facet",
    [
        Facet(5, 4, "link", "https://example.org"),
        Facet(-1, 4, "link", "https://example.org"),
        Facet(0, 66, "tag", "a" * 65),
        Facet(0, 651, "tag", FAMILY * 26),
    ],
)
def test_to_record_refuses_what_the_lexicon_forbids(facet: Facet) -> None:
    with pytest.raises(ValueError):
        to_record([facet], fake_did)


@pytest.mark.parametrize(
    ("tag", "kept"),
    [
        ("ə" * 64, True),  # 64 graphemes, 128 bytes
        ("ə" * 65, False),
        (FLAG_AZ * 64, True),  # 64 graphemes though 128 code points
        (FLAG_AZ * 65, False),
        ("a" * 63 + FLAG_AZ, True),
        (ENGLAND * 22, True),  # 616 bytes
        (ENGLAND * 23, False),  # 23 graphemes but 644 bytes: over maxLength 640
    ],
)
def test_tag_limits_follow_the_lexicon(tag: str, kept: bool) -> None:
    text = f"Azadlıq #{tag} indi"
    record = to_record(detect(text), fake_did)
    assert [f["features"][0]["tag"] for f in record] == ([tag] if kept else [])
    assert_lexicon_valid(record, text)


# Bluesky's behaviour beyond its own tests, kept on purpose (see the module docstring).
QUIRKS: list[tuple[str, list[tuple[str, str]]]] = [
    ("amnesty-intl.org", []),  # no hyphen in a bare domain
    ("AMNESTY.ORG", []),  # TLDs compared in lower case only
    ("Amnesty.org", [("link", "https://Amnesty.org")]),
    ("Https://amnesty.org", []),  # the scheme must be written 'http'
    ("write to someone@amnesty.org", []),  # neither a mention nor a link
    ("bsky.app/profile#header", [("link", "https://bsky.app/profile#header")]),
    ("I like #turtles!!!", [("tag", "turtles")]),
    (f"#ailə{FAMILY}", [("tag", "ailə\U0001f468")]),  # a tag ends at a zero-width joiner
    ("a\x85#tag", []),  # NEL is whitespace to Python, not to JavaScript
    ("a\u3000#tag \ufeff#bom", [("tag", "tag"), ("tag", "bom")]),
    ("raised $100 or $5", []),
    (
        "see https://example.com/(@fatime.bsky.social)",  # overlap: the link wins
        [("link", "https://example.com/(@fatime.bsky.social)")],
    ),
]


@pytest.mark.parametrize(("text", "want"), QUIRKS)
def test_detect_matches_bluesky_quirks(text: str, want: list[tuple[str, str]]) -> None:
    assert [(f.kind, f.value) for f in detect(text)] == want
