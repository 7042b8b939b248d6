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
The TLD list is bundled in ``scheduler/data/twitter_tlds.txt`` and looked up in
a set rather than spelt into the regex, which would take ~0.1 s to compile.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterator
from importlib import resources
from typing import NamedTuple, TypeAlias

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
# (Spelt out: the string module takes ~1.5 ms to import.)
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = frozenset(_UPPER + _UPPER.lower() + "0123456789")
# twitter-text adds `|[{_DIRECTIONAL}]`, which the class already admits.
_PRECEDING = rf"(?:[^A-Za-z0-9@\uff20$#\uff03{_INVALID}]|^)"
_NOT_PRECEDING = _ALNUM | frozenset("@\uff20$#\uff03\ufffe\ufeff\uffff")
_HTTP = r"[hH][tT][tT][pP][sS]?://"
# X: twitter-text JS v3.1.
_X_PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
_X_QUERY = r"[A-Za-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
_X_QUERY_END = r"[A-Za-z0-9\-_&=#/]"
_X_PUNYCODE = r"(?:[xX][nN]--[\-0-9A-Za-z]+)"
# Mastodon: the Ruby gem's domain grammar with Mastodon's path and query rules,
# its \p{White_Space} spelt out. Its UCHARS (RFC 3987 ucschar and iprivate) are
# spelt by what they leave out, as `[^{_NOT_UCHARS}]`: `re` compiles a class in a
# step per BMP character it holds, ~9 ms for ucschar's 63,000 characters.
_RUBY_PUNCT = r"!\"#$%&'()*+,\-./:;<=>?@\[\]^_`{|}~"
_WHITE_SPACE = r"\t-\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_NOT_UCHARS = r"\x00-\x9f\ud800-\udfff\ufdd0-\ufdef\ufff0-\uffff\U000e0000-\U000e0fff" + "".join(
    rf"\U{plane:04x}fffe\U{plane:04x}ffff" for plane in range(1, 17)
)

# No URL grammar admits ASCII whitespace, so a URL lies inside a run without it
# that holds a dot followed by something; the grammar runs on those runs alone.
_WS = " \t\n\r\f\v"
_DOT = re.compile(r"\.[^ \t\n\r\f\v]")
_NEXT_WS = re.compile(r"[ \t\n\r\f\v]")
_RARE_WS = re.compile(r"[\t\r\f\v]")
_IDNA_DOTS = str.maketrans("\u3002\uff0e\uff61", "...")  # read as dots by IDNA

# twitter-text's TLD rule is an alternation of 1,574 TLDs, longest first, each
# followed by `(?=[^0-9A-Za-z@+-]|$)`; compiled into a regex it costs ~0.1 s a
# grammar. Here a regex matches the domain's labels, and the TLD is looked up in
# a set, trying the candidates in the order the regex would backtrack through.
_HTTP_RULE = re.compile(_HTTP)
_NOT_AFTER_TLD = _ALNUM | frozenset("@+-")
_ASCII_AFTER_TLD = frozenset(map(chr, range(128))) - _NOT_AFTER_TLD
_TLD_RUN = re.compile(r"[^\x00-\x40\x5b-\x60\x7b-\x7f]+")  # what TLDs are made of
_ASCII_LOWER = str.maketrans(_UPPER, _UPPER.lower())


@functools.cache
def _tlds() -> tuple[frozenset[str], int]:
    """Return the bundled TLDs, lower-cased, and the length of the longest."""
    data = resources.files("scheduler") / "data" / "twitter_tlds.txt"
    lines = data.read_text(encoding="utf-8").splitlines()
    tlds = frozenset("\n".join(t for t in lines if not t.startswith("#")).lower().split())
    return tlds, max(map(len, tlds))


def _tld_end(text: str, pos: int, endpos: int) -> int | None:
    """Return where twitter-text's TLD rule matches at pos ends, or None.

    The longest listed TLD wins whose next character is not [0-9A-Za-z@+-]. ASCII
    letters match in either case, other letters only as listed, as in the regex.
    """
    run = _TLD_RUN.match(text, pos, endpos)
    if run is None:
        return None
    tlds, longest = _tlds()
    for end in range(min(run.end(), pos + longest), pos, -1):
        if end < endpos and text[end] in _NOT_AFTER_TLD:
            continue
        word = text[pos:end]
        if (word.lower() if word.isascii() else word.translate(_ASCII_LOWER)) in tlds:
            return end
    return None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Return a pattern compiled on its first use."""
    return re.compile(pattern)


class _DomainRule:
    """A domain grammar: dotted labels, then a TLD or punycode.

    `labels` (a source, compiled on first need) matches the labels with their
    dots, `(?:label\\.)+` (group 1), and the ASCII letters after them (group 2),
    most often the TLD. The labels are forced (none holds a dot), so the regex's
    backtracking only gives them back one by one, trying the TLD after each dot
    from the last.
    """

    __slots__ = ("labels", "punycode", "tlds", "underscore_in_name")

    def __init__(self, label: str, punycode: str, *, underscore_in_name: bool) -> None:
        self.tlds = _tlds()[0]
        self.labels = rf"((?:{label}\.)+)([A-Za-z]*)"
        self.punycode = re.compile(punycode)
        self.underscore_in_name = underscore_in_name  # may the label before the TLD hold "_"

    def end(self, text: str, pos: int, endpos: int) -> int | None:
        """Return where the domain at pos ends, or None if there is none."""
        labels = _compiled(self.labels).match(text, pos, endpos)
        if labels is None:
            return None
        return self.end_after(text, labels.group(1), labels.end(1), labels.end(), endpos)

    def end_after(
        self, text: str, dotted: str, after_dot: int, end: int, endpos: int
    ) -> int | None:
        """Return where the domain ends, or None, from what `labels` matched.

        The dotted labels end at after_dot, the ASCII letters after them at end.
        """
        if (
            text[after_dot:end].lower() in self.tlds
            and (end == endpos or text[end] in _ASCII_AFTER_TLD)
            and (self.underscore_in_name or "_" not in dotted)
        ):
            return end  # the common case: the first candidate, an ASCII TLD after the last dot
        for label in reversed(dotted.split(".")[:-1]):
            if self.underscore_in_name or "_" not in label:
                tld_end = _tld_end(text, after_dot, endpos)
                if tld_end is not None:
                    return tld_end
                punycode = self.punycode.match(text, after_dot, endpos)
                if punycode:
                    return punycode.end()
            after_dot -= len(label) + 1
        return None


# A match of the URL grammar: the character before the URL ("" at the start of
# the text), the URL's start and end, its protocol, domain and path.
_Url: TypeAlias = tuple[str, int, int, str | None, str, str | None]


class _UrlGrammar:
    """twitter-text's URL grammar: a preceding character, a protocol, a domain, the rest.

    `head` is the grammar up to the domain's labels, which every match holds:
    groups 1 the preceding character, 2 the protocol, then the domain's `labels`.
    `rest`, the port, path (group 1) and query that may follow the domain, costs
    ~3 ms to compile, so it is kept as a source until a URL has one of them.
    """

    __slots__ = ("domain", "head", "rest")

    def __init__(self, excluded: str, punycode: str, rest: str) -> None:
        """Build the grammar whose domain labels hold any characters but the excluded.

        `D(?:[_-]*D)*` is twitter-text's `(?:D(?:[_-]|D)*)?D`, rewritten to match
        the same labels without its quadratic backtracking. The last label before
        the TLD (domain_name) may not hold "_".
        """
        label = rf"[^{excluded}](?:[_-]*[^{excluded}])*"
        self.domain = _DomainRule(label, punycode, underscore_in_name=False)
        self.head = re.compile(rf"({_PRECEDING})({_HTTP})?{self.domain.labels}")
        self.rest = rest

    def findall(self, text: str, pos: int, endpos: int) -> list[_Url]:
        """Return what the whole grammar's finditer(text, pos, endpos) would match."""
        urls: list[_Url] = []
        while head := self.head.search(text, pos, endpos):
            # The head takes the grammar's first alternative that has dotted labels
            # (no other has a domain); if its domain fails, the others are tried.
            domain_end = self.domain.end_after(text, head.group(3), head.end(3), head.end(), endpos)
            if domain_end is None:
                url = self._match(text, head.start(), endpos)
            else:
                url = self._url(text, head.start(), head.end(1), head.start(3), domain_end, endpos)
            if url is None:
                pos = head.start() + 1
            else:
                urls.append(url)
                pos = url[2]
        return urls

    def _match(self, text: str, pos: int, endpos: int) -> _Url | None:
        """Return the grammar's match at pos, trying its alternatives in the regex's order.

        The preceding character is consumed before `^` is tried, and a protocol
        before none. Everything after the domain is optional, so the first domain
        found makes the match.
        """
        starts = [pos + 1] if pos < endpos and text[pos] not in _NOT_PRECEDING else []
        if pos == 0:
            starts.append(0)
        for start in starts:
            protocol = _HTTP_RULE.match(text, start, endpos)
            for domain_start in (protocol.end(), start) if protocol else (start,):
                domain_end = self.domain.end(text, domain_start, endpos)
                if domain_end is not None:
                    return self._url(text, pos, start, domain_start, domain_end, endpos)
        return None

    def _url(
        self, text: str, pos: int, start: int, domain_start: int, domain_end: int, endpos: int
    ) -> _Url:
        """Return the match at pos of a URL at start, with its domain found."""
        end = domain_end
        path = None
        if end < endpos and text[end] in ":/?":
            rest = _compiled(self.rest).match(text, end, endpos)  # it always matches
            if rest:
                end, path = rest.end(), rest.group(1)
        protocol = text[start:domain_start] or None
        return text[pos:start], start, end, protocol, text[domain_start:domain_end], path


def _rest(path_char: str, path_end: str, query: str, query_end: str, *, js: bool) -> str:
    """Return twitter-text's grammar for what follows a domain: port, path (group 1), query.

    In JS the path-ending rule "E|(?:parens)" is pasted in unbracketed, so its "|"
    splits the whole path rule: a path piece is "P*(parens P*)*E" or parentheses
    alone (so "/a,(x)" stops at "/a"). Ruby brackets it. twitter-text's third
    branch, `@?P+/`, matches nothing the first does not, so it is left out.
    """
    parens = rf"\((?:{path_char}+|(?:{path_char}*\({path_char}+\){path_char}*))\)"
    body = rf"{path_char}*(?:{parens}{path_char}*)*"
    path = rf"(?:{body}{path_end}|{parens})" if js else rf"(?:{body}(?:{path_end}|{parens}))"
    return rf"(?::[0-9]+)?(/{path}*)?(?:\?{query}*{query_end})?"


@functools.cache
def _x_grammar() -> tuple[_UrlGrammar, re.Pattern[str]]:
    """Compile X's URL grammar and t.co rule on first use."""
    grammar = _UrlGrammar(
        _X_PUNCT + _SPACES + _INVALID + _DIRECTIONAL,
        _X_PUNYCODE,
        _rest(
            rf"[A-Za-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN_ACCENTS}]",
            rf"[+\-A-Za-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]",
            _X_QUERY,
            _X_QUERY_END,
            js=True,
        ),
    )
    tco = rf"{_HTTP}[tT]\.[cC][oO]/([A-Za-z0-9]+)(?:\?{_X_QUERY}*{_X_QUERY_END})?"
    return grammar, re.compile(tco)


@functools.cache
def _x_ascii_domain() -> _DomainRule:
    """Return the ASCII-domain rule, needed only for URLs without a protocol."""
    return _DomainRule(rf"[\-A-Za-z0-9{_LATIN_ACCENTS}]+", _X_PUNYCODE, underscore_in_name=True)


def _x_ascii_domains(domain: str) -> Iterator[tuple[int, int]]:
    """Yield the spans of the ASCII-domain rule's matches in a domain, as finditer would."""
    rule = _x_ascii_domain()
    labels = _compiled(rule.labels)
    pos = 0
    while head := labels.search(domain, pos):
        end = rule.end_after(domain, head.group(1), head.end(1), head.end(), len(domain))
        if end is None:
            pos = head.start() + 1
        else:
            yield head.start(), end
            pos = end


@functools.cache
def _mastodon_grammar() -> tuple[_UrlGrammar, re.Pattern[str]]:
    """Compile Mastodon's URL grammar and t.co rule on first use."""
    grammar = _UrlGrammar(
        _DIRECTIONAL + _RUBY_PUNCT + r"\x00-\x20\x7f" + _INVALID + _SPACES,
        r"(?:[xX][nN]--[0-9A-Za-z]+)",
        _rest(
            rf"[^{_WHITE_SPACE}<>()?]",
            rf"[^{_WHITE_SPACE}()?!*\"'\u300c\u300d<>;:=,.$%\[\]~&|@]",
            rf"(?:[A-Za-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^]|[^{_NOT_UCHARS}])",
            rf"(?:[A-Za-z0-9_&=#/\-]|[^{_NOT_UCHARS}])",
            js=False,
        ),
    )
    return grammar, re.compile(rf"{_HTTP}[tT]\.[cC][oO]/([A-Za-z0-9]+)")


def _matches(grammar: _UrlGrammar, text: str) -> list[_Url]:
    """Return grammar.findall(text, 0, len(text)), scanning only runs that can hold a URL.

    Each scan starts one character before its run, so the preceding-character
    rule sees what it would in a full scan.
    """
    urls: list[_Url] = []
    end = 0
    for dot in _DOT.finditer(text):
        if dot.start() < end:
            continue
        start = max(text.rfind(" ", 0, dot.start()), text.rfind("\n", 0, dot.start())) + 1
        if _RARE_WS.search(text, start, dot.start()):
            start = max(text.rfind(c, 0, dot.start()) for c in _WS) + 1
        ws = _NEXT_WS.search(text, dot.start())
        end = ws.start() if ws else len(text)
        urls += grammar.findall(text, max(start - 1, 0), end)
    return urls


def _utf16_len(text: str) -> int:
    """Return the length in UTF-16 code units, which JavaScript's indices use."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _labels_fit(domain: str) -> bool:
    """Return whether every label of a domain is 63 characters or fewer."""
    return len(domain) <= 63 or max(map(len, domain.split("."))) <= 63


def _js_idna_ok(domain: str) -> bool:
    """Return whether twitter-text JS's idna.toAscii accepts the domain.

    Each label must punycode-encode to 1..63 characters, and an "xn--" domain
    must hold an ASCII domain.
    """
    if domain.startswith("xn--") and next(_x_ascii_domains(domain), None) is None:
        return False
    if domain.isascii():  # the grammar's labels are never empty
        return _labels_fit(domain)
    for label in domain.split("."):
        parts = label.translate(_IDNA_DOTS).split(".")
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
    for preceding, start, end, protocol, domain, path in _matches(url_grammar, text):
        url = text[start:end]
        if len(protocol or "https://") + _utf16_len(url) > _MAX_URL_LENGTH:
            continue
        if not _js_idna_ok(domain):
            continue
        if protocol:
            tco = tco_rule.match(text, start, end)
            if tco:
                if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                end = tco.end()
            spans.append((start, end))
            continue
        if preceding and preceding in "-_./":
            continue
        last: tuple[int, int] | None = None
        for ascii_start, ascii_end in _x_ascii_domains(domain):
            last = (start + ascii_start, start + ascii_end)
            spans.append(last)
        if last is not None and path:
            spans[-1] = (last[0], end)
    return spans


def extract_urls(text: str) -> list[str]:
    """Return the URLs twitter-text extracts from a text, in order."""
    return [text[s:e] for s, e in x_url_spans(text)]


def _ruby_domain_ok(url_length: int, domain: str) -> bool:
    """Return whether the Ruby gem's is_valid_domain accepts the domain (IDNA 2003)."""
    if domain.isascii():  # the codec checks only label lengths here; ~1 ms to import it
        return url_length <= _MAX_URL_LENGTH and _labels_fit(domain)
    try:
        encoded = domain.encode("idna")
    except UnicodeError:
        return False
    return url_length + max(0, len(encoded) - len(domain)) <= _MAX_URL_LENGTH


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
    for _, start, end, protocol, domain, _ in _matches(url_grammar, text):
        if not protocol:
            continue
        tco = tco_rule.match(text, start, end)
        if tco:
            if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                continue
            end = tco.end()
        if _ruby_domain_ok(end - start, domain):
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


class _WeightRules:
    """The patterns that weigh text beyond ASCII; see _weight_rules."""

    __slots__ = ("heavy", "heavy_run", "token", "weight")

    def __init__(self) -> None:
        import regex  # for emoji properties; ~20 ms to import, so only when needed

        self.heavy = re.compile(rf"[^{_LIGHT}]")  # a two-weight character
        self.heavy_run = re.compile(rf"(?:[^{_LIGHT}]|\u200d[\xa9\xae]?)*")  # where emoji lie
        # An emoji (group "e"), or a run of two-weight characters that cannot start one.
        self.weight = regex.compile(
            rf"(?P<e>{_EMOJI})|[^{_LIGHT}\p{{Extended_Pictographic}}\p{{RI}}]+"
        )
        self.token = regex.compile(rf"(?s){_EMOJI}|.")  # an emoji, or any one character


@functools.cache
def _weight_rules() -> _WeightRules:
    """Compile the weighing patterns on first need: ASCII text needs none."""
    return _WeightRules()


def _weigh(segment: str) -> int:
    """Return the config-v3 weight of text holding no URL, in characters."""
    if segment.isascii():
        return len(segment)
    rules = _weight_rules()
    weight = len(segment)
    pos = 0
    while heavy := rules.heavy.search(segment, pos):
        # Emoji lie in runs of two-weight characters and ZWJs, starting at most one
        # character early (a keycap's digit, or (c)/(R) before U+FE0F).
        start = heavy.start()
        if segment[start - 1 : start] in _EMOJI_LEADS:
            start -= 1
        run = rules.heavy_run.match(segment, heavy.start())
        pos = run.end() if run else heavy.end()  # it always matches: `*` takes the empty run
        for m in rules.weight.finditer(segment, start, pos):
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
    rules = _weight_rules()
    tokens: list[tuple[str, int]] = []
    pos = 0
    for start, end in [*x_url_spans(norm), (len(norm), len(norm))]:
        for m in rules.token.finditer(norm, pos, start):
            tok = m.group()
            tokens.append((tok, 2 if len(tok) > 1 or rules.heavy.match(tok) else 1))
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
