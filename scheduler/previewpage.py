"""The dry run as one self-contained HTML page that staff can sign a window off from.

The page is built from frozen view objects (:class:`Page`, :class:`Day`, :class:`Card`)
and rendered by the templates in ``scheduler/html/`` with an autoescaping, non-sandboxed
Jinja2 environment: these are our templates, not a user's. Each distinct image is read
once (through :func:`~scheduler.confine.read_inside`, so never through a symlink or
``..``) and embedded once as a data URI; the cards name it, and the page's script fills
their ``src``. So an image used by 70 occurrences weighs on the file once, and the page
makes no request to any host when opened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scheduler.dryrun import Row
from scheduler.previewimages import Image, Images
from scheduler.project import Project
from scheduler.redact import redact
from scheduler.timeutil import to_zone

if TYPE_CHECKING:
    import jinja2

    from scheduler.campaigns import LoadedCampaign

# what each status means for the person signing off, shown on its card
STATUS_LABELS = {
    "ok": "Will be sent",
    "too_long": "Too long: not sent as shown",
    "error": "Error: cannot be sent",
    "held": "Held: not sent while the hold is in force",
    "skipped": "Skipped: not sent",
    "paused": "Paused: not sent while the campaign is paused",
}
SHORT_LABELS = {
    "ok": "will be sent",
    "too_long": "too long",
    "error": "error",
    "held": "held",
    "skipped": "skipped",
    "paused": "paused",
}


@dataclass(frozen=True)
class Part:
    """One part of a post (a thread has several), with its own length and images."""

    number: int
    text: str
    length: int
    images: tuple[Image, ...]


@dataclass(frozen=True)
class LinkPreview:
    """The link card under a post."""

    url: str
    host: str
    title: str
    description: str


@dataclass(frozen=True)
class Card:
    """One occurrence on one account, as its card shows it."""

    attrs: tuple[tuple[str, str], ...]  # the data-* attributes, the JSON's values
    campaign_title: str
    post: str
    account: str
    platform: str
    platform_name: str
    person: str | None
    scheduled_for: str  # ISO 8601, as the JSON has it
    time: str  # "11:00", in the campaign's zone
    zone: str
    sends_at: str | None  # the time with jitter, when it differs
    status: str
    status_label: str
    parts: tuple[Part, ...]
    limit: int | None
    link: LinkPreview | None
    warnings: tuple[str, ...]
    lang: str | None


@dataclass(frozen=True)
class Day:
    """One day of the window, with its cards."""

    id: str
    label: str
    weekday: int  # 1 (Monday) to 7, the column it takes in a week
    cards: tuple[Card, ...]


@dataclass(frozen=True)
class Campaign:
    """A campaign as the page's header lists it."""

    name: str
    title: str
    zone: str
    paused: bool
    count: int


@dataclass(frozen=True)
class Page:
    """Everything the page template shows."""

    title: str
    heading: str
    lang: str
    campaigns: tuple[Campaign, ...]
    window: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]  # (severity, the problem with its path:line)
    days: tuple[Day, ...]
    total: int
    counts: tuple[tuple[str, str, int], ...]  # (status, its label, how many)
    accounts: tuple[tuple[str, str], ...]  # (name, platform name)
    media: dict[str, str]  # ref -> data URI


def build(
    rows: Sequence[Row],
    project: Project,
    start: datetime | None = None,
    end: datetime | None = None,
    campaign: str | None = None,
) -> Page:
    """Return the page's view of the rows: the header, then the window day by day.

    Every text is masked here, one distinct string at a time (:func:`scheduler.redact.redact`),
    so the page needs no masking as a whole: masking 13 MB of markup costs more than all
    the rest, and the embedded images are bytes, not text, that masking could only corrupt.
    """
    mask = functools.lru_cache(maxsize=None)(redact)
    loaded = [lc for lc in project.campaigns if campaign in (None, lc.campaign.name)]
    counted: dict[str, int] = {}
    for row in rows:
        counted[row.occurrence.campaign] = counted.get(row.occurrence.campaign, 0) + 1
    campaigns = tuple(
        Campaign(
            mask(lc.campaign.name),
            mask(lc.campaign.title),
            lc.campaign.timezone,
            lc.campaign.paused,
            counted.get(lc.campaign.name, 0),
        )
        for lc in loaded
    )
    languages = {lc.campaign.name: lc.campaign.language for lc in loaded}
    post_languages = {
        (lc.campaign.name, p.id): p.language for lc in loaded for p in lc.campaign.posts
    }
    images = Images(project.settings.campaigns, mask)
    titles = {c.name: c.title for c in campaigns}
    labels = {name: a.platform.label for name, a in project.accounts.items()}
    by_day: dict[date, list[Card]] = {}
    for row in rows:
        occ = row.occurrence
        lang = post_languages.get((occ.campaign, occ.post)) or languages.get(occ.campaign)
        title = titles.get(occ.campaign, occ.campaign)
        card = _card(row, title, labels.get(occ.account, row.platform), lang, images, mask)
        by_day.setdefault(occ.scheduled_for.date(), []).append(card)
    for day in _window_days(start, end, loaded):
        by_day.setdefault(day, [])
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return Page(
        title="Preview: " + (", ".join(c.title for c in campaigns) or "no campaign"),
        heading=(
            f"Preview of {len(campaigns)} campaigns"
            if len(campaigns) > 1
            else f"Preview: {campaigns[0].title}"
            if campaigns
            else "Preview"
        ),
        lang="en",  # the page's own words; each post's text carries its campaign's language
        campaigns=campaigns,
        window=_window(start, end, loaded),
        problems=tuple(
            (
                p.severity,
                mask(f"{p.path}:{p.line}: {p.message}" if p.line else f"{p.path}: {p.message}"),
            )
            for p in sorted(project.problems)
        ),
        days=tuple(
            Day(f"day-{d.isoformat()}", f"{d:%A} {d.day} {d:%B %Y}", d.isoweekday(), tuple(cards))
            for d, cards in sorted(by_day.items())
        ),
        total=len(rows),
        counts=tuple(
            (s, SHORT_LABELS.get(s, s), n)
            for s, n in sorted(statuses.items(), key=lambda kv: _status_order(kv[0]))
        ),
        accounts=tuple(
            sorted(
                {
                    (mask(r.occurrence.account), labels.get(r.occurrence.account, r.platform))
                    for r in rows
                }
            )
        ),
        media=images.uris,
    )


def _status_order(status: str) -> tuple[int, str]:
    order = list(STATUS_LABELS)
    return (order.index(status) if status in order else len(order), status)


def _card(
    row: Row,
    title: str,
    label: str,
    lang: str | None,
    images: Images,
    mask: Callable[[str], str],
) -> Card:
    occ = row.occurrence
    when = occ.scheduled_for
    sends = row.sends_at
    parts = tuple(
        Part(
            i + 1,
            mask(text),
            row.lengths[i] if i < len(row.lengths) else 0,
            tuple(
                images.image(m)
                for m in (row.media if i == 0 else ())
                + (row.part_media[i] if i < len(row.part_media) else ())
            ),
        )
        for i, text in enumerate(row.parts)
    )
    card = row.link_card
    return Card(
        attrs=tuple(
            (name, mask(value))
            for name, value in (
                ("campaign", occ.campaign),
                ("post", occ.post),
                ("account", occ.account),
                ("platform", row.platform),
                ("person", occ.person or ""),  # JSON null is the empty string here
                ("scheduled-for", when.isoformat()),
                ("sends-at", sends.isoformat()),
                ("status", row.status),
                ("key", occ.key),
            )
        ),
        campaign_title=title,
        post=mask(occ.post),
        account=mask(occ.account),
        platform=row.platform,
        platform_name=label,
        person=mask(occ.person) if occ.person else None,
        scheduled_for=when.isoformat(),
        time=f"{when:%H:%M}",
        zone=_offset(when),
        sends_at=f"{sends:%H:%M:%S}" if sends != when else None,
        status=row.status,
        status_label=STATUS_LABELS.get(row.status, row.status),
        parts=parts,
        limit=row.limit,
        link=(
            LinkPreview(
                mask(card.url),
                mask(urlsplit(card.url).hostname or ""),
                mask(card.title),
                mask(card.description),
            )
            if card is not None
            else None
        ),
        warnings=tuple(mask(w) for w in row.warnings),
        lang=lang,
    )


def _offset(when: datetime) -> str:
    offset = when.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _window_days(
    start: datetime | None, end: datetime | None, loaded: Iterable[LoadedCampaign]
) -> list[date]:
    """Return every day of the window in each campaign's zone, so an empty day shows too."""
    if start is None or end is None:
        return []
    days: set[date] = set()
    for lc in loaded:
        tz = lc.campaign.tz
        first = to_zone(start, tz).date()
        last = (to_zone(end, tz) - timedelta(microseconds=1)).date()
        days.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return sorted(days)


def _window(
    start: datetime | None, end: datetime | None, loaded: Iterable[LoadedCampaign]
) -> tuple[str, ...]:
    if start is None or end is None:
        return ()
    out = []
    seen: set[str] = set()
    for lc in loaded:
        tz = lc.campaign.tz
        if tz.key in seen:
            continue
        seen.add(tz.key)
        lo, hi = to_zone(start, tz), to_zone(end, tz)
        out.append(
            f"{lo:%a} {lo.day} {lo:%b %Y %H:%M} to {hi:%a} {hi.day} {hi:%b %Y %H:%M} ({tz.key})"
        )
    return tuple(out)


@functools.cache
def environment() -> jinja2.Environment:
    """Return the environment of the page's templates (ours, so not sandboxed; autoescaped)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("scheduler", "html"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(page: Page) -> str:
    """Return the page as HTML."""
    return environment().get_template("preview.html.j2").render(page=page)
