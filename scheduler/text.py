"""Count a post's length as each platform counts it, and cut posts to fit.

Every platform measures in its own unit and none of them is ``len()``: Bluesky
counts grapheme clusters (and caps UTF-8 bytes), Telegram and Discord count code
points, Mastodon counts graphemes with URLs and remote mentions discounted, and
X weighs characters and URLs by twitter-text's rules (see ``scheduler.xtext``).
A post that a platform counts as too long is rejected, so the counts must be
exact, and fast: they run for every post, platform and attempt to fit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from scheduler import xtext
from scheduler.xtext import MASTODON_URL_LENGTH, mastodon_url_spans

__all__ = [
    "COUNTERS",
    "codepoints",
    "count",
    "graphemes",
    "mastodon_length",
    "split_thread",
    "threads_length",
    "truncate",
    "utf8_bytes",
    "x_weighted_length",
]

ELLIPSIS = "\u2026"
_GRAPHEME = r"\X"
# Characters that can share a grapheme cluster with a neighbour (UAX #29 rules
# GB3, GB6-9c, GB11-13); all others stand alone unless a neighbour is one of these.
_GCB_JOINER = (
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}\p{GCB=RI}"
    r"\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}]+"
)
_BEYOND_U02FF = re.compile(r"[^\x00-\u02ff]")
# Mastodon's Account::MENTION_RE ([[:word:]] spelt out), and twitter-text's
# end_mention_match: a mention followed by an at sign, a Latin accent or "://"
# is no mention.
_WORD = r"\p{L}\p{M}\p{Nd}\p{Pc}"
_MENTION = (
    rf"(?<![=/{_WORD}])@((?i:[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[{_WORD}]+(?:[.-]+[{_WORD}]+)*)?)"
)
_NOT_MENTION_AFTER = (
    r"[@\uff20\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    r"\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff]|://"
)
_URL_PLACEHOLDER = "x" * MASTODON_URL_LENGTH
# Where a thread may break: after a sentence (before the space that follows it, or
# right after CJK full stops, which take no space), and at spaces.
_SENTENCE_END = (
    r"[.!?\u2026\u203c\u2049]+[\"'\u2019\u201d)\]\u00bb]*(?=\s)|[\u3002\uff01\uff1f]+"
    r"[\u300d\u300f\uff09]*|(?=\n)"
)
_WORD_END = r"(?<=\S)(?=\s)|(?<=[\u3001\uff0c\uff1b\uff1a])"
_SUFFIX_DIGITS_MAX = 4


class _Rules:
    """The patterns above that need the regex module (Unicode properties, \\X)."""

    __slots__ = (
        "gcb_joiner",
        "grapheme",
        "mention",
        "not_mention_after",
        "sentence_end",
        "word_end",
    )

    def __init__(self) -> None:
        import regex  # ~20 ms to import, so only when needed

        self.grapheme = regex.compile(_GRAPHEME)
        self.gcb_joiner = regex.compile(_GCB_JOINER)
        self.mention = regex.compile(_MENTION)
        self.not_mention_after = regex.compile(_NOT_MENTION_AFTER)
        self.sentence_end = regex.compile(_SENTENCE_END)
        self.word_end = regex.compile(_WORD_END)


@functools.cache
def _rules() -> _Rules:
    """Compile the regex-module patterns on first need.

    Counting ASCII text needs them only for mentions; splitting and truncating do.
    """
    return _Rules()


@functools.cache
def _joiners() -> re.Pattern[str]:
    """Return a fast `re` class of the BMP's joiners plus every astral character.

    The regex module's property classes cost ~0.1 us a character; a BMP class in
    `re` is a bitmap. Astral characters are all taken as joiners (a superset is
    safe), which keeps emoji inside the windows handed to \\X. Built once, ~25 ms.
    """
    bmp = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x10000)))
    spans = (m.span() for m in _rules().gcb_joiner.finditer(bmp))
    ranges = "".join(rf"\u{ord(bmp[s]):04x}-\u{ord(bmp[e - 1]):04x}" for s, e in spans)
    return re.compile(rf"[{ranges}\U00010000-\U0010ffff]+")


def _graphemes(text: str) -> int:
    """Return graphemes(text), uncached: \\X runs only in windows around joiners."""
    if text.isascii() or not _BEYOND_U02FF.search(text):  # no joiners below U+0300 but CR
        return len(text) - text.count("\r\n")
    total = len(text)
    window = (0, 0)
    for m in _joiners().finditer(text):
        start, stop = max(m.start() - 1, 0), min(m.end() + 1, len(text))
        if start > window[1]:
            total -= _merged(text, *window)
            window = (start, stop)
        else:
            window = (window[0], stop)
    return total - _merged(text, *window)


def _merged(text: str, start: int, stop: int) -> int:
    """Return how many code points of text[start:stop] join the cluster before them."""
    return stop - start - len(_rules().grapheme.findall(text, start, stop)) if stop > start else 0


def codepoints(text: str) -> int:
    """Return the number of Unicode code points, as Telegram and Discord count."""
    return len(text)


def utf8_bytes(text: str) -> int:
    """Return the UTF-8 size in bytes, which Bluesky caps at 3,000 besides graphemes."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _mastodon_length(text: str) -> int:
    """Return mastodon_length(text), uncached; the rewrite mirrors countable_text."""
    if text.isspace() or not text:
        return 0
    entities: list[tuple[int, int, str]] = [
        (start, end, _URL_PLACEHOLDER) for start, end in mastodon_url_spans(text)
    ]
    if "@" in text:
        rules = _rules()
        for m in rules.mention.finditer(text):
            if "@" in m.group(1) and not rules.not_mention_after.match(text, m.end()):
                entities.append((m.start(), m.end(), "@" + m.group(1).split("@", 1)[0]))
    if not entities:
        return _graphemes(text)
    entities.sort()
    parts: list[str] = []
    last = 0
    for start, end, replacement in entities:
        if start < last:  # overlaps a kept entity: Extractor.remove_overlapping_entities
            continue
        parts += (text[last:start], replacement)
        last = end
    parts.append(text[last:])
    return _graphemes("".join(parts))


# A post is measured more than once (before and after fitting it, per attempt);
# the costly counters keep their last answers. truncate and split_thread measure
# many one-off prefixes, so they use the uncached functions.
_cached_graphemes = functools.lru_cache(maxsize=2048)(_graphemes)
_cached_mastodon = functools.lru_cache(maxsize=2048)(_mastodon_length)
_cached_x = functools.lru_cache(maxsize=2048)(xtext.x_weighted_length)


def graphemes(text: str) -> int:
    """Return the number of extended grapheme clusters: what a reader sees as characters.

    Bluesky and Mastodon count these, so a family emoji or a flag is one.
    """
    return _cached_graphemes(text)


def mastodon_length(text: str) -> int:
    """Return the length Mastodon's StatusLengthValidator gives a status text.

    Mastodon counts grapheme clusters after rewriting each http(s) URL it links
    to 23 "x"s and each remote mention "@user@domain" to "@user"; a blank text is
    0. The content warning, which Mastodon adds to the count, is the caller's.
    """
    return _cached_mastodon(text)


def x_weighted_length(text: str) -> int:
    """Return the length X gives a post: twitter-text v3's weightedLength.

    URLs count 23, emoji sequences 2, Latin, Cyrillic and punctuation 1, other
    scripts 2, after NFC normalisation (see scheduler.xtext).
    """
    return _cached_x(text)


@functools.cache
def _emoji() -> tuple[Any, Any]:
    """Return (a pattern that finds emoji, one grapheme cluster), compiled once."""
    import regex

    return (
        regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]"),
        regex.compile(r"\X"),
    )


def threads_length(text: str) -> int:
    """Return the length Threads gives a post: emoji as their UTF-8 bytes, all else 1 each.

    Meta's publishing reference: "For the post character limit, emojis are
    counted as the number of UTF-8 bytes" (limit 500). An emoji is the whole
    grapheme cluster (with its skin tone, ZWJ sequence or variation selector),
    so a family emoji counts 25 and a flag 8; every other code point counts 1.
    """
    emoji, cluster = _emoji()
    if text.isascii() or not emoji.search(text):
        return len(text)
    total = 0
    for match in cluster.finditer(text):
        piece = match.group()
        total += len(piece.encode("utf-8", "surrogatepass")) if emoji.search(piece) else len(piece)
    return total


COUNTERS: dict[str, Callable[[str], int]] = {
    "graphemes": graphemes,
    "codepoints": codepoints,
    "bytes": utf8_bytes,
    "mastodon": mastodon_length,
    "x": x_weighted_length,
    "threads": threads_length,
}


_UNCACHED = {
    **COUNTERS,
    "graphemes": _graphemes,
    "mastodon": _mastodon_length,
    "x": xtext.x_weighted_length,
}


def _measure(counter: str, table: dict[str, Callable[[str], int]]) -> Callable[[str], int]:
    """Return the function of a counter name, or raise ValueError for an unknown one."""
    try:
        return table[counter]
    except KeyError:
        raise ValueError(f"unknown counter {counter!r}; use one of {sorted(table)}") from None


def count(text: str, counter: str) -> int:
    """Return the length of a text in one platform's unit, named as in COUNTERS."""
    return _measure(counter, COUNTERS)(text)


def _last_fitting(candidates: list[int], fits: Callable[[int], bool]) -> int | None:
    """Return the last candidate that fits, by bisection, or None if none does.

    Lengths only grow as a text grows (bar rare URL and grapheme edge cases), so
    bisection finds the longest piece; every answer is checked, so never too long.
    """
    lo, hi = 0, len(candidates)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(candidates[mid]):
            lo = mid + 1
        else:
            hi = mid
    return candidates[lo - 1] if lo else None


def _grapheme_ends(text: str, start: int, end: int) -> list[int]:
    """Return the offsets after each grapheme cluster of text[start:end]."""
    return [m.end() for m in _rules().grapheme.finditer(text, start, end)]


def _with_ellipsis(head: str) -> str:
    """Return head with the ellipsis, kept apart from a trailing URL so it stays a link."""
    head = head.rstrip().rstrip(",;:")
    last_word = head.rsplit(None, 1)[-1] if head.strip() else ""
    return f"{head} {ELLIPSIS}" if "://" in last_word else head + ELLIPSIS


def truncate(text: str, limit: int, counter: str) -> str:
    """Return text cut at a word boundary with "…" appended, counting <= limit.

    A text that fits is returned unchanged. Without a word boundary that fits (a
    very long word, or CJK text without spaces) the cut falls between grapheme
    clusters; if not even "…" fits, the result is empty.
    """
    measure = _measure(counter, _UNCACHED)
    if measure(text) <= limit:
        return text
    stripped = text.rstrip()

    def fits(end: int) -> bool:
        return measure(_with_ellipsis(stripped[:end])) <= limit

    end = _last_fitting([m.start() for m in _rules().word_end.finditer(stripped)], fits)
    if end is None:
        end = _last_fitting(_grapheme_ends(stripped, 0, len(stripped)), fits)
    if end is None:
        return ELLIPSIS if measure(ELLIPSIS) <= limit else ""
    return _with_ellipsis(stripped[:end])


def _breaks(text: str, start: int) -> Iterator[list[int]]:
    """Yield the break offsets after start: sentence ends, word ends, graphemes, code points."""
    rules = _rules()
    yield [m.end() for m in rules.sentence_end.finditer(text, start) if m.end() > start]
    yield [m.start() for m in rules.word_end.finditer(text, start) if m.start() > start]
    yield _grapheme_ends(text, start, len(text))
    yield list(range(start + 1, len(text) + 1))  # splits a cluster: only for tiny limits


def _split(text: str, limit: int, measure: Callable[[str], int], width: int) -> list[str]:
    """Return the parts of text, each fitting with a numbering suffix of width digits."""
    suffix = " " + "9" * width + "/" + "9" * width  # the widest numbering of this width
    parts: list[str] = []
    start = 0
    while True:
        while start < len(text) and text[start].isspace():
            start += 1
        if start >= len(text):
            return parts
        rest = text[start:].rstrip()
        if measure(rest + suffix) <= limit:
            parts.append(rest)
            return parts

        def fits(end: int, start: int = start) -> bool:
            return measure(text[start:end].strip() + suffix) <= limit

        for candidates in _breaks(text, start):
            end = _last_fitting(candidates, fits)
            if end is not None and text[start:end].strip():
                break
        else:
            raise ValueError(f"limit {limit} is too small to hold any text and its numbering")
        parts.append(text[start:end].strip())
        start = end


def split_thread(text: str, limit: int, counter: str) -> list[str]:
    """Return text split into thread parts, each counting <= limit with its " i/N".

    Parts break after sentences where they can, else between words, else between
    grapheme clusters (or code points, if one cluster will not fit), and keep the
    text's order; each ends with its number, as in "... text 1/3". A text that
    fits is returned whole and unnumbered. Raises ValueError if the limit cannot
    hold a character and a numbering.
    """
    measure = _measure(counter, _UNCACHED)
    if measure(text) <= limit:
        return [text]
    for width in range(1, _SUFFIX_DIGITS_MAX + 1):
        parts = _split(text, limit, measure, width)
        if len(parts) < 10**width:
            return [f"{part} {i}/{len(parts)}" for i, part in enumerate(parts, 1)]
    raise ValueError(f"text needs more than {10**_SUFFIX_DIGITS_MAX - 1} parts at limit {limit}")
