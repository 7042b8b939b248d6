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
from typing import Any

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
        """Check a record of collection nsid; raise LexiconError with the path "Record"."""
        found = self.resolve(nsid, nsid)
        if found is None or found[0].get("type") != "record":
            raise LexiconError(f"Lexicon not found: lex:{nsid}")
        self.check("Record", found[0]["record"], value, nsid)

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
            raise LexiconError(f"{path} must be an object")
        required, nullable = set(d.get("required", [])), set(d.get("nullable", []))
        for key, prop in d.get("properties", {}).items():
            if key not in value:
                if key in required:
                    raise LexiconError(f'{path} must have the property "{key}"')
                continue
            if value[key] is None and key in nullable:
                continue
            self.check(f"{path}/{key}", prop, value[key], base)

    def _array(self, path: str, d: Def, value: Any, base: str) -> None:
        if not isinstance(value, list):
            raise LexiconError(f"{path} must be an array")
        if "maxLength" in d and len(value) > d["maxLength"]:
            raise LexiconError(f"{path} must not have more than {d['maxLength']} elements")
        if "minLength" in d and len(value) < d["minLength"]:
            raise LexiconError(f"{path} must not have fewer than {d['minLength']} elements")
        for i, item in enumerate(value):
            self.check(f"{path}/{i}", d["items"], item, base)

    def _union(self, path: str, d: Def, value: Any, base: str) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("$type"), str):
            raise LexiconError(f'{path} must be an object which includes the "$type" property')
        refs = [_absolute(ref, base) for ref in d["refs"]]
        kind = _absolute(value["$type"], base)
        if kind not in refs:
            if d.get("closed"):
                raise LexiconError(f"{path} $type must be one of {', '.join(d['refs'])}")
            return  # an open union accepts types it does not list
        found = self.resolve(kind, base)
        if found is not None:
            self.check(path, found[0], value, found[1])


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
            raise LexiconError(f"{path} must be an integer")
        _const_enum(path, d, value)
        if "maximum" in d and value > d["maximum"]:
            raise LexiconError(f"{path} can not be greater than {d['maximum']}")
        if "minimum" in d and value < d["minimum"]:
            raise LexiconError(f"{path} can not be less than {d['minimum']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise LexiconError(f"{path} must be a boolean")
        _const_enum(path, d, value)
    elif kind == "bytes":
        _bytes(path, d, value)
    elif kind == "cid-link":
        if not (_is_link(value) and FORMATS["cid"][0](value["$link"])):
            raise LexiconError(f"{path} must be a CID")
    elif kind == "blob":
        _blob(path, d, value)
    elif kind == "unknown":
        if not isinstance(value, dict) or _is_link(value) or _is_bytes(value) or _is_blob(value):
            raise LexiconError(f"{path} must be an object")
    else:
        raise LexiconError(f"Unexpected lexicon type: {kind}")


def _const_enum(path: str, d: Def, value: Any) -> None:
    if "const" in d and value != d["const"]:
        raise LexiconError(f"{path} must be {json.dumps(d['const'])}")
    if "enum" in d and value not in d["enum"]:
        raise LexiconError(f"{path} must be one of ({'|'.join(map(str, d['enum']))})")


def _string(path: str, d: Def, value: Any) -> None:
    if not isinstance(value, str):
        raise LexiconError(f"{path} must be a string")
    _const_enum(path, d, value)
    size = len(value.encode("utf-8", "surrogatepass"))
    if "maxLength" in d and size > d["maxLength"]:
        raise LexiconError(f"{path} must not be longer than {d['maxLength']} characters")
    if "minLength" in d and size < d["minLength"]:
        raise LexiconError(f"{path} must not be shorter than {d['minLength']} characters")
    if "maxGraphemes" in d or "minGraphemes" in d:
        count = len(_GRAPHEME.findall(value))
        if "maxGraphemes" in d and count > d["maxGraphemes"]:
            raise LexiconError(f"{path} must not be longer than {d['maxGraphemes']} graphemes")
        if "minGraphemes" in d and count < d["minGraphemes"]:
            raise LexiconError(f"{path} must not be shorter than {d['minGraphemes']} graphemes")
    if "format" in d and d["format"] in FORMATS:
        check, message = FORMATS[d["format"]]
        if not check(value):
            raise LexiconError(f"{path} {message}")


def _bytes(path: str, d: Def, value: Any) -> None:
    if not _is_bytes(value):
        raise LexiconError(f"{path} must be a byte array")
    encoded = value["$bytes"]
    try:
        data = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise LexiconError(f"{path} must be a byte array") from None
    if "maxLength" in d and len(data) > d["maxLength"]:
        raise LexiconError(f"{path} must not be larger than {d['maxLength']} bytes")
    if "minLength" in d and len(data) < d["minLength"]:
        raise LexiconError(f"{path} must not be smaller than {d['minLength']} bytes")


def _blob(path: str, d: Def, value: Any) -> None:
    if is_legacy_blob(value):
        return  # the lexicon accepts it; the PDS then refuses it (see blob_refs)
    if not _is_blob(value):
        raise LexiconError(f"{path} should be a blob ref")
    if "maxSize" in d and value["size"] > d["maxSize"]:
        raise LexiconError(f"{path} cannot be larger than {d['maxSize']} bytes")
    accept = d.get("accept")
    if accept and not mime_accepted(value["mimeType"], accept):
        raise LexiconError(f"{path} mime type must be one of {', '.join(accept)}")


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
