"""Sandboxed Jinja2: an occurrence and an account in, the exact text to send out.

Templates are plain text (no HTML escaping), undefined names are errors, and the
sandbox refuses any reach into Python internals and any render over its budget
(:mod:`scheduler.budget`). Every failure names the template's ``path:line``,
including an undefined name met while rendering and a template that leads
outside its folder.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from scheduler import text as textlib
from scheduler.accounts import Account
from scheduler.budget import MAX_OUTPUT, OverBudget, spending
from scheduler.campaigns import Campaign, LoadedCampaign, Post
from scheduler.confine import OutsideError
from scheduler.errors import Problem, RenderError, display_path
from scheduler.planning import Occurrence
from scheduler.templating import Confined, days_since, hashtag, make_environment

__all__ = ["Message", "Renderer", "days_since", "fit", "hashtag", "make_environment"]


class Message(NamedTuple):
    """What goes out for one occurrence on one account, measured as the platform counts."""

    parts: tuple[str, ...]
    lengths: tuple[int, ...]
    limit: int | None
    status: Literal["ok", "too_long"]
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Return the whole text (a thread's parts separated by blank lines)."""
        return "\n\n".join(self.parts)

    @property
    def length(self) -> int:
        """Return the longest part's length: the one the limit bites on."""
        return max(self.lengths, default=0)


@dataclass(frozen=True)
class Compiled:
    """A compiled template with where its lines are, and whether accounts change its text."""

    template: jinja2.Template
    path: str
    offset: int  # added to the template's line numbers (inline text inside a campaign file)
    per_account: bool  # it names account or platform, or includes other templates


def _per_account(env: jinja2.Environment, source: str) -> bool:
    """Say whether a template's text can differ between two accounts."""
    tree = env.parse(source)
    if any(
        True for _ in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
    ):
        return True
    return bool(meta.find_undeclared_variables(tree) & {"account", "platform"})


class Renderer:
    """Render posts from the templates folder and campaigns' inline texts.

    A template that does not name ``account`` or ``platform`` gives every account
    the same text, so an occurrence is rendered once for all of them.
    """

    def __init__(self, templates: Path) -> None:
        self.templates = templates
        self.env = make_environment(templates)
        self._compiled: dict[tuple[str, ...], Compiled] = {}
        self._sources: dict[tuple[str, str, str], list[Compiled]] = {}
        self._contexts: dict[str, dict[str, Any]] = {}
        self._recent: dict[tuple[Any, ...], list[str]] = {}

    # -- finding templates ------------------------------------------------

    def template_file(self, name: str, platform: str) -> Path | None:
        """Return the file that renders template ``name`` on ``platform``, if any."""
        for candidate in (f"{name}.{platform}.j2", f"{name}.j2"):
            path = self.templates / candidate
            if path.is_file():
                return path
        return None

    def _compile(self, source: str, path: str, offset: int, name: str | None = None) -> Compiled:
        try:
            tmpl = self.env.get_template(name) if name else self.env.from_string(source)
            if name and isinstance(self.env.loader, Confined):
                source = self.env.loader.sources.get(name, source)
            return Compiled(tmpl, path, offset, _per_account(self.env, source))
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(_syntax(exc, path, offset)) from None
        except OutsideError as exc:
            raise RenderError(Problem(path, 1 + offset, f"template {exc}")) from None
        except (RecursionError, MemoryError):
            raise RenderError(
                Problem(path, 1 + offset, "template syntax: nested too deeply to read; simplify it")
            ) from None

    def _template(self, name: str, platform: str) -> Compiled:
        key = ("file", name, platform)
        found = self._compiled.get(key)
        if found is None:
            path = self.template_file(name, platform)
            if path is None:
                raise LookupError(name)
            found = self._compile("", display_path(path), 0, path.name)
            self._compiled[key] = found
        return found

    def _inline(self, lc: LoadedCampaign, source: str, loc: tuple[str | int, ...]) -> Compiled:
        key = ("inline", lc.campaign.name, *map(str, loc))
        found = self._compiled.get(key)
        if found is None:
            offset = lc.source.text_lines.get(loc, lc.source.line(loc)) - 1
            found = self._compile(source, lc.source.path, offset)
            self._compiled[key] = found
        return found

    def sources(self, lc: LoadedCampaign, post: Post, platform: str) -> list[Compiled]:
        """Return the compiled template of each part of a post for a platform."""
        key = (lc.campaign.name, post.id, platform)
        found = self._sources.get(key)
        if found is None:
            found = self._find_sources(lc, post, platform)
            self._sources[key] = found
        return found

    def _find_sources(self, lc: LoadedCampaign, post: Post, platform: str) -> list[Compiled]:
        index = lc.post_index(post.id)
        if post.thread is None:
            if post.text is not None:
                return [self._inline(lc, post.text, ("posts", index, "text"))]
            return [self._named(lc, post.template or "", platform, ("posts", index, "template"))]
        out = []
        for j, part in enumerate(post.thread):
            loc: tuple[str | int, ...] = ("posts", index, "thread", j)
            if part.text is not None:
                out.append(self._inline(lc, part.text, (*loc, "text")))
            else:
                out.append(self._named(lc, part.template or "", platform, (*loc, "template")))
        return out

    def _named(
        self, lc: LoadedCampaign, name: str, platform: str, loc: tuple[str | int, ...]
    ) -> Compiled:
        try:
            return self._template(name, platform)
        except LookupError:
            shown = display_path(self.templates)
            raise RenderError(
                Problem(
                    lc.source.path,
                    lc.source.line(loc),
                    f"template '{name}' not found for {platform}: looked for "
                    f"{shown}/{name}.{platform}.j2 and {shown}/{name}.j2",
                )
            ) from None

    # -- rendering --------------------------------------------------------

    def context(self, lc: LoadedCampaign, occ: Occurrence, account: Account) -> dict[str, Any]:
        """Build the names a template sees for one occurrence."""
        base = self._contexts.get(lc.campaign.name)
        if base is None:
            base = _campaign_context(lc.campaign)
            self._contexts[lc.campaign.name] = base
        people = base["_people_by_id"]
        day = occ.scheduled_for.date()
        return {
            "campaign": base["campaign"],
            "vars": base["vars"],
            "people": base["people"],
            "detained": [
                p for p in base["people"] if p["released_on"] is None or p["released_on"] > day
            ],
            "person": people.get(occ.person) if occ.person else None,
            "platform": account.platform.name,
            "account": account.name,
            "scheduled_for": occ.scheduled_for,
            "post": occ.post,
            "n": occ.n,
        }

    def render(
        self, lc: LoadedCampaign, post: Post, occ: Occurrence, account: Account
    ) -> list[str]:
        """Render every part of a post for one occurrence; raise RenderError with path:line."""
        sources = self.sources(lc, post, account.platform.name)
        shared = not any(c.per_account for c in sources)
        if shared:
            key = (
                *(id(c.template) for c in sources),
                occ.campaign,
                occ.post,
                occ.scheduled_for,
                occ.person,
            )
            hit = self._recent.get(key)
            if hit is not None:
                return list(hit)
        ctx = self.context(lc, occ, account)
        parts = [_render_one(c, ctx) for c in sources]
        if shared:
            if len(self._recent) >= 256:
                self._recent.clear()
            self._recent[key] = parts
        return list(parts)

    def message(
        self,
        lc: LoadedCampaign,
        post: Post,
        occ: Occurrence,
        account: Account,
        live_limit: int | None = None,
    ) -> Message:
        """Render and fit one occurrence for its account, as it would be sent."""
        return fit(self.render(lc, post, occ, account), post, account, live_limit)


def _render_one(compiled: Compiled, ctx: dict[str, Any]) -> str:
    tmpl, path, offset = compiled.template, compiled.path, compiled.offset
    try:
        with spending():
            text = tmpl.render(ctx).strip()
    except SecurityError as exc:
        raise RenderError(
            _runtime(exc, tmpl, path, offset, "the template sandbox refused: ")
        ) from None
    except (jinja2.TemplateError, OverBudget, OutsideError) as exc:
        raise RenderError(_runtime(exc, tmpl, path, offset, "")) from None
    except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
        raise RenderError(_runtime(exc, tmpl, path, offset, "")) from None
    except RecursionError as exc:
        raise RenderError(
            _runtime(
                exc, tmpl, path, offset, "recurses too deeply (a macro or loop calling itself?)"
            )
        ) from None
    except MemoryError as exc:
        raise RenderError(
            _runtime(exc, tmpl, path, offset, "needs more memory than any post")
        ) from None
    if len(text) > MAX_OUTPUT:
        raise RenderError(
            Problem(
                path,
                1 + offset,
                f"renders more than {MAX_OUTPUT:,} characters; no post is that long",
            )
        )
    return text


def fit(parts: list[str], post: Post, account: Account, live_limit: int | None = None) -> Message:
    """Measure rendered parts for an account and apply the post's overflow rule."""
    platform = account.platform
    limit = platform.limit_for(account.settings, with_media=bool(post.media))
    if (
        live_limit is not None
        and account.settings.max_characters is None
        and not (post.media and platform.media_caption_limit)
    ):
        limit = live_limit  # what the platform itself reports (a Mastodon instance's own limit)
    warnings: list[str] = []
    if limit is not None and post.overflow != "error":
        fitted: list[str] = []
        for part in parts:
            if platform.measure(part) <= limit:
                fitted.append(part)
            elif post.overflow == "truncate":
                fitted.append(textlib.truncate(part, limit, platform.counter))
                warnings.append(f"truncated to fit {limit}")
            else:
                pieces = textlib.split_thread(part, limit, platform.counter)
                fitted.extend(pieces)
                how = "a thread" if platform.has_threads else "consecutive messages"
                warnings.append(f"split into {len(pieces)} parts ({how})")
        parts = fitted
    lengths = tuple(platform.measure(p) for p in parts)
    status: Literal["ok", "too_long"] = "ok"
    if limit is not None and any(n > limit for n in lengths):
        status = "too_long"
    if platform.byte_limit is not None:
        for part in parts:
            size = textlib.utf8_bytes(part)
            if size > platform.byte_limit:
                status = "too_long"
                warnings.append(
                    f"{size} bytes is over {platform.label}'s {platform.byte_limit}-byte cap"
                )
    if any(not p for p in parts):
        warnings.append("the rendered text is empty")
    return Message(tuple(parts), lengths, limit, status, tuple(warnings))


def _campaign_context(c: Campaign) -> dict[str, Any]:
    people = [
        {
            "id": p.id,
            "name": p.name,
            "detained_on": p.detained_on,
            "released_on": p.released_on,
            "vars": p.vars,
        }
        for p in c.people
    ]
    return {
        "campaign": {
            "name": c.name,
            "title": c.title,
            "timezone": c.timezone,
            "starts": c.starts,
            "ends": c.ends,
            "language": c.language,
            "vars": c.vars,
        },
        "vars": c.vars,
        "people": people,
        "_people_by_id": {p["id"]: p for p in people},
    }


def _syntax(exc: jinja2.TemplateSyntaxError, path: str, offset: int) -> Problem:
    return Problem(path, (exc.lineno or 1) + offset, f"template syntax: {exc.message}")


def _runtime(exc: Exception, tmpl: jinja2.Template, path: str, offset: int, prefix: str) -> Problem:
    """Find the template line a runtime error came from in the rewritten traceback."""
    line = 0
    filename = tmpl.filename or "<template>"
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename and frame.lineno:
            line = frame.lineno
    message = str(exc) or type(exc).__name__
    if isinstance(exc, jinja2.UndefinedError) and message.startswith("'None' has no"):
        message += " (the value is empty: person is set only with rotate or for_each, and a date may be unset)"
    elif isinstance(exc, jinja2.UndefinedError):
        message = f"{message}; names available: campaign, vars, person, people, detained, platform, account, scheduled_for"
    return Problem(path, (line or 1) + offset, prefix + message)
