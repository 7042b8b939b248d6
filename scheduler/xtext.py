"""Find URLs as twitter-text does, and weigh a post as X counts it.

X counts a post with twitter-text's config v3: Latin, Cyrillic and general
punctuation weigh 1, other characters 2, every emoji sequence 2, and every URL
its extractor finds 23 (t.co rewrites them all to one length). Mastodon links
URLs with the same grammar under its own path rules, so both flavours of the
extractor live here.

The grammar is learned from twitter-text's JavaScript (js/src/regexp/*, v3.1)
and Ruby (rb/lib/twitter-text/regex.rb) sources and Mastodon's
config/initializers/twitter_regex.rb; the code is ours. Letters are matched
ASCII-case-insensitively by explicit classes, as JavaScript's /i does (Python's
re.IGNORECASE would also put dotless i and long s in [a-z], and is twice as slow).
The TLD list is bundled in ``scheduler/data/twitter_tlds.txt``.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import NamedTuple, TypeAlias

import regex

__all__ = [
    "MASTODON_URL_LENGTH",
    "X_MAX_LENGTH",
    "X_URL_LENGTH",
    "XParse",
    "extract_urls",
    "mastodon_url_spans",
    "x_parse",
    "x_url_spans",
    "x_weighted_length",
]

X_MAX_LENGTH = 280  # config v3 maxWeightedTweetLength
X_URL_LENGTH = 23  # config v3 transformedURLLength
MASTODON_URL_LENGTH = 23  # StatusLengthValidator::URL_PLACEHOLDER_CHARS
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40

# Character groups of the JS and Ruby grammars.
_SPACES = r"\t-\r\x20\x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INVALID = r"\ufffe\ufeff\uffff"
_DIRECTIONAL = r"\u202a-\u202e\u061c\u200e\u200f\u2066-\u2069"
_LATIN_ACCENTS = (
    r"\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b"
    r"\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = r"\u0400-\u04ff"
# twitter-text adds `|[{_DIRECTIONAL}]`, which the class already admits.
_PRECEDING = rf"(?:[^A-Za-z0-9@\uff20$#\uff03{_INVALID}]|^)"
_HTTP = r"[hH][tT][tT][pP][sS]?://"
# X: twitter-text JS v3.1.
_X_PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
_X_QUERY = r"[A-Za-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_X_QUERY_END = r"[A-Za-z0-9\-_&=#/]"
_X_PUNYCODE = r"(?:[xX][nN]--[\-0-9A-Za-z]+)"
# Mastodon: the Ruby gem's domain grammar with Mastodon's path and query rules,
# its \p{White_Space} and UCHARS (RFC 3987 ucschar and iprivate) spelt out.
_RUBY_PUNCT = r"!\"#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~"
_WHITE_SPACE = r"\t-\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_UCHARS = (
    r"\xa0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    r"\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
    r"\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
    r"\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
    r"\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)

# No URL grammar admits ASCII whitespace, so a URL lies inside a run without it
# that holds a dot followed by something; the grammar runs on those runs alone.
_WS = " \t\n\r\f\v"
_DOT = re.compile(r"\.[^ \t\n\r\f\v]")
_NEXT_WS = re.compile(r"[ \t\n\r\f\v]")
_RARE_WS = re.compile(r"[\t\r\f\v]")
_IDNA_DOTS = re.compile("[\u3002\uff0e\uff61]")

_Trie: TypeAlias = dict[str, "_Trie"]


def _trie_pattern(words: Iterable[str]) -> str:
    """Return an ASCII-case-insensitive alternation of words, as a prefix trie.

    1,574 TLDs as a flat alternation cost a comparison each at every dot; a trie
    fails after one character. Longer words come first, as in twitter-text.
    """
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def char(ch: str) -> str:
        return f"[{ch}{ch.upper()}]" if ch.isascii() and ch.isalpha() else re.escape(ch)

    def emit(node: _Trie) -> str:
        branches = [char(ch) + emit(kid) for ch, kid in sorted(node.items(), reverse=True) if ch]
        if not branches:
            return ""
        body = "(?:" + "|".join(branches) + ")"
        return body + "?" if "" in node else body

    return emit(root)


def _load_tlds() -> list[str]:
    """Return the bundled TLD list, lower-cased."""
    data = resources.files("scheduler") / "data" / "twitter_tlds.txt"
    lines = data.read_text(encoding="utf-8").splitlines()
    return [t.strip().lower() for t in lines if t.strip() and not t.startswith("#")]


def _domain(excluded: str, tld: str, punycode: str) -> str:
    """Return the domain grammar: labels of any characters but the excluded ones.

    `D(?:[_-]*D)*` is twitter-text's `(?:D(?:[_-]|D)*)?D`, rewritten to match the
    same labels without its quadratic backtracking.
    """
    d = f"[^{excluded}]"
    subdomain = rf"(?:{d}(?:[_-]*{d})*\.)"
    domain_name = rf"(?:{d}(?:-*{d})*\.)"
    return rf"(?:{subdomain}*{domain_name}(?:{tld}|{punycode}))"


def _url(
    domain: str, path_char: str, path_end: str, query: str, query_end: str, *, js: bool
) -> str:
    """Return twitter-text's URL grammar from its parts.

    Groups: 1 preceding character, 2 URL, 3 protocol, 4 domain, 5 path. In JS the
    path-ending rule "E|(?:parens)" is pasted in unbracketed, so its "|" splits the
    whole path rule: a path piece is "P*(parens P*)*E" or parentheses alone (so
    "/a,(x)" stops at "/a"). Ruby brackets it. twitter-text's third branch,
    `@?P+/`, matches nothing the first does not, so it is left out.
    """
    parens = rf"\((?:{path_char}+|(?:{path_char}*\({path_char}+\){path_char}*))\)"
    body = rf"{path_char}*(?:{parens}{path_char}*)*"
    path = rf"(?:{body}{path_end}|{parens})" if js else rf"(?:{body}(?:{path_end}|{parens}))"
    return (
        rf"({_PRECEDING})(({_HTTP})?({domain})(?::[0-9]+)?"
        rf"(/{path}*)?(?:\?{query}*{query_end})?)"
    )


@functools.cache
def _tld() -> str:
    """Return the TLD grammar: any bundled TLD, then no letter, digit, @, + or -."""
    return rf"(?:{_trie_pattern(_load_tlds())}(?=[^0-9A-Za-z@+-]|$))"


@functools.cache
def _x_grammar() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compile X's URL grammar and t.co rule on first use (~0.08 s with 1,574 TLDs)."""
    url = _url(
        _domain(_X_PUNCT + _SPACES + _INVALID + _DIRECTIONAL, _tld(), _X_PUNYCODE),
        rf"[A-Za-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN_ACCENTS}]",
        rf"[+\-A-Za-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]",
        _X_QUERY,
        _X_QUERY_END,
        js=True,
    )
    tco = rf"{_HTTP}[tT]\.[cC][oO]/([A-Za-z0-9]+)(?:\?{_X_QUERY}*{_X_QUERY_END})?"
    return re.compile(url), re.compile(tco)


@functools.cache
def _x_ascii_domain() -> re.Pattern[str]:
    """Compile the ASCII-domain rule, needed only for URLs without a protocol."""
    return re.compile(rf"(?:[\-A-Za-z0-9{_LATIN_ACCENTS}]+\.)+(?:{_tld()}|{_X_PUNYCODE})")


@functools.cache
def _mastodon_grammar() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compile Mastodon's URL grammar and t.co rule on first use (~0.08 s)."""
    url = _url(
        _domain(
            _DIRECTIONAL + _RUBY_PUNCT + r"\x00-\x20\x7f" + _INVALID + _SPACES,
            _tld(),
            r"(?:[xX][nN]--[0-9A-Za-z]+)",
        ),
        rf"[^{_WHITE_SPACE}<>()?]",
        rf"[^{_WHITE_SPACE}()?!*\"'\u300c\u300d<>;:=,.$%\[\]~&|@]",
        rf"[A-Za-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^{_UCHARS}]",
        rf"[A-Za-z0-9_&=#/\-{_UCHARS}]",
        js=False,
    )
    return re.compile(url), re.compile(rf"{_HTTP}[tT]\.[cC][oO]/([A-Za-z0-9]+)")


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Yield what pattern.finditer(text) would, scanning only runs that can hold a URL.

    Each scan starts one character before its run, so the preceding-character
    rule sees what it would in a full scan.
    """
    end = 0
    for dot in _DOT.finditer(text):
        if dot.start() < end:
            continue
        start = max(text.rfind(" ", 0, dot.start()), text.rfind("\n", 0, dot.start())) + 1
        if _RARE_WS.search(text, start, dot.start()):
            start = max(text.rfind(c, 0, dot.start()) for c in _WS) + 1
        ws = _NEXT_WS.search(text, dot.start())
        end = ws.start() if ws else len(text)
        yield from pattern.finditer(text, max(start - 1, 0), end)


def _utf16_len(text: str) -> int:
    """Return the length in UTF-16 code units, which JavaScript's indices use."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _js_idna_ok(domain: str) -> bool:
    """Return whether twitter-text JS's idna.toAscii accepts the domain.

    Each label must punycode-encode to 1..63 characters, and an "xn--" domain
    must hold an ASCII domain.
    """
    if domain.startswith("xn--") and not _x_ascii_domain().search(domain):
        return False
    if domain.isascii():
        return all(1 <= len(label) <= 63 for label in domain.split("."))
    for label in domain.split("."):
        parts = _IDNA_DOTS.split(label)
        encoded = [p if p.isascii() else "xn--" + p.encode("punycode").decode() for p in parts]
        if not 1 <= len(".".join(encoded)) <= 63:
            return False
    return True


def x_url_spans(text: str) -> list[tuple[int, int]]:
    """Return (start, end) code-point spans of the URLs twitter-text extracts.

    Mirrors extractUrlsWithIndices: a URL without a protocol counts on a known
    TLD and only for its ASCII part; t.co slugs are capped at 40 characters.
    """
    url_grammar, tco_rule = _x_grammar()
    spans: list[tuple[int, int]] = []
    for m in _matches(url_grammar, text):
        url, protocol, domain = m.group(2, 3, 4)
        start, end = m.span(2)
        if len(protocol or "https://") + _utf16_len(url) > _MAX_URL_LENGTH:
            continue
        if not _js_idna_ok(domain):
            continue
        if protocol:
            tco = tco_rule.match(url)
            if tco:
                if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + tco.end()
            spans.append((start, end))
            continue
        if m.group(1) and m.group(1) in "-_./":
            continue
        last: tuple[int, int] | None = None
        for am in _x_ascii_domain().finditer(domain):
            last = (start + am.start(), start + am.end())
            spans.append(last)
        if last is not None and m.group(5):
            spans[-1] = (last[0], end)
    return spans


def extract_urls(text: str) -> list[str]:
    """Return the URLs twitter-text extracts from a text, in order."""
    return [text[s:e] for s, e in x_url_spans(text)]


def _ruby_domain_ok(url: str, domain: str) -> bool:
    """Return whether the Ruby gem's is_valid_domain accepts the domain (IDNA 2003)."""
    try:
        encoded = domain.encode("idna")
    except UnicodeError:
        return False
    return len(url) + max(0, len(encoded) - len(domain)) <= _MAX_URL_LENGTH


def mastodon_url_spans(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of the http(s) URLs Mastodon counts as 23.

    Mastodon extracts with `extract_url_without_protocol: false`, skipping a
    match without protocol whole. It also links dat, dweb, ipfs, ipns, ssb,
    gopher and gemini URLs; we count only http(s) ones as 23 (the product
    contract), which can only over-count.
    """
    if ":" not in text:
        return []
    url_grammar, tco_rule = _mastodon_grammar()
    spans: list[tuple[int, int]] = []
    for m in _matches(url_grammar, text):
        url, protocol, domain = m.group(2, 3, 4)
        if not protocol:
            continue
        start, end = m.span(2)
        tco = tco_rule.match(url)
        if tco:
            if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                continue
            url = tco.group()
            end = start + len(url)
        if _ruby_domain_ok(url, domain):
            spans.append((start, end))
    return spans


# Config v3 ranges of weight 100 (one character); everything else weighs 200 (two).
_LIGHT = r"\x00-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037"
# Emoji sequences in UTS #51 shapes: any pictograph, flag, keycap, tag sequence or
# ZWJ chain counts as one emoji. (c) and (R) are emoji only with U+FE0F, as in
# the twemoji-parser that twitter-text uses.
_EMOJI_ELEMENT = (
    r"(?:\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f|[\xa9\xae]\ufe0f"
    r"|(?![\xa9\xae])\p{Extended_Pictographic}(?:\p{Emoji_Modifier}|\ufe0f)?)"
)
_EMOJI = rf"(?:[#*0-9]\ufe0f?\u20e3|\p{{RI}}{{1,2}}|{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT})*)"
_EMOJI_LEADS = frozenset("#*0123456789\xa9\xae")
# An emoji (group "e"), or a run of two-weight characters that cannot start one.
_X_WEIGHT = regex.compile(rf"(?P<e>{_EMOJI})|[^{_LIGHT}\p{{Extended_Pictographic}}\p{{RI}}]+")
_X_HEAVY = re.compile(rf"[^{_LIGHT}]")
_X_HEAVY_RUN = re.compile(rf"(?:[^{_LIGHT}]|\u200d[\xa9\xae]?)*")
_X_TOKEN = regex.compile(rf"{_EMOJI}|.", regex.DOTALL)


def _weigh(segment: str) -> int:
    """Return the config-v3 weight of text holding no URL, in characters."""
    if segment.isascii():
        return len(segment)
    weight = len(segment)
    pos = 0
    while heavy := _X_HEAVY.search(segment, pos):
        # Emoji lie in runs of two-weight characters and ZWJs, starting at most one
        # character early (a keycap's digit, or (c)/(R) before U+FE0F).
        start = heavy.start()
        if segment[start - 1 : start] in _EMOJI_LEADS:
            start -= 1
        run = _X_HEAVY_RUN.match(segment, heavy.start())
        pos = run.end() if run else heavy.end()  # it always matches: `*` takes the empty run
        for m in _X_WEIGHT.finditer(segment, start, pos):
            n = m.end() - m.start()
            weight += 2 - n if m.lastgroup == "e" else n
    return weight


def x_weighted_length(text: str) -> int:
    """Return the length X gives a post: twitter-text v3's weightedLength.

    Text is NFC-normalised first, as X does, so precomposed and decomposed
    accents count alike.
    """
    text = unicodedata.normalize("NFC", text)
    if "." not in text:
        return _weigh(text)
    total = 0
    pos = 0
    for start, end in x_url_spans(text):
        total += _weigh(text[pos:start]) + X_URL_LENGTH
        pos = end
    return total + _weigh(text[pos:])


class XParse(NamedTuple):
    """twitter-text's parseTweet result; ranges are inclusive UTF-16 indices."""

    weighted_length: int
    valid: bool
    permillage: int
    valid_range_start: int
    valid_range_end: int
    display_range_start: int
    display_range_end: int


def x_parse(text: str) -> XParse:
    """Return twitter-text's full parseTweet result for a post (config v3).

    Slower than x_weighted_length; it also says whether X would take the post
    and how much of it fits.
    """
    norm = unicodedata.normalize("NFC", text)
    tokens: list[tuple[str, int]] = []
    pos = 0
    for start, end in [*x_url_spans(norm), (len(norm), len(norm))]:
        for m in _X_TOKEN.finditer(norm, pos, start):
            tok = m.group()
            tokens.append((tok, 2 if len(tok) > 1 or _X_HEAVY.match(tok) else 1))
        if start < end:
            tokens.append((norm[start:end], X_URL_LENGTH))
        pos = end
    weighted = units = valid_end = 0
    chars_ok = True
    for tok, weight in tokens:
        weighted += weight
        units += _utf16_len(tok)
        if chars_ok:  # parseTweet checks only the last code unit of each entity
            chars_ok = tok[-1] not in "\ufffe\ufeff\uffff"
        if chars_ok and weighted <= X_MAX_LENGTH:
            valid_end = units - 1
    text_units = _utf16_len(text)
    return XParse(
        weighted_length=weighted,
        valid=chars_ok and 0 < weighted <= X_MAX_LENGTH,
        permillage=math.floor(weighted / X_MAX_LENGTH * 1000),
        valid_range_start=0,
        valid_range_end=valid_end + text_units - _utf16_len(norm),
        display_range_start=0,
        display_range_end=max(text_units - 1, 0),
    )
