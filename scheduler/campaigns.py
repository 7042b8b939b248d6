"""Campaign files: YAML in, validated models out, every problem with ``path:line``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from scheduler.checks import problems_from
from scheduler.errors import Problem, ProblemsError
from scheduler.timeutil import (
    cron_fields,
    parse_date,
    parse_date_or_datetime,
    parse_datetime,
    parse_duration,
    zone,
)
from scheduler.yamlfile import Located, load_yaml

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
SLUG_HELP = "use lower-case letters, digits, '-' and '_', starting with a letter or digit"


def _slug(value: Any) -> Any:
    if isinstance(value, str) and not SLUG.match(value):
        raise ValueError(f"'{value}' is not a valid id; {SLUG_HELP}")
    return value


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list) or value is None else [value]


def _every(value: Any) -> Any:
    delta = parse_duration(value)
    if delta <= timedelta(0):
        raise ValueError(f"'{value}' is not a positive interval; write one such as 3d or 12h")
    if delta < timedelta(minutes=1):
        raise ValueError(f"'{value}' is shorter than a minute; no campaign posts that often")
    return str(value)


def _cron(value: Any) -> Any:
    from datetime import UTC

    from apscheduler.triggers.cron import CronTrigger

    try:
        trigger = CronTrigger(**cron_fields(str(value)), timezone=UTC)
    except ValueError as exc:
        message = str(exc)
        if message.startswith(f"'{value}'"):
            raise
        raise ValueError(f"'{value}' is not a valid cron expression ({message})") from None
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"'{value}' never fires (no such date); check the day and month fields")
    return str(value)


def _language(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*", value):
        raise ValueError(
            f"'{value}' is not a language tag; use an ISO 639 code such as en, az or en-GB"
        )
    return value


Slug = Annotated[str, BeforeValidator(_slug)]
Day = Annotated[date, BeforeValidator(parse_date)]
DayOrTime = Annotated[date | datetime, BeforeValidator(parse_date_or_datetime)]
When = Annotated[datetime, BeforeValidator(parse_datetime)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Language = Annotated[str, BeforeValidator(_language)]


class Model(BaseModel):
    """Base of the file models: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Model):
    """Someone the campaign speaks for."""

    id: Slug
    name: str = Field(min_length=1)
    detained_on: Day | None = None
    released_on: Day | None = None
    vars: dict[str, Any] = Field(default_factory=dict)

    def released_by(self, day: date) -> bool:
        """Say whether this person is free on that date."""
        return self.released_on is not None and self.released_on <= day


class Media(Model):
    """An image attached to a post; alt text is required."""

    path: str = Field(min_length=1)
    alt: str = Field(min_length=1)
    url: str | None = Field(default=None, pattern=r"^https?://")  # a public copy (Threads)

    @field_validator("alt", mode="before")
    @classmethod
    def _alt(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("alt text is empty; describe the image for people who cannot see it")
        return value


class LinkCard(Model):
    """A link preview card (Bluesky's external embed and the like)."""

    url: str = Field(pattern=r"^https?://")
    title: str
    description: str = ""


class Part(Model):
    """One part of a hand-written thread."""

    text: str | None = None
    template: str | None = None
    media: Annotated[list[Media], BeforeValidator(_one_or_many)] = Field(default_factory=list)


def _part(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class Post(Model):
    """One message of a campaign and when it goes out."""

    id: Slug
    at: Annotated[list[When], BeforeValidator(_one_or_many)] | None = None
    cron: Annotated[str, BeforeValidator(_cron)] | None = None
    every: Annotated[str, BeforeValidator(_every)] | None = None
    anchor: When | None = None
    template: str | None = None
    text: str | None = None
    thread: list[Annotated[Part, BeforeValidator(_part)]] | None = None
    rotate: Literal["people"] | None = None
    for_each: Literal["people"] | None = None
    accounts: list[str] | None = None
    media: Annotated[list[Media], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    link_card: LinkCard | None = None
    language: Language | None = None
    content_warning: str | None = None
    visibility: Literal["public", "unlisted", "private", "direct"] | None = None  # Mastodon
    link_preview: bool = True  # Telegram's link preview under the message
    overflow: Literal["error", "thread", "truncate"] = "error"
    jitter: Duration | None = None
    grace: Duration | None = None

    @property
    def every_delta(self) -> timedelta | None:
        """Return the interval of an ``every`` schedule."""
        return parse_duration(self.every) if self.every else None


class Campaign(Model):
    """One campaign file."""

    name: Slug
    title: str = Field(min_length=1)
    timezone: str
    starts: DayOrTime | None = None
    ends: DayOrTime | None = None
    paused: bool = False
    language: Language | None = None
    accounts: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    people: list[Person] = Field(default_factory=list)
    posts: list[Post] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @property
    def tz(self) -> ZoneInfo:
        """Return the campaign's time zone."""
        return zone(self.timezone)

    def person(self, person_id: str | None) -> Person | None:
        """Return the person with that id."""
        return next((p for p in self.people if p.id == person_id), None)


@dataclass(frozen=True)
class LoadedCampaign:
    """A campaign with where it came from, for messages and inline templates.

    A campaign with errors keeps its valid people and posts, so that checks
    against accounts and templates can still report on them in the same run.
    """

    campaign: Campaign
    source: Located
    path: Path
    problems: tuple[Problem, ...] = field(default=())
    post_rows: tuple[int, ...] = field(default=())  # each post's position in the file
    people_rows: tuple[int, ...] = field(default=())

    @property
    def valid(self) -> bool:
        """Say whether the file has no errors (warnings allowed)."""
        return not any(p.severity == "error" for p in self.problems)

    def line(self, *loc: str | int) -> int:
        """Return the line of a location in the campaign file."""
        return self.source.line(loc)

    def post_index(self, post_id: str) -> int:
        """Return the position of a post in the file."""
        rows = self.post_rows or tuple(range(len(self.campaign.posts)))
        return next(rows[i] for i, p in enumerate(self.campaign.posts) if p.id == post_id)


def load_campaign(path: Path) -> LoadedCampaign:
    """Load and check one campaign file; raise ProblemsError listing every problem."""
    located = load_yaml(path)
    if located.data is None:
        raise ProblemsError(
            [
                located.problem(
                    (),
                    "the file is empty; a campaign needs at least name, title, timezone and posts",
                )
            ]
        )
    if not isinstance(located.data, dict):
        raise ProblemsError(
            [
                located.problem(
                    (), "a campaign file must be a mapping of keys (name:, title:, posts: ...)"
                )
            ]
        )
    problems: list[Problem] = []
    header, rows = _validate_parts(located, problems)
    if header is None:
        raise ProblemsError(problems)
    campaign = header.model_copy(update={k: [m for _, m in v] for k, v in rows.items()})
    post_rows = tuple(i for i, _ in rows["posts"])
    people_rows = tuple(i for i, _ in rows["people"])
    problems.extend(_check(campaign, located, people_rows, post_rows))
    return LoadedCampaign(campaign, located, path, tuple(problems), post_rows, people_rows)


def _validate_parts(
    located: Located, problems: list[Problem]
) -> tuple[Campaign | None, dict[str, list[tuple[int, Any]]]]:
    """Validate the header, each person and each post on its own, so all errors show at once."""
    data: dict[str, Any] = located.data
    header: Campaign | None = None
    try:
        header = Campaign.model_validate(
            {k: v for k, v in data.items() if k not in ("people", "posts")}
        )
    except ValidationError as exc:
        problems.extend(problems_from(exc, located, Campaign))
    rows: dict[str, list[tuple[int, Any]]] = {}
    for key, model in (("people", Person), ("posts", Post)):
        raw = data.get(key) or []
        if not isinstance(raw, list):
            problems.append(
                located.problem((key,), f"{key}: expected a list (each item starting with '- ')")
            )
            raw = []
        valid: list[tuple[int, Any]] = []
        for i, item in enumerate(raw):
            try:
                valid.append((i, model.model_validate(item)))
            except ValidationError as exc:
                problems.extend(problems_from(exc, located, model, (key, i)))
        rows[key] = valid
    return header, rows


def _check(
    c: Campaign, src: Located, people_rows: tuple[int, ...], post_rows: tuple[int, ...]
) -> list[Problem]:
    """Check what one model cannot: relations between keys."""
    out: list[Problem] = []
    seen_people: dict[str, int] = {}
    for i, person in zip(people_rows, c.people, strict=True):
        if person.id in seen_people:
            out.append(
                src.problem(
                    ("people", i, "id"),
                    f"person id '{person.id}' is used twice (first in people[{seen_people[person.id]}]); ids must be unique",
                )
            )
        seen_people.setdefault(person.id, i)
        if person.detained_on and person.released_on and person.released_on < person.detained_on:
            out.append(
                src.problem(
                    ("people", i, "released_on"),
                    f"released_on {person.released_on} is before detained_on {person.detained_on}; a person is released after being detained",
                )
            )
    if c.starts and c.ends and _as_date(c.ends) < _as_date(c.starts):
        out.append(src.problem(("ends",), f"ends {c.ends} is before starts {c.starts}"))
    seen_posts: dict[str, int] = {}
    for i, post in zip(post_rows, c.posts, strict=True):
        at = ("posts", i)
        if post.id in seen_posts:
            out.append(
                src.problem(
                    (*at, "id"),
                    f"post id '{post.id}' is used twice (first on line {src.line(('posts', seen_posts[post.id]))}); post ids must be unique in a campaign",
                )
            )
        seen_posts.setdefault(post.id, i)
        schedules = [k for k in ("at", "cron", "every") if getattr(post, k) is not None]
        if len(schedules) != 1:
            what = (
                "has no schedule"
                if not schedules
                else f"has {len(schedules)} schedules ({', '.join(schedules)})"
            )
            out.append(
                src.problem(at, f"post '{post.id}' {what}; give exactly one of at, cron or every")
            )
        if post.anchor is not None and post.every is None:
            out.append(
                src.problem((*at, "anchor"), "anchor goes with every; remove it or use every")
            )
        if post.every is not None and post.anchor is None and c.starts is None:
            out.append(
                src.problem(
                    (*at, "every"),
                    f"post '{post.id}' repeats every {post.every} but has nothing to count from; give it an anchor (a date and time) or give the campaign starts",
                )
            )
        bodies = [k for k in ("template", "text", "thread") if getattr(post, k) is not None]
        if len(bodies) != 1:
            what = "has no content" if not bodies else f"has {' and '.join(bodies)}"
            out.append(
                src.problem(
                    at, f"post '{post.id}' {what}; give exactly one of template, text or thread"
                )
            )
        for j, part in enumerate(post.thread or []):
            if (part.text is None) == (part.template is None):
                out.append(
                    src.problem(
                        (*at, "thread", j), "a thread part needs exactly one of text or template"
                    )
                )
        if post.rotate and post.for_each:
            out.append(
                src.problem((*at, "rotate"), "rotate and for_each cannot be combined; choose one")
            )
        if (post.rotate or post.for_each) and not c.people:
            key = "rotate" if post.rotate else "for_each"
            out.append(
                src.problem(
                    (*at, key),
                    f"{key}: people needs people, and the campaign lists none; add people: or remove {key}",
                )
            )
        if post.rotate and c.starts is None:
            out.append(
                src.problem(
                    (*at, "rotate"),
                    "rotate: people counts occurrences from the campaign's starts; add starts: to the campaign",
                )
            )
        if not (post.accounts if post.accounts is not None else c.accounts):
            out.append(
                src.problem(
                    at,
                    f"post '{post.id}' goes to no account; list accounts: in the campaign or the post",
                )
            )
        out.extend(_check_at(c, post, src, at))
    return out


def _check_at(c: Campaign, post: Post, src: Located, at: tuple[str | int, ...]) -> list[Problem]:
    out: list[Problem] = []
    for k, when in enumerate(post.at or []):
        day = when.date()
        if c.starts is not None and day < _as_date(c.starts):
            out.append(
                src.problem(
                    (*at, "at", k) if len(post.at or []) > 1 else (*at, "at"),
                    f"post '{post.id}' at {when} is before the campaign starts ({c.starts}); it will never be sent",
                    "warning",
                )
            )
        if c.ends is not None and day > _as_date(c.ends):
            out.append(
                src.problem(
                    (*at, "at", k) if len(post.at or []) > 1 else (*at, "at"),
                    f"post '{post.id}' at {when} is after the campaign ends ({c.ends}); it will never be sent",
                    "warning",
                )
            )
    return out


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def campaign_files(folder: Path) -> list[Path]:
    """List the campaign files of a folder, in a stable order."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_campaigns(folder: Path) -> tuple[list[LoadedCampaign], list[Problem]]:
    """Load every campaign of a folder: each one (with its own problems) and the unreadable files' problems."""
    from scheduler.errors import display_path

    if not folder.is_dir():
        return [], [
            Problem(
                display_path(folder),
                0,
                "campaigns folder not found; create it or pass --campaigns DIR",
            )
        ]
    loaded: list[LoadedCampaign] = []
    problems: list[Problem] = []
    names: dict[str, LoadedCampaign] = {}
    for path in campaign_files(folder):
        try:
            item = load_campaign(path)
        except ProblemsError as exc:
            problems.extend(exc.problems)
            continue
        first = names.get(item.campaign.name)
        if first is not None:
            clash = item.source.problem(
                ("name",),
                f"campaign name '{item.campaign.name}' is already used by {first.source.path}:{first.line('name')}; names must be unique across campaigns",
            )
            item = LoadedCampaign(
                item.campaign,
                item.source,
                item.path,
                (*item.problems, clash),
                item.post_rows,
                item.people_rows,
            )
        else:
            names[item.campaign.name] = item
        loaded.append(item)
    return loaded, problems
