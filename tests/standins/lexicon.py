"""Validate atproto data against Lexicon schemas, with the messages the PDS answers.

A port of @atproto/lexicon's validators (complex.ts, primitives.ts, blob.ts), reading the
schemas from tests/conformance (copied with their licences). Values
are in the JSON wire form: bytes as {"$bytes": b64}, links as {"$link": cid}, blobs as
{"$type": "blob", "ref": {"$link": cid}, "mimeType": ..., "size": ...}.

A ref to a lexicon that is not loaded (the conformance set holds what posting needs,
not app.bsky.embed.gallery or com.atproto.label.defs) is accepted unchecked, as a PDS
accepts data of lexicons it does not know.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import regex

from tests.standins.atsyntax import FORMATS

LEXICONS = Path(__file__).resolve().parents[1] / "conformance/bluesky-social/atproto/lexicons"
_GRAPHEME = regex.compile(r"\X")

Def = dict[str, Any]


class LexiconError(ValueError):
    """A value does not fit its schema; str() is the validator's own message."""


class Lexicons:
    """A set of lexicon documents, by NSID."""

    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        self.docs = {doc["id"]: doc for doc in documents}

    @classmethod
    def load(cls, *roots: Path) -> Lexicons:
        """Load every *.json lexicon under the given folders (default: the conformance set)."""
        paths = [p for root in roots or (LEXICONS,) for p in sorted(root.rglob("*.json"))]
        if not paths:
            raise FileNotFoundError(
                f"no lexicons under {', '.join(map(str, roots or (LEXICONS,)))} "
                "(tests/conformance is part of the repository)"
            )
        return cls(json.loads(p.read_text(encoding="utf-8")) for p in paths)

    def has(self, nsid: str) -> bool:
        """Return whether the lexicon of an NSID is loaded."""
        return nsid in self.docs

    def resolve(self, ref: str, base: str) -> tuple[Def, str] | None:
        """Return (definition, its NSID) of a ref like "#x", "a.b.c" or "a.b.c#x"; None if absent."""
        nsid, _, name = ref.partition("#")
        nsid = nsid or base
        doc = self.docs.get(nsid)
        if doc is None or (name or "main") not in doc["defs"]:
            return None
        return doc["defs"][name or "main"], nsid

    def validate_record(self, nsid: str, value: Any) -> None:
        """Check a record of collection nsid; raise LexiconError in the PDS 0.5's words.

        The PDS (0.5.x, @atproto/lex) says what is wrong, then where: ``grapheme too big
        (maximum 300, got 301) at $.record.text``.
        """
        found = self.resolve(nsid, nsid)
        if found is None or found[0].get("type") != "record":
            raise LexiconError(f"Lexicon not found: lex:{nsid}")
        self.check("$.record", found[0]["record"], value, nsid)

    def validate_input(self, nsid: str, value: Any) -> None:
        """Check a procedure's JSON input; raise LexiconError with the path "Input"."""
        found = self.resolve(nsid, nsid)
        if found is None:
            raise LexiconError(f"Lexicon not found: lex:{nsid}")
        self.check("Input", found[0]["input"]["schema"], value, nsid)

    def check(self, path: str, d: Def, value: Any, base: str) -> None:
        """Check value against definition d, whose refs are relative to lexicon base."""
        kind = d.get("type")
        if kind == "ref":
            found = self.resolve(d["ref"], base)
            if found is not None:
                self.check(path, found[0], value, found[1])
        elif kind == "union":
            self._union(path, d, value, base)
        elif kind == "object":
            self._object(path, d, value, base)
        elif kind == "array":
            self._array(path, d, value, base)
        else:
            _primitive(path, d, value)

    def _object(self, path: str, d: Def, value: Any, base: str) -> None:
        if not isinstance(value, dict):
            _fail(path, "must be an object", f"Expected object value type (got {_got(value)})")
        required, nullable = set(d.get("required", [])), set(d.get("nullable", []))
        for key, prop in d.get("properties", {}).items():
            if key not in value:
                if key in required:
                    _fail(path, f'must have the property "{key}"', f'Missing required key "{key}"')
                continue
            if value[key] is None and key in nullable:
                continue
            self.check(_child(path, key), prop, value[key], base)

    def _array(self, path: str, d: Def, value: Any, base: str) -> None:
        if not isinstance(value, list):
            _fail(path, "must be an array", f"Expected array value type (got {_got(value)})")
        if "maxLength" in d and len(value) > d["maxLength"]:
            _fail(
                path,
                f"must not have more than {d['maxLength']} elements",
                f"array too big (maximum {d['maxLength']}, got {len(value)})",
            )
        if "minLength" in d and len(value) < d["minLength"]:
            _fail(
                path,
                f"must not have fewer than {d['minLength']} elements",
                f"array too small (minimum {d['minLength']}, got {len(value)})",
            )
        for i, item in enumerate(value):
            self.check(f"{path}[{i}]" if _new(path) else f"{path}/{i}", d["items"], item, base)

    def _union(self, path: str, d: Def, value: Any, base: str) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("$type"), str):
            _fail(
                path,
                'must be an object which includes the "$type" property',
                'Expected an object which includes the "$type" property value type '
                f"(got {_got(value)})",
            )
        refs = [_absolute(ref, base) for ref in d["refs"]]
        kind = _absolute(value["$type"], base)
        if kind not in refs:
            if d.get("closed"):
                _fail(
                    path,
                    f"$type must be one of {', '.join(d['refs'])}",
                    f"Expected one of {', '.join(d['refs'])} (got {_got(value['$type'])})",
                )
            return  # an open union accepts types it does not list
        found = self.resolve(kind, base)
        if found is not None:
            self.check(path, found[0], value, found[1])


def _new(path: str) -> bool:
    """Say whether a path is written the PDS 0.5's way ($.record.text), not the old (Record/text)."""
    return path.startswith("$")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _new(path) else f"{path}/{key}"


def _fail(path: str, old: str, new: str) -> NoReturn:
    """Raise in the words of the path's style: ``NEW at $.x.y`` or ``Record/x OLD``."""
    raise LexiconError(_at(path, new) if _new(path) else _at(path, old))


def _at(path: str, problem: str) -> str:
    """Return a problem that has one wording for both styles, placed as the path's style wants."""
    return f"{problem} at {path}" if _new(path) else f"{path} {problem}"


def _got(value: Any) -> str:
    """Show a value as the PDS does after "got": JSON, an object by its first key."""
    if isinstance(value, dict):
        return "{" + (f"{json.dumps(next(iter(value)))}: ..." if value else "") + "}"
    if isinstance(value, list):
        return "[...]" if value else "[]"
    return json.dumps(value, ensure_ascii=False)


def _absolute(ref: str, base: str) -> str:
    """Return a ref as "nsid#name", "#main" explicit."""
    nsid, _, name = ref.partition("#")
    return f"{nsid or base}#{name or 'main'}"


def _primitive(path: str, d: Def, value: Any) -> None:
    kind = d.get("type")
    if kind == "string":
        _string(path, d, value)
    elif kind == "integer":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            _fail(path, "must be an integer", f"Expected integer value type (got {_got(value)})")
        _const_enum(path, d, value)
        if "maximum" in d and value > d["maximum"]:
            _fail(
                path,
                f"can not be greater than {d['maximum']}",
                f"integer too big (maximum {d['maximum']}, got {value})",
            )
        if "minimum" in d and value < d["minimum"]:
            _fail(
                path,
                f"can not be less than {d['minimum']}",
                f"integer too small (minimum {d['minimum']}, got {value})",
            )
    elif kind == "boolean":
        if not isinstance(value, bool):
            _fail(path, "must be a boolean", f"Expected boolean value type (got {_got(value)})")
        _const_enum(path, d, value)
    elif kind == "bytes":
        _bytes(path, d, value)
    elif kind == "cid-link":
        if not (_is_link(value) and FORMATS["cid"][0](value["$link"])):
            raise LexiconError(_at(path, "must be a CID"))
    elif kind == "blob":
        _blob(path, d, value)
    elif kind == "unknown":
        if not isinstance(value, dict) or _is_link(value) or _is_bytes(value) or _is_blob(value):
            raise LexiconError(_at(path, "must be an object"))
    else:
        raise LexiconError(f"Unexpected lexicon type: {kind}")


def _const_enum(path: str, d: Def, value: Any) -> None:
    if "const" in d and value != d["const"]:
        raise LexiconError(_at(path, f"must be {json.dumps(d['const'])}"))
    if "enum" in d and value not in d["enum"]:
        raise LexiconError(_at(path, f"must be one of ({'|'.join(map(str, d['enum']))})"))


def _string(path: str, d: Def, value: Any) -> None:
    if not isinstance(value, str):
        _fail(path, "must be a string", f"Expected string value type (got {_got(value)})")
    _const_enum(path, d, value)
    size = len(value.encode("utf-8", "surrogatepass"))
    if "maxLength" in d and size > d["maxLength"]:
        _fail(
            path,
            f"must not be longer than {d['maxLength']} characters",
            f"string too big (maximum {d['maxLength']}, got {size})",
        )
    if "minLength" in d and size < d["minLength"]:
        _fail(
            path,
            f"must not be shorter than {d['minLength']} characters",
            f"string too small (minimum {d['minLength']}, got {size})",
        )
    if "maxGraphemes" in d or "minGraphemes" in d:
        count = len(_GRAPHEME.findall(value))
        if "maxGraphemes" in d and count > d["maxGraphemes"]:
            _fail(
                path,
                f"must not be longer than {d['maxGraphemes']} graphemes",
                f"grapheme too big (maximum {d['maxGraphemes']}, got {count})",
            )
        if "minGraphemes" in d and count < d["minGraphemes"]:
            _fail(
                path,
                f"must not be shorter than {d['minGraphemes']} graphemes",
                f"grapheme too small (minimum {d['minGraphemes']}, got {count})",
            )
    if "format" in d and d["format"] in FORMATS:
        check, message = FORMATS[d["format"]]
        if not check(value):
            _fail(path, message, f"Invalid {d['format']} (got {_got(value)})")


def _bytes(path: str, d: Def, value: Any) -> None:
    if not _is_bytes(value):
        raise LexiconError(_at(path, "must be a byte array"))
    encoded = value["$bytes"]
    try:
        data = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise LexiconError(_at(path, "must be a byte array")) from None
    if "maxLength" in d and len(data) > d["maxLength"]:
        raise LexiconError(_at(path, f"must not be larger than {d['maxLength']} bytes"))
    if "minLength" in d and len(data) < d["minLength"]:
        raise LexiconError(_at(path, f"must not be smaller than {d['minLength']} bytes"))


def _blob(path: str, d: Def, value: Any) -> None:
    if is_legacy_blob(value):
        return  # the lexicon accepts it; the PDS then refuses it (see blob_refs)
    if not _is_blob(value):
        raise LexiconError(_at(path, "should be a blob ref"))
    if "maxSize" in d and value["size"] > d["maxSize"]:
        raise LexiconError(_at(path, f"cannot be larger than {d['maxSize']} bytes"))
    accept = d.get("accept")
    if accept and not mime_accepted(value["mimeType"], accept):
        raise LexiconError(_at(path, f"mime type must be one of {', '.join(accept)}"))


def mime_accepted(mime: str, accept: list[str]) -> bool:
    """Return whether a MIME type matches an accept list ("image/*", "*/*")."""
    return any(
        pattern in ("*/*", mime) or (pattern.endswith("/*") and mime.startswith(pattern[:-1]))
        for pattern in accept
    )


def _is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$link"} and isinstance(value["$link"], str)


def _is_bytes(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"$bytes"} and isinstance(value["$bytes"], str)


def _is_blob(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("$type") == "blob"
        and _is_link(value.get("ref"))
        and FORMATS["cid"][0](value["ref"]["$link"])
        and isinstance(value.get("mimeType"), str)
        and isinstance(value.get("size"), int)
        and not isinstance(value.get("size"), bool)
    )


def is_legacy_blob(value: Any) -> bool:
    """Return whether value is a pre-2023 blob ref: {"cid": ..., "mimeType": ...}."""
    return (
        isinstance(value, dict)
        and set(value) == {"cid", "mimeType"}
        and all(isinstance(v, str) for v in value.values())
    )


def blob_refs(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """Return every blob ref in a record, with its path of keys ("embed/images/image")."""
    if isinstance(value, list):
        return [found for item in value for found in blob_refs(item, path)]
    if not isinstance(value, dict):
        return []
    if _is_blob(value) or is_legacy_blob(value):
        return [("/".join(path), value)]
    return [found for key, item in value.items() for found in blob_refs(item, (*path, key))]
