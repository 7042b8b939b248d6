"""Bluesky: an atproto PDS with one account, its sessions, blobs and repo.

Checks what the PDS checks: app-password login (counted, so a test can assert sessions
are reused), access and refresh JWTs (expired: 400 ExpiredToken; a rotated refresh token
stays usable for a grace period and yields the same successor, as the PDS does), and
records against the lexicons in shared/conformance (text at most 300 graphemes and 3000
UTF-8 bytes, createdAt an atproto datetime, langs, facets, embeds), blobs referenced by a
post must have been uploaded, with a matching MIME type.

A refused record is answered in the words of the reference PDS 0.5.35 (checked against it in
tests/test_bluesky_pds.py): the problem, then where, ``Invalid app.bsky.feed.post record:
grapheme too big (maximum 300, got 301) at $.record.text``; a record key that is no TID:
``Invalid record key for app.bsky.feed.post: Invalid TID string (got "...") at $``; an
unknown handle: 400 HandleNotFound.

A record key given to createRecord must be a record key (a TID for app.bsky.feed.post,
whose lexicon says ``key: tid``); a key already taken is refused as the PDS refuses it:
the repository's MST throws "There is already a value at key", which the PDS answers
as a 500 InternalServerError (so a client cannot tell it from any other 500, and must
read the record at that key to know).

Stricter than the PDS, on purpose (each can be turned off): ``strict_facets`` refuses
facet byte ranges outside the text, reversed, or splitting a UTF-8 character (the PDS
stores them and the app silently drops or mis-draws them); ``strict_refs`` refuses a
reply whose root or parent is not a record here with that CID, or whose root is not the
parent's root (the PDS stores it and the AppView shows a broken thread).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
from typing import Any

from tests.standins import atsyntax
from tests.standins.base import route
from tests.standins.bluesky_auth import PdsSessions, invalid, xrpc_error
from tests.standins.lexicon import LexiconError, blob_refs, is_legacy_blob
from tests.standins.wire import Reply, Request, iso_ms

_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_B32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "abcdefghijklmnopqrstuvwxyz234567")
# where a post's blobs sit -> (lexicon, definition, property) holding their size limit
_BLOB_LIMITS = {
    "embed/images/image": ("app.bsky.embed.images", "image", "image"),
    "embed/media/images/image": ("app.bsky.embed.images", "image", "image"),
    "embed/external/thumb": ("app.bsky.embed.external", "external", "thumb"),
    "embed/media/external/thumb": ("app.bsky.embed.external", "external", "thumb"),
    "embed/video": ("app.bsky.embed.video", "main", "video"),
}
POST = "app.bsky.feed.post"


def cid_for(data: bytes, *, codec: int) -> str:
    """Return a CIDv1 (sha2-256, base32) of data: codec 0x55 raw (blobs), 0x71 dag-cbor."""
    digest = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode().translate(_B32).rstrip("=")


def record_cid(record: Any) -> str:
    """Return a record's CID; hashed over canonical JSON, not DAG-CBOR (a stand-in's liberty)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return cid_for(canonical.encode(), codec=0x71)


def tid(micros: int, clock_id: int = 0) -> str:
    """Return the 13-character timestamp identifier of a time in microseconds."""
    n = (micros << 10) | (clock_id & 0x3FF)
    return "".join(_S32[(n >> shift) & 31] for shift in range(60, -1, -5))


class Bluesky(PdsSessions):
    """A PDS for one account: sessions, uploadBlob, createRecord, listRecords and friends."""

    platform = "bluesky"
    post_routes = "com.atproto.repo.createRecord"

    def __init__(
        self, *, strict_facets: bool = True, strict_refs: bool = True, **options: Any
    ) -> None:
        """Take PdsSessions' options (handle, password, did, TTLs, max_logins, lexicons)."""
        super().__init__(**options)
        self.strict_facets, self.strict_refs = strict_facets, strict_refs
        self._blobs: dict[str, dict[str, Any]] = {}
        self._records: dict[str, dict[str, Any]] = {}  # at-uri -> {"uri", "cid", "value", ...}
        self._last_micros = 0

    # -- repo ------------------------------------------------------------------------------

    @route("POST", r"/xrpc/com\.atproto\.repo\.uploadBlob", "com.atproto.repo.uploadBlob")
    def upload_blob(self, req: Request, _: re.Match[str]) -> Reply:
        if (error := self._access(req)) is not None:
            return error
        mime = req.content_type or "application/octet-stream"
        cid = cid_for(req.body, codec=0x55)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(req.body)}
        self._blobs[cid] = blob
        return Reply.json(200, {"blob": blob})

    @route("POST", r"/xrpc/com\.atproto\.repo\.createRecord", "com.atproto.repo.createRecord")
    def create_record(self, req: Request, _: re.Match[str]) -> Reply:
        if (error := self._access(req)) is not None:
            return error
        body, error = self._input(req, "com.atproto.repo.createRecord")
        if error is not None:
            return error
        if not self._owns(body["repo"]):
            return xrpc_error(400, "InvalidRequest", f"Could not find repo: {body['repo']}")
        collection, record = body["collection"], body["record"]
        record.setdefault("$type", collection)
        status = "unknown"
        if body.get("validate") is not False:
            if record["$type"] != collection:
                return invalid(f"Invalid $type: expected {collection}, got {record['$type']}")
            if self.lexicons.has(collection):
                try:
                    self.lexicons.validate_record(collection, record)
                    if collection == POST:
                        self._check_post(record)
                except LexiconError as exc:
                    return invalid(f"Invalid {record['$type']} record: {exc}")
                status = "valid"
            elif body.get("validate") is True:
                return invalid(f"Lexicon not found: lex:{collection}")
        if (error := self._check_blobs(record)) is not None:
            return error
        rkey = body.get("rkey") or self._next_tid()
        if (error := self._check_rkey(collection, rkey)) is not None:
            return error
        uri = f"at://{self.did}/{collection}/{rkey}"
        if uri in self._records:  # the repo's MST throws a plain Error: the PDS answers 500
            return xrpc_error(500, "InternalServerError", "Internal Server Error")
        cid = record_cid(record)
        stored = {"uri": uri, "cid": cid, "value": record, "indexedAt": iso_ms(self.clock())}
        self._records[uri] = stored
        self.add_post({**stored, "collection": collection, "rkey": rkey})
        commit = {"cid": record_cid({"commit": uri, "prev": cid}), "rev": self._next_tid()}
        return Reply.json(
            200, {"uri": uri, "cid": cid, "commit": commit, "validationStatus": status}
        )

    @route("GET", r"/xrpc/com\.atproto\.repo\.getRecord", "com.atproto.repo.getRecord")
    def get_record(self, req: Request, _: re.Match[str]) -> Reply:
        params, error = self._params(req, "repo", "collection", "rkey")
        if error is not None:
            return error
        uri = f"at://{self.did}/{params['collection']}/{params['rkey']}"
        found = self._records.get(uri)
        wanted_cid = req.query.get("cid", [None])[0]
        if found is None or (wanted_cid and wanted_cid != found["cid"]):
            return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return Reply.json(200, {k: found[k] for k in ("uri", "cid", "value")})

    @route("GET", r"/xrpc/com\.atproto\.repo\.listRecords", "com.atproto.repo.listRecords")
    def list_records(self, req: Request, _: re.Match[str]) -> Reply:
        params, error = self._params(req, "repo", "collection")
        if error is not None:
            return error
        prefix = f"at://{self.did}/{params['collection']}/"
        page, error = self._page(req, [r for u, r in self._records.items() if u.startswith(prefix)])
        if error is not None:
            return error
        out: dict[str, Any] = {
            "records": [{k: r[k] for k in ("uri", "cid", "value")} for r in page]
        }
        if page:
            out["cursor"] = _rkey(page[-1])
        return Reply.json(200, out)

    @route("GET", r"/xrpc/app\.bsky\.feed\.getAuthorFeed", "app.bsky.feed.getAuthorFeed")
    def get_author_feed(self, req: Request, _: re.Match[str]) -> Reply:
        actor = req.query.get("actor", [""])[0]
        if not actor:
            return xrpc_error(400, "InvalidRequest", 'Params must have the property "actor"')
        if not self._owns(actor):
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        prefix = f"at://{self.did}/{POST}/"
        page, error = self._page(req, [r for u, r in self._records.items() if u.startswith(prefix)])
        if error is not None:
            return error
        author = {"did": self.did, "handle": self.handle, "displayName": "", "labels": []}
        feed = [
            {
                "post": {
                    "uri": r["uri"],
                    "cid": r["cid"],
                    "author": author,
                    "record": r["value"],
                    "replyCount": 0,
                    "repostCount": 0,
                    "likeCount": 0,
                    "quoteCount": 0,
                    "indexedAt": r["indexedAt"],
                    "labels": [],
                }
            }
            for r in page
        ]
        out: dict[str, Any] = {"feed": feed}
        if page:
            out["cursor"] = _rkey(page[-1])
        return Reply.json(200, out)

    # -- checks -----------------------------------------------------------------------------

    def _check_post(self, record: dict[str, Any]) -> None:
        """Apply the stricter-than-PDS checks; raise LexiconError worded as the PDS words its own."""
        text: bytes = record["text"].encode("utf-8")
        for i, facet in enumerate(record.get("facets", []) if self.strict_facets else []):
            path = f"$.record.facets[{i}].index"
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            if end > len(text):
                raise LexiconError(
                    f"byteEnd is past the end of the text ({len(text)} bytes) at {path}"
                )
            if start >= end:
                raise LexiconError(f"byteEnd must be greater than byteStart at {path}")
            for name, at in (("byteStart", start), ("byteEnd", end)):
                if at < len(text) and text[at] & 0xC0 == 0x80:
                    raise LexiconError(f"{name} splits a UTF-8 character at {path}")
        reply = record.get("reply")
        if not self.strict_refs or reply is None:
            return
        for key in ("root", "parent"):
            found = self._records.get(reply[key]["uri"])
            if found is None:
                raise LexiconError(
                    f"not a record here ({reply[key]['uri']}) at $.record.reply.{key}"
                )
            if found["cid"] != reply[key]["cid"]:
                raise LexiconError(
                    f"not the record's CID ({found['cid']}) at $.record.reply.{key}.cid"
                )
        parent = self._records[reply["parent"]["uri"]]["value"]
        root = parent["reply"]["root"]["uri"] if "reply" in parent else reply["parent"]["uri"]
        if reply["root"]["uri"] != root:
            raise LexiconError(f"not the thread's root ({root}) at $.record.reply.root")

    def _check_rkey(self, collection: str, rkey: str) -> Reply | None:
        """Refuse a record key that is not one, or not a TID where the lexicon wants one."""
        if not atsyntax.is_record_key(rkey):
            return invalid(
                f'Invalid record key for {collection}: Invalid record key (got "{rkey}") at $'
            )
        found = self.lexicons.resolve(f"{collection}#main", collection)
        if found is not None and found[0].get("key") == "tid" and not atsyntax.is_tid(rkey):
            return invalid(
                f'Invalid record key for {collection}: Invalid TID string (got "{rkey}") at $'
            )
        return None

    def _check_blobs(self, record: dict[str, Any]) -> Reply | None:
        for path, ref in blob_refs(record):
            if is_legacy_blob(ref):
                return invalid(f"Legacy blob ref at '{path}'")
            cid = ref["ref"]["$link"]
            stored = self._blobs.get(cid)
            if stored is None:
                return xrpc_error(400, "BlobNotFound", f"Could not find blob: {cid}")
            if stored["mimeType"] != ref["mimeType"]:
                return xrpc_error(
                    400,
                    "InvalidBlob",
                    "Referenced Mimetype does not match stored blob. "
                    f"Expected: {stored['mimeType']}, Got: {ref['mimeType']}",
                )
            limit = self._blob_limit(record.get("$type"), path)
            if limit is not None and stored["size"] > limit:
                return xrpc_error(
                    400,
                    "BlobTooLarge",
                    f"This file is too large. It is {stored['size']} bytes "
                    f"but the maximum size is {limit} bytes.",
                )
        return None

    def _blob_limit(self, kind: Any, path: str) -> int | None:
        where = _BLOB_LIMITS.get(path) if kind == POST else None
        found = self.lexicons.resolve(f"{where[0]}#{where[1]}", where[0]) if where else None
        if found is None or where is None:
            return None
        limit = found[0].get("properties", {}).get(where[2], {}).get("maxSize")
        return limit if isinstance(limit, int) else None

    # -- plumbing ----------------------------------------------------------------------------

    def _params(self, req: Request, *names: str) -> tuple[dict[str, str], Reply | None]:
        params = {name: req.query.get(name, [""])[0] for name in names}
        for name, value in params.items():
            if not value:
                return params, invalid(f'Params must have the property "{name}"')
        if not self._owns(params["repo"]):
            return params, invalid(f"Could not find repo: {params['repo']}")
        return params, None

    def _page(
        self, req: Request, records: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Reply | None]:
        """Return one page of records, newest first (oldest first with reverse=true)."""
        try:
            limit = int(req.query.get("limit", ["50"])[0])
        except ValueError:
            return [], invalid("Params/limit must be an integer")
        if not 1 <= limit <= 100:
            return [], invalid(
                f"Params/limit can not be {'less than 1' if limit < 1 else 'greater than 100'}"
            )
        reverse = req.query.get("reverse", ["false"])[0] == "true"
        cursor = req.query.get("cursor", [""])[0]
        ordered = sorted(records, key=_rkey, reverse=not reverse)
        if cursor:
            ordered = [r for r in ordered if (_rkey(r) > cursor) == reverse and _rkey(r) != cursor]
        return ordered[:limit], None

    def _next_tid(self) -> str:
        self._last_micros = max(int(self.clock() * 1_000_000), self._last_micros + 1)
        return tid(self._last_micros)

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "blobs": list(self._blobs.values())}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--handle", default="test.example")
        parser.add_argument("--password", default="test-app-password", help="the app password")
        parser.add_argument("--did", default="did:plc:solidaritystandin2345aa")
        parser.add_argument("--access-ttl", type=float, default=2 * 3600, help="seconds")
        parser.add_argument("--max-logins", type=int, help="answer 429 to logins past this many")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> Bluesky:
        """Build from parsed command-line options."""
        return cls(
            handle=ns.handle,
            password=ns.password,
            did=ns.did,
            access_ttl=ns.access_ttl,
            max_logins=ns.max_logins,
            **common,
        )


def _rkey(record: dict[str, Any]) -> str:
    return str(record["uri"]).rsplit("/", 1)[1]
