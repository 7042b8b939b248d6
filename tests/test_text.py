"""Tests for scheduler.text and scheduler.xtext: platform lengths, truncation, threads.

X's counting is checked against twitter-text's own conformance files, read from
tests/conformance (copied with its licence; see tests/conformance/MANIFEST.txt).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import regex
import yaml

from scheduler import text, xtext
from scheduler.text import (
    codepoints,
    count,
    graphemes,
    mastodon_length,
    split_thread,
    truncate,
    utf8_bytes,
    x_weighted_length,
)

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
TWITTER_TEXT = CONFORMANCE / "twitter" / "twitter-text"
MISSING = f"twitter-text conformance data not found at {TWITTER_TEXT} (tests/conformance is part of the repository)"

# validate.yml sections that use config v3 (emoji parsing on), which X uses today.
V3_SECTIONS = (
    "WeightedTweetsWithDiscountedEmojiCounterTest",
    "UnicodeDirectionalMarkerCounterTest",
)
URL_SECTIONS = (
    "urls",
    "urls_with_indices",
    "urls_with_directional_markers",
    "tco_urls_with_params",
)


def _conformance(filename: str, sections: tuple[str, ...]) -> list[Any]:
    """Return pytest params for the cases of some sections of a conformance file."""
    path = TWITTER_TEXT / "conformance" / filename
    if not path.is_file():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING), id="missing")]
    tests = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
    return [
        pytest.param(section, case, id=f"{section}: {case['description']}"[:120])
        for section in sections
        for case in tests[section]
    ]


# --- X (twitter-text config v3) ---------------------------------------------------


@pytest.mark.parametrize(("section", "case"), _conformance("validate.yml", V3_SECTIONS))
def test_x_conformance(section: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    parsed = xtext.x_parse(case["text"])
    got = {
        "weightedLength": parsed.weighted_length,
        "valid": parsed.valid,
        "permillage": parsed.permillage,
        "displayRangeStart": parsed.display_range_start,
        "displayRangeEnd": parsed.display_range_end,
        "validRangeStart": parsed.valid_range_start,
        "validRangeEnd": parsed.valid_range_end,
    }
    assert {k: got[k] for k in expected} == expected
    assert x_weighted_length(case["text"]) == expected["weightedLength"]
    assert count(case["text"], "x") == expected["weightedLength"]


@pytest.mark.parametrize(("section", "case"), _conformance("extract.yml", URL_SECTIONS))
def test_x_url_extraction_conformance(section: str, case: dict[str, Any]) -> None:
    spans = xtext.x_url_spans(case["text"])
    got: list[Any] = [case["text"][s:e] for s, e in spans]
    if case["expected"] and isinstance(case["expected"][0], dict):
        got = [{"url": url, "indices": [s, e]} for url, (s, e) in zip(got, spans, strict=True)]
    assert got == case["expected"]


@pytest.mark.skipif(not TWITTER_TEXT.is_dir(), reason=MISSING)
@pytest.mark.parametrize("section", ["country", "generic"])
def test_x_url_extraction_on_every_tld(section: str) -> None:
    path = TWITTER_TEXT / "conformance" / "tlds.yml"
    cases = yaml.safe_load(path.read_text(encoding="utf-8"))["tests"][section]
    failures = [c["text"] for c in cases if xtext.extract_urls(c["text"]) != c["expected"]]
    assert failures == []
    assert len(cases) > 250


@pytest.mark.skipif(not TWITTER_TEXT.is_dir(), reason=MISSING)
def test_bundled_tlds_match_twitter_text() -> None:
    tld_lib = yaml.safe_load((TWITTER_TEXT / "conformance" / "tld_lib.yml").read_text("utf-8"))
    bundled = Path(xtext.__file__).with_name("data") / "twitter_tlds.txt"
    lines = bundled.read_text(encoding="utf-8").splitlines()
    assert {t for t in lines if t and not t.startswith("#")} == {
        *tld_lib["generic"],
        *tld_lib["country"],
    }


# twitter-text's TLD rule tries the longest listed TLD after the last dot, then backtracks
# to shorter ones and earlier dots; ASCII letters match in either case, others only as
# listed; a TLD must not run on into [0-9A-Za-z@+-]. The last label before it has no "_".
TLD_CASES = [
    # text, URLs X extracts, URLs Mastodon counts
    ("http://example.com.notatld", ["http://example.com"], ["http://example.com"]),
    ("see www.example.comfoo now", [], []),
    ("see example.com.au/path", ["example.com.au/path"], []),
    ("x.com.com.comx y.co.co", ["x.com.com", "y.co.co"], []),
    ("http://example.co.ukx.org", ["http://example.co.ukx.org"], ["http://example.co.ukx.org"]),
    ("https://example.com1 https://example.co-op https://example.org+1", [], []),
    ("https://example.comé/x", ["https://example.com"], ["https://example.com"]),
    (
        "https://example.Vermögensberater",
        ["https://example.Vermögensberater"],
        ["https://example.Vermögensberater"],
    ),
    ("https://example.VERMÖGENSBERATER", [], []),
    ("https://example.vermögensberaterx", [], []),
    ("http://例え.みんなです", ["http://例え.みんな"], ["http://例え.みんな"]),
    ("http://example.рф/путь", ["http://example.рф/путь"], ["http://example.рф/путь"]),
    ("http://example.РФ", [], []),
    ("https://sub_x.example.com", ["https://sub_x.example.com"], ["https://sub_x.example.com"]),
    ("https://x.a_b.com", [], []),
    (
        "https://example.xn--p1ai/path",
        ["https://example.xn--p1ai/path"],
        ["https://example.xn--p1ai/path"],
    ),
    ("example.xn--p1ai", ["example.xn--p1ai"], []),
    ('"example.com"', ["example.com"], []),
    (
        "http://example.com:8080/a?b=c",
        ["http://example.com:8080/a?b=c"],
        ["http://example.com:8080/a?b=c"],
    ),
    ("https://t.co/abc?x=1", ["https://t.co/abc?x=1"], ["https://t.co/abc"]),
]


@pytest.mark.parametrize(("post", "x_urls", "mastodon_urls"), TLD_CASES)
def test_url_tld_backtracking(post: str, x_urls: list[str], mastodon_urls: list[str]) -> None:
    assert xtext.extract_urls(post) == x_urls
    assert [post[s:e] for s, e in xtext.mastodon_url_spans(post)] == mastodon_urls


X_CASES = [
    ("", 0),
    ("hello", 5),
    ("Fatimə Movlamlı", 15),  # Latin Extended weighs 1
    ("Свобода", 7),  # Cyrillic weighs 1
    ("自由", 4),  # CJK weighs 2
    ("\u2014 \u201cquoted\u201d", 10),  # general punctuation weighs 1
    ("\u2026", 2),  # the ellipsis is outside the light ranges
    ("e\u0301", 1),  # NFC: e + combining acute is é
    ("🕊️", 2),  # pictograph + VS16 is one emoji
    ("🏳️‍🌈", 2),  # ZWJ sequence
    ("🇦🇿", 2),  # flag
    ("👍🏽", 2),  # skin tone
    ("#️⃣ 1⃣", 5),  # keycaps, with and without VS16
    ("©", 1),  # text-style (c) is no emoji
    ("©️", 2),
    ("❤️‍🔥", 2),  # Emoji 13.1, newer than twemoji-parser 12: every ZWJ chain counts as one
    ("see https://example.org/a/very/long/path/that/goes/on", 27),
    ("see example.org", 27),  # no protocol, known TLD
    ("see example.invalidtld", 22),  # unknown TLD: not a URL
    ("mail me at someone@example.org", 30),  # e-mail address: not a URL
    ("http://t.co/abc https://t.co/abc", 47),
    ("see http://example.com/a,(x)", 4 + 23 + 4),  # JS path rule: "(x)" after "," is left out
]


@pytest.mark.parametrize(("post", "expected"), X_CASES)
def test_x_weighted_length(post: str, expected: int) -> None:
    assert x_weighted_length(post) == expected
    assert xtext.x_parse(post).weighted_length == expected


def test_x_parse_agrees_with_fast_path() -> None:
    samples = [post for post, _ in X_CASES] + [
        "Ünïcödé ✊🏿 and 👨‍👩‍👧‍👦 at https://amnesty.org/en/ — 自由 Свобода.",
        "x" * 300 + " https://example.org",
    ]
    for sample in samples:
        assert xtext.x_parse(sample).weighted_length == x_weighted_length(sample), sample


# --- Mastodon -------------------------------------------------------------------

MASTODON_CASES = [
    ("", 0),
    ("   \n", 0),  # blank statuses count 0
    ("Free Fatimə Movlamlı", 20),
    ("Azərbaycan jurnalistləri", 24),
    ("https://example.org/" + "a" * 100, 23),
    ("read https://example.org/x?y=1.", 5 + 23 + 1),  # the trailing dot is not linked
    ("(https://example.org/path)", 25),
    ("http://example.com/a,(x)", 23),  # Ruby's path rule keeps "(x)"
    ("HTTPS://EXAMPLE.ORG", 23),
    ("www.example.org/" + "a" * 30, 46),  # no protocol: not linked, counted in full
    ("ftp://example.org/file", 22),
    ("https://t.co/abcdef", 23),
    ("@alice@mastodon.social", 6),
    ("Thanks @alice@mastodon.social and @bob!", 7 + 6 + 5 + 5),
    ("@alice@mastodon.social@x", 24),  # followed by an at sign: no mention
    ("write to alice@mastodon.social", 30),  # e-mail address: no mention
    ("cc @Fatima_M@bsky.brid.gy", 3 + 9),
    ("👨‍👩‍👧‍👦🇦🇿✊🏿", 3),
    ("e\u0301", 1),
    ("#FreeFatima https://amnesty.org/en 🕊️ @ai@mastodon.social", 12 + 23 + 1 + 1 + 1 + 3),
]


@pytest.mark.parametrize(("status", "expected"), MASTODON_CASES)
def test_mastodon_length(status: str, expected: int) -> None:
    assert mastodon_length(status) == expected
    assert count(status, "mastodon") == expected


def test_mastodon_validator_spec_examples() -> None:
    # From Mastodon's spec/validators/status_length_validator_spec.rb: both are 500 or less.
    url = "a" * 476 + " http://" + "b" * 30 + ".com/example"
    assert mastodon_length(url) == 476 + 1 + 23
    mention = "a" * 475 + " @alice@" + "b" * 30 + ".com"
    assert mastodon_length(mention) == 475 + 1 + 6


# Mastodon's query characters: ASCII ones and RFC 3987 ucschar and iprivate (its UCHARS).
@pytest.mark.parametrize(
    ("char", "in_query"),
    [
        ("\x9f", False),
        ("\xa0", True),
        ("\ud7ff", True),
        ("\ud800", False),
        ("\ue000", True),
        ("\ufdcf", True),
        ("\ufdd0", False),
        ("\ufdef", False),
        ("\ufdf0", True),
        ("\uffef", True),
        ("\ufff0", False),
        ("\U0001fffd", True),
        ("\U0001fffe", False),
        ("\U000e0fff", False),
        ("\U000e1000", True),
        ("\U0010fffd", True),
        ("\U0010ffff", False),
    ],
    ids=ascii,
)
def test_mastodon_query_characters(char: str, in_query: bool) -> None:
    url = f"https://example.org/a?q={char}x"
    end = len(url) if in_query else url.index(char)
    assert xtext.mastodon_url_spans(url) == [(0, end)]


def test_counting_ascii_needs_no_regex_module() -> None:
    # The CLI counts posts in a fresh process: the regex module takes ~20 ms to import,
    # so URLs and ASCII text are counted without it (see scheduler.xtext and .text).
    code = (
        "import sys; from scheduler import text; "
        "text.mastodon_length('see https://example.org/a?b=1 now'); "
        "text.x_weighted_length('see example.org and https://t.co/abc now'); "
        "assert 'regex' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- graphemes, code points, bytes ---------------------------------------------

UNIT_CASES = [
    # text, graphemes, code points, UTF-8 bytes
    ("", 0, 0, 0),
    ("hello", 5, 5, 5),
    ("a\r\nb", 3, 4, 4),
    ("Fatimə Movlamlı", 15, 15, 17),
    ("e\u0301", 1, 2, 3),
    ("👍🏽", 1, 2, 8),
    ("👨‍👩‍👧‍👦", 1, 7, 25),
    ("🇦🇿🇺🇦", 2, 4, 16),
    ("🏴󠁧󠁢󠁳󠁣󠁴󠁿", 1, 7, 28),
    ("自由", 2, 2, 6),
    ("नमस्ते", 3, 6, 18),
]


@pytest.mark.parametrize(("sample", "n_graphemes", "n_codepoints", "n_bytes"), UNIT_CASES)
def test_units(sample: str, n_graphemes: int, n_codepoints: int, n_bytes: int) -> None:
    assert graphemes(sample) == count(sample, "graphemes") == n_graphemes
    assert codepoints(sample) == count(sample, "codepoints") == n_codepoints
    assert utf8_bytes(sample) == count(sample, "bytes") == n_bytes


def test_graphemes_agree_with_regex_x() -> None:
    # graphemes() only runs \\X around joining characters; mixes of joiners must agree.
    pieces = ["a", "\r", "\n", "e", "\u0301", "ə", " ", "👨", "\u200d", "👩", "🏽", "\ufe0f"]
    pieces += ["🇦", "🇿", "🏴", "\U000e0067", "\U000e007f", "ᄀ", "ᅡ", "ᆨ", "각", "न", "्", "त"]
    pieces += ["\u0600", "ก", "ำ", "\u0903", "自"]
    rng = random.Random(20240501)
    samples = ["".join(rng.choices(pieces, k=rng.randint(0, 12))) for _ in range(3000)]
    for sample in samples + [post for post, _ in X_CASES]:
        assert graphemes(sample) == len(regex.findall(r"\X", sample)), ascii(sample)


def test_unknown_counter() -> None:
    with pytest.raises(ValueError, match="unknown counter"):
        count("text", "characters")
    with pytest.raises(ValueError):
        truncate("text", 2, "nope")
    with pytest.raises(ValueError):
        split_thread("text", 2, "nope")


# --- truncate and split_thread ----------------------------------------------------

COUNTERS = sorted(text.COUNTERS)
LONG_POSTS = [
    "Fatimə Movlamlı has spent 400 days in pre-trial detention in Baku for her reporting. "
    "Her trial resumes on Monday. Write to the authorities today: https://amnesty.org/en/act "
    "and share this with @amnesty@mastodon.social. #FreeFatima 🕊️ Every voice counts!",
    "Journalists are not criminals. " * 20,
    "故人西辞黄鹤楼，烟花三月下扬州。孤帆远影碧空尽，唯见长江天际流。" * 8,
    "Свобода журналистам! Они сидят в тюрьме за свою работу. " * 10,
    "a" * 700,  # one long word: only hard cuts are possible
    "Line one.\nLine two is here.\n\nA new paragraph 👨‍👩‍👧‍👦 with emoji 🇦🇿. " * 6,
]


def _squash(s: str) -> str:
    return "".join(s.split())


@pytest.mark.parametrize("counter", COUNTERS)
@pytest.mark.parametrize("post", LONG_POSTS, ids=lambda p: p[:20])
@pytest.mark.parametrize("limit", [40, 100, 280])
def test_truncate_fits_and_is_a_prefix(post: str, limit: int, counter: str) -> None:
    cut = truncate(post, limit, counter)
    if count(post, counter) <= limit:
        assert cut == post
        return
    assert count(cut, counter) <= limit
    assert cut.endswith("\u2026")
    head = _squash(cut.removesuffix("\u2026"))
    assert _squash(post).startswith(head)
    assert len(head) > 0


TRUNCATE_CASES = [
    ("fits as it is", 20, "codepoints", "fits as it is"),
    ("cut at a word boundary please", 15, "codepoints", "cut at a word\u2026"),
    ("no, commas: dangling", 12, "codepoints", "no, commas\u2026"),
    ("averyveryverylongword", 8, "codepoints", "averyve\u2026"),
    (
        "read https://example.org/a/b and more words here",
        30,
        "mastodon",
        "read https://example.org/a/b \u2026",
    ),
    ("👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦", 2, "graphemes", "👨‍👩‍👧‍👦\u2026"),
    ("anything", 0, "codepoints", ""),
    ("anything", 1, "codepoints", "\u2026"),
    ("自由自由", 7, "x", "自由\u2026"),  # CJK weighs 2, and so does the ellipsis
    ("自由自由", 5, "x", "自\u2026"),
]


@pytest.mark.parametrize(("post", "limit", "counter", "expected"), TRUNCATE_CASES)
def test_truncate(post: str, limit: int, counter: str, expected: str) -> None:
    assert truncate(post, limit, counter) == expected


def _check_thread(post: str, parts: list[str], limit: int, counter: str) -> None:
    n = len(parts)
    assert n >= 2
    bodies = []
    for i, part in enumerate(parts, 1):
        assert count(part, counter) <= limit, (i, part)
        assert part.endswith(f" {i}/{n}")
        bodies.append(part.removesuffix(f" {i}/{n}"))
        assert bodies[-1].strip()
    assert _squash("".join(bodies)) == _squash(post)  # order kept, nothing lost


@pytest.mark.parametrize("counter", COUNTERS)
@pytest.mark.parametrize("post", LONG_POSTS, ids=lambda p: p[:20])
@pytest.mark.parametrize("limit", [30, 100, 280])
def test_split_thread(post: str, limit: int, counter: str) -> None:
    parts = split_thread(post, limit, counter)
    if count(post, counter) <= limit:
        assert parts == [post]
    else:
        _check_thread(post, parts, limit, counter)


def test_split_thread_prefers_sentences_then_words() -> None:
    post = "First sentence here. Second one is a little longer. Third."
    assert split_thread(post, 40, "codepoints") == [
        "First sentence here. 1/3",
        "Second one is a little longer. 2/3",
        "Third. 3/3",
    ]
    words = "one two three four five six seven eight nine ten"
    assert split_thread(words, 20, "codepoints") == [
        "one two three 1/4",
        "four five six 2/4",
        "seven eight nine 3/4",
        "ten 4/4",
    ]


def test_split_thread_keeps_fitting_text_whole() -> None:
    assert split_thread("  short, with spaces  ", 280, "x") == ["  short, with spaces  "]


def test_split_thread_numbers_past_nine() -> None:
    post = "Free them all now. " * 60
    parts = split_thread(post, 40, "graphemes")
    assert len(parts) >= 10
    assert parts[-1].endswith(f" {len(parts)}/{len(parts)}")
    _check_thread(post, parts, 40, "graphemes")


def test_split_thread_keeps_urls_whole() -> None:
    url = "https://amnesty.org/en/latest/news/2024/free-the-journalists"
    post = ("Please read and share this report. " * 5 + url + " ") * 3
    parts = split_thread(post, 120, "x")
    _check_thread(post, parts, 120, "x")
    assert sum(p.count(url) for p in parts) == 3


def test_split_thread_limit_too_small() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_thread("some words that do not fit", 4, "codepoints")
