"""LinkedIn (versioned REST API): posts, images, comments, organizations, read-back.

Modelled on LinkedIn's published Marketing API reference (learn.microsoft.com/linkedin):
  - "Posts API" (marketing/community-management/shares/posts-api: POST /rest/posts with
    author, commentary, visibility, distribution, lifecycleState, content.media /
    content.multiImage / content.article; 201 with the post's URN in ``x-restli-id``;
    GET /rest/posts?q=author with X-RestLi-Method: FINDER)
  - "little text format" (shares/little-text-format: ``| { } @ [ ] ( ) < > # * _ ~ \\``
    are reserved; an unescaped one cuts the commentary there, as LinkedIn does silently)
  - "Images API" (community-management/shares/images-api: POST
    /rest/images?action=initializeUpload, then a PUT of the bytes to ``uploadUrl``)
  - "Comments API" (shares/comments-api: POST /rest/socialActions/{urn}/comments)
  - "Versioning" (LinkedIn-Version: YYYYMM is required, X-Restli-Protocol-Version 2.0.0)
  - errors as {"status", "serviceErrorCode", "code", "message"}.

What was stored is the commentary as LinkedIn would show it (``shown``): escapes
removed, cut at the first unescaped reserved character that is not a hashtag's ``#``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any
from urllib.parse import unquote

from tests.standins.base import StandIn, route
from tests.standins.wire import Reply, Request

RESERVED = "|{}@[]()<>#*_~\\"
COMMENTARY_LIMIT = 3000


def error(status: int, message: str, code: str, service: int = 0) -> Reply:
    """Return LinkedIn's error shape."""
    return Reply.json(
        status, {"status": status, "serviceErrorCode": service, "code": code, "message": message}
    )


def shown(commentary: str) -> str:
    """Return the text LinkedIn shows for a little-format commentary (cut where it breaks)."""
    out: list[str] = []
    i = 0
    while i < len(commentary):
        c = commentary[i]
        if c == "\\" and i + 1 < len(commentary):
            out.append(commentary[i + 1])
            i += 2
            continue
        if c == "#" and i + 1 < len(commentary) and commentary[i + 1].isalnum():
            out.append(c)
        elif c in RESERVED:
            break  # what LinkedIn does: the rest is silently lost
        else:
            out.append(c)
        i += 1
    return "".join(out)


class LinkedIn(StandIn):
    """One author (an organization): posts, images, comments."""

    platform = "linkedin"
    post_routes = "posts.create"

    def __init__(
        self,
        *,
        organization: str = "1234567",
        token: str = "standin-linkedin-token",
        name: str = "Solidarity",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.organization, self.token, self.name = organization, token, name
        self._images: dict[str, dict[str, Any]] = {}
        self._comments: list[dict[str, Any]] = []
        self._last = 7_100_000_000

    @property
    def author(self) -> str:
        """Return the author URN accounts.yaml takes."""
        return f"urn:li:organization:{self.organization}"

    def _next(self) -> str:
        self._last += 1
        return str(self._last)

    def _denied(self, req: Request, *, versioned: bool = True) -> Reply | None:
        if req.bearer() != self.token or self.auth_rejected:
            return error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        if versioned and not re.fullmatch(r"20\d{4}", req.header("linkedin-version") or ""):
            return error(
                400,
                "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        if versioned and req.header("x-restli-protocol-version") != "2.0.0":
            return error(400, "Rest.li protocol version 2.0.0 is required", "ILLEGAL_ARGUMENT")
        return None

    def rate_limited(self, req: Request, retry_after: float) -> Reply:
        reply = error(
            429,
            "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            "TOO_MANY_REQUESTS",
        )
        reply.headers["Retry-After"] = str(int(retry_after))
        return reply

    @route("POST", r"/rest/posts", "posts.create")
    def create(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        try:
            body = req.json()
        except ValueError:
            return error(400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT")
        missing = [
            k
            for k in ("author", "commentary", "visibility", "distribution", "lifecycleState")
            if k not in body
        ]
        if missing:
            return error(
                422,
                "".join(
                    f"ERROR :: /{k} :: field is required but not found and has no default value\n"
                    for k in missing
                ),
                "UNPROCESSABLE_ENTITY",
            )
        if body["author"] != self.author:
            return error(
                403, f"Not enough permissions to post as {body['author']}", "ACCESS_DENIED", 100
            )
        if len(body["commentary"]) > COMMENTARY_LIMIT * 2:
            return error(422, "commentary is too long", "UNPROCESSABLE_ENTITY")
        content = body.get("content") or {}
        images = (
            [content["media"]]
            if "media" in content
            else (content.get("multiImage") or {}).get("images", [])
        )
        for image in images:
            if image.get("id") not in self._images or not self._images[image["id"]]["uploaded"]:
                return error(
                    422, f"Image {image.get('id')} is not uploaded", "UNPROCESSABLE_ENTITY"
                )
        text = shown(body["commentary"])
        if any(p["shown"] == text for p in self._posts):
            return error(
                422, f"Content is a duplicate of {self._posts[-1]['id']}", "DUPLICATE_POST"
            )
        post = {
            "id": f"urn:li:share:{self._next()}",
            "commentary": body["commentary"],
            "shown": text,
            "images": [{**self._images[i["id"]], "altText": i.get("altText")} for i in images],
            "article": content.get("article"),
            "createdAt": int(self.clock() * 1000),
        }
        self.add_post(post)
        return Reply(201, b"", {"x-restli-id": post["id"], "x-linkedin-id": post["id"]})

    @route("GET", r"/rest/posts", "posts.find")
    def find(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if (req.query.get("q") or [""])[-1] != "author" or req.header(
            "x-restli-method"
        ) != "FINDER":
            return error(400, "Invalid query parameters passed to request", "ILLEGAL_ARGUMENT")
        count = int((req.query.get("count") or ["10"])[-1])
        elements = [
            {
                "id": p["id"],
                "author": self.author,
                "commentary": p["commentary"],
                "createdAt": p["createdAt"],
            }
            for p in reversed(self._posts)
        ][:count]
        return Reply.json(200, {"elements": elements, "paging": {"count": count, "start": 0}})

    @route("POST", r"/rest/images", "images.initialize")
    def initialize(self, req: Request, _match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if (req.query.get("action") or [""])[-1] != "initializeUpload":
            return error(400, "Unknown action", "ILLEGAL_ARGUMENT")
        owner = ((req.json() or {}).get("initializeUploadRequest") or {}).get("owner")
        if owner != self.author:
            return error(403, f"Not enough permissions to upload as {owner}", "ACCESS_DENIED")
        number = self._next()
        urn = f"urn:li:image:C4E10AQ{number}"
        self._images[urn] = {"id": urn, "uploaded": False, "size": 0}
        return Reply.json(
            200,
            {
                "value": {
                    "uploadUrlExpiresAt": int(self.clock() * 1000) + 3_600_000,
                    "uploadUrl": f"{self.url}/dms-uploads/{number}",
                    "image": urn,
                }
            },
        )

    @route("PUT", r"/dms-uploads/(?P<number>\d+)", "images.upload")
    def upload(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req, versioned=False)) is not None:
            return denied
        image = self._images.get(f"urn:li:image:C4E10AQ{match['number']}")
        if image is None or not req.body:
            return error(400, "Invalid upload", "ILLEGAL_ARGUMENT")
        image.update(uploaded=True, size=len(req.body), type=req.content_type)
        return Reply(201)

    @route("POST", r"/rest/socialActions/(?P<urn>[^/]+)/comments", "comments.create")
    def comment(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        urn = unquote(match["urn"])
        body = req.json()
        if not any(p["id"] == urn for p in self._posts) or body.get("object") != urn:
            return error(404, f"Post {urn} not found", "NOT_FOUND")
        comment_id = self._next()
        text = shown(((body.get("message") or {}).get("text")) or "")
        self._comments.append({"id": comment_id, "object": urn, "shown": text})
        urn_of = f"urn:li:comment:({urn},{comment_id})"
        return Reply.json(
            201, {"id": comment_id, "$URN": urn_of, "object": urn}, {"x-restli-id": urn_of}
        )

    @route("GET", r"/rest/organizations/(?P<id>\d+)", "organizations.get")
    def organization_get(self, req: Request, match: re.Match[str]) -> Reply:
        if (denied := self._denied(req)) is not None:
            return denied
        if match["id"] != self.organization:
            return error(404, "Organization not found", "NOT_FOUND")
        return Reply.json(200, {"id": int(self.organization), "localizedName": self.name})

    @property
    def comments(self) -> list[dict[str, Any]]:
        """Return every comment made, oldest first."""
        with self._lock:
            return [dict(c) for c in self._comments]

    def extra_state(self) -> dict[str, Any]:
        return {"images": dict(self._images), "comments": list(self._comments)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "author": self.author, "token": self.token}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this platform's command-line options."""
        parser.add_argument("--organization", default="1234567")
        parser.add_argument("--token", default="standin-linkedin-token")

    @classmethod
    def from_arguments(cls, ns: argparse.Namespace, **common: Any) -> LinkedIn:
        """Build from parsed command-line options."""
        return cls(organization=ns.organization, token=ns.token, **common)
