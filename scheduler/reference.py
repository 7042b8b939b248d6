"""Reference pages for campaign files and accounts.yaml, generated from the pydantic models.

``python -m scheduler.reference`` writes ``docs/reference/campaign-file.md`` and
``docs/reference/accounts-file.md``; a test fails when they are not current.
"""

from __future__ import annotations

import sys
import types
import typing
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from scheduler.campaigns import Campaign, LinkCard, Media, Part, Person, Post
from scheduler.platforms import PLATFORMS
from scheduler.platforms.base import AccountSettings

REGENERATE = "python -m scheduler.reference"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference"

# one-line explanations, keyed by model name then field (the models carry few descriptions)
NOTES: dict[str, dict[str, str]] = {
    "Campaign": {
        "name": "the campaign's id, unique across the campaigns folder",
        "title": "a human title, shown in previews and reports",
        "timezone": "an IANA zone (Asia/Baku); times without an offset are in it",
        "starts": "first day (or moment) of the campaign; `every` and `rotate` count from it",
        "ends": "last day (or moment) of the campaign",
        "paused": "true stops every post of the campaign",
        "language": "default language tag of the posts",
        "accounts": "accounts (names in accounts.yaml) posts go to unless a post lists its own",
        "vars": "values templates see as `vars`",
        "people": "the people the campaign speaks for (see Person)",
        "posts": "the messages and their schedules (see Post)",
    },
    "Person": {
        "id": "the person's id, unique in the campaign",
        "name": "the name templates show",
        "detained_on": "the day the person was detained",
        "released_on": "from this day on the person is no longer featured",
        "vars": "values templates see as `person.vars`",
    },
    "Post": {
        "id": "the post's id, unique in the campaign",
        "at": "one datetime or a list; exactly one of `at`, `cron`, `every`",
        "cron": "five fields, standard cron (`0` and `7` are Sunday)",
        "every": "an interval such as `3d` or `12h`, counted from `anchor` or `starts`",
        "anchor": "the first time of an `every` schedule",
        "template": "a template file's name; exactly one of `template`, `text`, `thread`",
        "text": "the post's text, itself a template",
        "thread": "the parts of a hand-written thread (a string or a Part each)",
        "rotate": "features one person per occurrence, in turn",
        "for_each": "posts once per person not released",
        "accounts": "overrides the campaign's `accounts`",
        "media": "one image or a list (see Media)",
        "link_card": "a link preview card (see LinkCard)",
        "language": "overrides the campaign's `language`",
        "content_warning": "a content warning / spoiler text where the platform has one",
        "visibility": "Mastodon's visibility, overriding the account's",
        "link_preview": "Telegram's link preview under the message",
        "overflow": "what to do with a post over the platform's limit",
        "jitter": "sends each occurrence up to this much later",
        "grace": "how late a due post may still go out (default 15 minutes)",
    },
    "Part": {
        "text": "the part's text (a template); exactly one of `text`, `template`",
        "template": "a template file's name",
        "media": "one image or a list (see Media)",
    },
    "Media": {
        "path": "the image file, relative to the campaigns folder",
        "alt": "alt text, required: describe the image for people who cannot see it",
        "url": "a public copy of the same image (Threads takes images only so)",
    },
    "LinkCard": {
        "url": "the link",
        "title": "the card's title",
        "description": "the card's description",
    },
    "AccountSettings": {
        "platform": "the platform's name (the sections below)",
        "pace": "the least time between two posts of this account (`0` for none)",
        "proxy": "an `http://`, `https://` or `socks5://` URL for all requests",
        "max_characters": "a lower limit than the platform's own",
    },
}
FIELD_NOTES: dict[str, str] = {  # account keys of any platform
    "instance": "the Mastodon instance's base URL",
    "service": "the PDS's base URL",
    "handle": "the account's handle",
    "api": "the API's base URL (a test server can stand in)",
    "homeserver": "the homeserver's base URL",
    "room": "a room alias `#name:server` or id `!id:server` (quote it)",
    "chat": "a public `@name` or the numeric chat id",
    "page_id": "the Facebook page's id",
    "user_id": "the Threads user's id",
    "author": "the author's URN (person or organization)",
    "url": "where occurrences are POSTed; keep it in `${VAR}`",
    "secret": "signs the body with HMAC-SHA256",
    "visibility": "the default visibility of posts",
}
EXAMPLE_VALUES: dict[str, str] = {
    "handle": "example.bsky.social",
    "chat": '"@example_channel"',
    "room": '"#free-the-press:matrix.org"',
    "page_id": '"123456789"',
    "user_id": '"123456789"',
    "author": "urn:li:organization:123456",
    "url": "${PARTNER_WEBHOOK_URL}",
}
CAMPAIGN_EXAMPLES: dict[str, str] = {
    "Campaign": """\
name: free-the-press
title: Free the press
timezone: Asia/Baku
starts: 2026-03-01
ends: 2026-06-30
accounts: [hr-mastodon, hr-bluesky]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    detained_on: 2023-11-20
posts:
  - id: daily
    cron: "0 9 * * *"
    rotate: people
    text: "{{ person.name }} has been detained since {{ person.detained_on }}."
""",
    "Person": """\
id: sevinj
name: Sevinj Vagifgizi
detained_on: 2023-11-20
vars: {outlet: Abzas Media}
""",
    "Post": """\
id: report-launch
at: 2026-03-01 10:00
thread:
  - "Our report is out today."
  - text: "Read it here."
    media: {path: images/cover.png, alt: "The report's cover"}
link_card: {url: "https://example.org/report", title: Our report}
overflow: thread
grace: 2h
""",
    "Part": """\
text: "Read it here."
media:
  - path: images/cover.png
    alt: "The report's cover"
""",
    "Media": """\
path: images/cover.png
alt: "The report's cover: a journalist behind bars"
""",
    "LinkCard": """\
url: https://example.org/report
title: "Azerbaijan: From Newsroom to Cell"
description: The report
""",
}
CAMPAIGN_MODELS: tuple[type[BaseModel], ...] = (Campaign, Person, Post, Part, Media, LinkCard)
VALIDATOR_TYPES = {  # BeforeValidator function -> what the value is written as
    "_slug": "id",
    "parse_date": "date",
    "parse_date_or_datetime": "date or datetime",
    "parse_datetime": "datetime",
    "parse_duration": "duration",
    "_cron": "cron expression",
    "_every": "interval",
    "_language": "language tag",
    "_url": "URL",
}
SCALARS = {str: "string", int: "integer", bool: "boolean", float: "number", Any: "any"}
SCALARS.update({date: "date", datetime: "datetime", timedelta: "duration", SecretStr: "secret"})


def type_name(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> str:
    """Describe a field's type in words (``list of Media``, ``string or integer``)."""
    for item in metadata:
        name = getattr(getattr(item, "func", None), "__name__", "")
        if name == "_one_or_many":
            inner = typing.get_args(annotation)
            return f"{type_name(inner[0]) if inner else 'value'} or a list of them"
        if name in VALIDATOR_TYPES:
            return VALIDATOR_TYPES[name]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], annotation.__metadata__)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin is Literal:
        return "string" if all(isinstance(a, str) for a in args) else "value"
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _literals(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return [v for a in typing.get_args(annotation) for v in _literals(a)]


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "`[]`" if value == [] else "`{}`" if value == {} else f"`{value!r}`"
    if info.default is PydanticUndefined:
        return "**required**"
    value = info.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{int(value.total_seconds())}s`"
    return f"`{value}`"


def _constraints(info: FieldInfo) -> list[str]:
    out = []
    for item in info.metadata:
        for attr, words in (("min_length", "at least {} character"), ("gt", "greater than {}")):
            if getattr(item, attr, None) is not None:
                out.append(words.format(getattr(item, attr)))
        if getattr(item, "pattern", None):
            out.append(f"matches `{item.pattern}`")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(
    model: type[BaseModel],
    notes: dict[str, str],
    only: list[str] | None = None,
    secrets: tuple[str, ...] = (),
) -> str:
    rows = ["| key | type | default | allowed values / notes |", "| --- | --- | --- | --- |"]
    for key, info in model.model_fields.items():
        if only is not None and key not in only:
            continue
        words = [notes.get(key, info.description or "")]
        allowed = _literals(info.annotation)
        if allowed:
            words.append("one of " + ", ".join(f"`{a}`" for a in allowed))
        words.extend(_constraints(info))
        if key in secrets:
            words.append("**secret**: only as `${VAR}`")
        note = "; ".join(w for w in words if w)
        kind = type_name(info.annotation, info.metadata)
        rows.append(f"| `{key}` | {_cell(kind)} | {_default(info)} | {_cell(note)} |")
    return "\n".join(rows)


def _yaml(text: str) -> str:
    return f"```yaml\n{text.rstrip()}\n```"


def campaign_reference() -> str:
    """Return the Markdown reference of a campaign file."""
    parts = [
        "# Campaign file reference",
        "",
        f"Generated from the models in `scheduler/campaigns.py` by `{REGENERATE}`;"
        " do not edit by hand. Unknown keys are errors.",
    ]
    for model in CAMPAIGN_MODELS:
        doc = (model.__doc__ or "").strip().splitlines()[0]
        parts += ["", f"## {model.__name__}", "", doc, ""]
        parts += [
            _table(model, NOTES[model.__name__]),
            "",
            _yaml(CAMPAIGN_EXAMPLES[model.__name__]),
        ]
    return "\n".join(parts) + "\n"


def account_example(name: str, model: type[AccountSettings], secrets: tuple[str, ...]) -> str:
    """Return a YAML example of one account on that platform."""
    lines = [f"hr-{name}:", f"  platform: {name}"]
    for key, info in model.model_fields.items():
        if key in AccountSettings.model_fields:
            continue
        if key in secrets:
            value = f"${{{name.upper()}_{key.upper()}}}"
        elif key in EXAMPLE_VALUES:
            value = EXAMPLE_VALUES[key]
        elif info.default not in (PydanticUndefined, None):
            value = str(info.default)
        else:
            continue
        lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"


def accounts_reference() -> str:
    """Return the Markdown reference of accounts.yaml, one section per platform."""
    parts = [
        "# Accounts file reference",
        "",
        f"Generated from each platform's settings model by `{REGENERATE}`;"
        " do not edit by hand. `accounts.yaml` maps an account's name to its keys;"
        " unknown keys are errors; secrets are written only as `${VAR}`"
        " (set in the environment or in `.env`).",
        "",
        "## Keys of every account",
        "",
        _table(AccountSettings, NOTES["AccountSettings"]),
    ]
    for name in sorted(PLATFORMS):
        platform = PLATFORMS[name]
        model = platform.settings_model
        secrets = tuple(platform.secret_fields)
        secrets += tuple(
            k
            for k, f in model.model_fields.items()
            if k not in secrets and SecretStr in (f.annotation, *typing.get_args(f.annotation))
        )
        own = [k for k in model.model_fields if k not in AccountSettings.model_fields]
        parts += ["", f"## {name}", "", "Its own keys, besides those of every account:", ""]
        parts += [_table(model, FIELD_NOTES, own, secrets), ""]
        parts.append(_yaml(account_example(name, model, secrets)))
    return "\n".join(parts) + "\n"


def pages() -> dict[str, str]:
    """Return each reference page's file name and text."""
    return {"campaign-file.md": campaign_reference(), "accounts-file.md": accounts_reference()}


def main(argv: list[str] | None = None) -> int:
    """Write the reference pages (into the folder given, else docs/reference)."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else DOCS
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in pages().items():
        (folder / file_name).write_text(text, encoding="utf-8")
        print(folder / file_name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["accounts_reference", "campaign_reference", "main", "pages", "type_name"]
