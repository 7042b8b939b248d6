"""Telegram's parse_mode=HTML, as tdlib's parse_html reads it (td/telegram/MessageEntity.cpp).

Only these tags: b strong i em u ins s strike del tg-spoiler span a code pre blockquote
tg-emoji; only &lt; &gt; &amp; &quot; and numeric entities (others stay as text); every
start tag closed, in order. Errors carry tdlib's words and byte offsets, e.g.
'Unsupported start tag "p" at byte offset 0', which the Bot API prefixes with
"Bad Request: can't parse entities: ".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji"}
    | {"span", "pre", "code", "blockquote"}
)
KINDS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_SPACE = frozenset(b" \t\r\n\v\f\0")


class HtmlError(ValueError):
    """The text is not HTML that Telegram accepts; str() is tdlib's message."""


@dataclass
class _Open:
    tag: str
    argument: str
    utf16_offset: int
    begin: int  # where the entity's text starts in the output


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Return the plain text and the Bot API entities (UTF-16 offsets); raise HtmlError."""
    parser = _Parser(text.encode("utf-8", "surrogatepass"))
    return parser.run()


class _Parser:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0
        self.out = bytearray()
        self.utf16 = 0
        self.stack: list[_Open] = []
        self.entities: list[dict[str, Any]] = []
        self.bad_unicode = False

    def at(self, i: int) -> int:
        return self.data[i] if i < len(self.data) else 0

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        while self.i < len(self.data):
            c = self.data[self.i]
            if c == ord("&") and self._entity():
                continue
            if c != ord("<"):
                if c & 0xC0 != 0x80:
                    self.utf16 += 2 if c >= 0xF0 else 1
                self.out.append(c)
                self.i += 1
            elif self.at(self.i + 1) == ord("/"):
                self._end_tag()
            else:
                self._start_tag()
        if self.stack:
            raise HtmlError(
                f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"'
            )
        try:
            result = self.out.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_unicode = True
        if self.bad_unicode:
            raise HtmlError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        for entity in self.entities:
            if entity["type"] == "code":
                del entity["language"]
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return result, self.entities

    def _decode_entity(self, pos: int) -> tuple[int, int]:
        """Return (code point, position after it), or (0, pos) if not an entity Telegram knows."""
        end, value = pos + 1, 0
        if self.at(end) == ord("#"):
            end += 1
            hexadecimal = self.at(end) == ord("x")
            end += hexadecimal
            digits = b"0123456789abcdefABCDEF" if hexadecimal else b"0123456789"
            start = end
            while self.at(end) and self.at(end) in digits:
                end += 1
            value = int(self.data[start:end] or b"0", 16 if hexadecimal else 10)
            if value == 0 or value >= 0x10FFFF or end - pos >= 10:
                return 0, pos
        else:
            while chr(self.at(end)).isascii() and chr(self.at(end)).isalpha():
                end += 1
            value = {b"lt": 60, b"gt": 62, b"amp": 38, b"quot": 34}.get(self.data[pos + 1 : end], 0)
            if value == 0:
                return 0, pos
        return value, end + (self.at(end) == ord(";"))

    def _entity(self) -> bool:
        value, end = self._decode_entity(self.i)
        if value == 0:
            return False
        if 0xD800 <= value <= 0xDFFF:
            self.bad_unicode = True
        self.out += chr(value).encode("utf-8", "surrogatepass")
        self.utf16 += 2 if value > 0xFFFF else 1
        self.i = end
        return True

    def _start_tag(self) -> None:
        begin = self.i
        self.i += 1
        while self.at(self.i) not in _SPACE and self.at(self.i) != ord(">"):
            self.i += 1
        if self.i >= len(self.data):
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        tag = self.data[begin + 1 : self.i].decode("utf-8", "replace").lower()
        if tag not in TAGS:
            raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
        argument = ""
        while self.at(self.i) != ord(">"):
            argument = self._attribute(tag, begin, argument)
        self.i += 1
        if tag == "span" and argument != "spoiler":
            raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.stack.append(_Open(tag, argument, self.utf16, len(self.out)))

    def _attribute(self, tag: str, begin: int, argument: str) -> str:
        """Read one attribute of a start tag; return the tag's argument so far."""
        while self.i < len(self.data) and self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) == ord(">"):
            return argument
        name_start = self.i
        while self.at(self.i) not in _SPACE and self.at(self.i) not in b"=>":
            self.i += 1
        name = self.data[name_start : self.i].decode("utf-8", "replace")
        if not name:
            raise HtmlError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while self.i < len(self.data) and self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) != ord("="):
            if tag == "blockquote" and name == "expandable":
                return "1"
            raise HtmlError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {begin}"
            )
        self.i += 1
        while self.i < len(self.data) and self.at(self.i) in _SPACE:
            self.i += 1
        if self.i >= len(self.data):
            raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value = self._attribute_value()
        if self.i >= len(self.data):
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if tag == "a" and name == "href":
            return value
        if tag == "code" and name == "class" and value.startswith("language-"):
            return value[len("language-") :]
        if tag == "span" and name == "class" and value.startswith("tg-"):
            return value[len("tg-") :]
        if tag == "tg-emoji" and name == "emoji-id":
            return value
        return argument

    def _attribute_value(self) -> str:
        quote = self.at(self.i)
        if quote not in (ord("'"), ord('"')):  # a name token: letters, digits, "." and "-"
            start = self.i
            while chr(self.at(self.i)).isascii() and (
                chr(self.at(self.i)).isalnum() or self.at(self.i) in b".-"
            ):
                self.i += 1
            if self.at(self.i) not in _SPACE and self.at(self.i) != ord(">"):
                raise HtmlError(f"Unexpected end of name token at byte offset {start}")
            return self.data[start : self.i].decode().lower()
        self.i += 1
        value = bytearray()
        while self.i < len(self.data) and self.at(self.i) != quote:
            if self.at(self.i) == ord("&"):
                code, end = self._decode_entity(self.i)
                if code:
                    value += chr(code).encode("utf-8", "surrogatepass")
                    self.i = end
                    continue
            value.append(self.at(self.i))
            self.i += 1
        self.i += self.at(self.i) == quote
        return value.decode("utf-8", "replace")

    def _end_tag(self) -> None:
        begin = self.i
        if not self.stack:
            raise HtmlError(f"Unexpected end tag at byte offset {begin}")
        self.i += 2
        while self.at(self.i) not in _SPACE and self.at(self.i) != ord(">"):
            self.i += 1
        name = self.data[begin + 2 : self.i].decode("utf-8", "replace")
        while self.i < len(self.data) and self.at(self.i) in _SPACE:
            self.i += 1
        if self.at(self.i) != ord(">"):
            raise HtmlError(f"Unclosed end tag at byte offset {begin}")
        self.i += 1
        opened = self.stack.pop()
        if name and name != opened.tag:
            raise HtmlError(
                f'Unmatched end tag at byte offset {begin}, expected "</{opened.tag}>", found "</{name}>"'
            )
        if self.utf16 > opened.utf16_offset:
            self._add_entity(opened)

    def _add_entity(self, opened: _Open) -> None:
        entity: dict[str, Any] = {
            "offset": opened.utf16_offset,
            "length": self.utf16 - opened.utf16_offset,
        }
        tag, argument = opened.tag, opened.argument
        if tag in KINDS:
            entity["type"] = KINDS[tag]
        elif tag == "a":
            url = argument or self.out[opened.begin :].decode("utf-8", "replace")
            if not _is_url(url):
                return  # Telegram drops a link it cannot use, silently
            entity["type"], entity["url"] = "text_link", url
        elif tag == "tg-emoji":
            if not argument.isdigit() or not 0 < int(argument) < 2**63:
                raise HtmlError("Invalid custom emoji identifier specified")
            entity["type"], entity["custom_emoji_id"] = "custom_emoji", argument
        elif tag == "blockquote":
            entity["type"] = "expandable_blockquote" if argument else "blockquote"
        elif tag == "code":
            last = self.entities[-1] if self.entities else None
            if last and last["type"] == "pre" and _same_span(last, entity) and argument:
                last["language"] = argument  # <code class="language-x"><pre>: one pre entity
                return
            entity["type"], entity["language"] = "code", argument  # kept only inside a <pre>
        else:  # pre
            last = self.entities[-1] if self.entities else None
            if last and last["type"] == "code" and _same_span(last, entity) and last["language"]:
                last["type"] = "pre"  # <pre><code class="language-x">: one pre entity
                return
            entity["type"] = "pre"
        self.entities.append(entity)


def _same_span(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["offset"] == b["offset"] and a["length"] == b["length"])


def _is_url(url: str) -> bool:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme in ("tg", "ton", "tonsite"):
        return bool(parts.netloc or parts.path)
    return parts.scheme in ("http", "https") and "." in (parts.hostname or "")


def utf16_length(text: str) -> int:
    """Return the length of a text in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
