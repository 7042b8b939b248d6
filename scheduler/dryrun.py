"""The dry run: occurrences rendered exactly as they would be sent, and checked.

``preview`` shows these rows; ``validate`` turns the bad ones into problems. The
daemon renders through the same :class:`~scheduler.rendering.Renderer`, so what
the dry run shows is what is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from scheduler.campaigns import LinkCard, LoadedCampaign, Media, Post
from scheduler.errors import Problem, RenderError
from scheduler.planning import Occurrence, jitter_of, next_instant, order, plan_post
from scheduler.project import Project
from scheduler.timeutil import to_zone


class Row(NamedTuple):
    """One occurrence on one account as the dry run shows it."""

    occurrence: Occurrence
    platform: str
    status: str  # ok, too_long, error, paused, skipped
    parts: tuple[str, ...] = ()
    lengths: tuple[int, ...] = ()
    limit: int | None = None
    warnings: tuple[str, ...] = ()
    problem: Problem | None = None
    delay: timedelta = timedelta(0)  # the post's jitter for this occurrence
    media: tuple[Media, ...] = ()  # the post's images (with the first part)
    link_card: LinkCard | None = None
    part_media: tuple[tuple[Media, ...], ...] = ()  # each part's own images, in order

    @property
    def sends_at(self) -> datetime:
        """Return when the daemon sends it: the instant, plus the occurrence's jitter."""
        return self.occurrence.scheduled_for + self.delay

    @property
    def text(self) -> str:
        """Return the whole text (a thread's parts separated by blank lines)."""
        return "\n\n".join(self.parts)

    @property
    def length(self) -> int:
        """Return the length of the longest part."""
        return max(self.lengths, default=0)


def rows(
    project: Project,
    start: datetime,
    end: datetime,
    *,
    campaign: str | None = None,
    account: str | None = None,
) -> list[Row]:
    """Plan and render every occurrence in ``[start, end)``, ordered by instant."""
    out: list[Row] = []
    for lc in project.campaigns:
        if campaign is not None and lc.campaign.name != campaign:
            continue
        tz = lc.campaign.tz
        lo, hi = to_zone(start, tz), to_zone(end, tz)
        for post in lc.campaign.posts:
            occurrences = plan_post(lc.campaign, post, lo, hi)
            out.extend(render_rows(project, lc, post, occurrences, account))
    out.sort(key=lambda r: order(r.occurrence))
    return out


def render_rows(
    project: Project,
    lc: LoadedCampaign,
    post: Post,
    occurrences: Iterable[Occurrence],
    only_account: str | None = None,
) -> list[Row]:
    """Render occurrences of one post into rows."""
    out: list[Row] = []
    for occ in occurrences:
        if only_account is not None and occ.account != only_account:
            continue
        acct = project.accounts.get(occ.account)
        if acct is None:
            continue  # reported when the files were loaded
        platform = acct.platform.name
        if occ.status == "skipped":
            out.append(Row(occ, platform, "skipped", limit=acct.limit, warnings=(occ.reason,)))
            continue
        try:
            msg = project.renderer.message(lc, post, occ, acct)
        except RenderError as exc:
            out.append(
                Row(
                    occ,
                    platform,
                    "error",
                    limit=acct.limit,
                    warnings=(str(exc.problem),),
                    problem=exc.problem,
                )
            )
            continue
        status: str = "paused" if occ.status == "paused" else msg.status
        warnings = msg.warnings + ((occ.reason,) if occ.reason else ())
        delay = jitter_of(occ, post.jitter)
        parts_media = tuple(tuple(p.media) for p in post.thread or ())
        if not any(parts_media):
            parts_media = ()
        elif len(parts_media) != len(msg.parts):  # split to fit: the images cannot be placed
            status = "error"
            warnings = (
                f"its thread was split into {len(msg.parts)} parts to fit, so the images of its "
                f"{len(parts_media)} parts cannot be placed; shorten the parts",
                *warnings,
            )
        out.append(
            Row(
                occ,
                platform,
                status,
                msg.parts,
                msg.lengths,
                msg.limit,
                warnings,
                None,
                delay,
                tuple(post.media),
                post.link_card,
                parts_media,
            )
        )
    return out


def validate(project: Project, now: datetime, days: int) -> list[Problem]:
    """Render every post for every account over the next ``days`` days; return every problem.

    A post with nothing in the window is rendered at its next occurrence, so a
    broken template is found before the day it would go out.
    """
    problems: list[Problem] = list(project.problems)
    end = now + timedelta(days=days)
    seen: set[tuple[str, int, str]] = set()
    reported = {(p.path, p.line) for p in problems}
    too_long: set[tuple[str, str, str]] = set()
    daily: dict[tuple[str, date], int] = {}  # posts (thread parts) per account per UTC day
    for lc in project.campaigns:
        for post in lc.campaign.posts:
            found = list(
                plan_post(
                    lc.campaign, post, to_zone(now, lc.campaign.tz), to_zone(end, lc.campaign.tz)
                )
            )
            if not found:
                upcoming = next_instant(lc.campaign, post, to_zone(end, lc.campaign.tz))
                if upcoming is not None:
                    found = list(
                        plan_post(lc.campaign, post, upcoming, upcoming + timedelta(seconds=1))
                    )
            for row in render_rows(project, lc, post, found):
                if (
                    row.status in ("ok", "too_long")
                    and found
                    and row.occurrence.scheduled_for < to_zone(end, lc.campaign.tz)
                ):
                    day = (
                        row.occurrence.account,
                        row.occurrence.scheduled_for.astimezone(UTC).date(),
                    )
                    daily[day] = daily.get(day, 0) + max(1, len(row.parts))
                if row.problem is not None:
                    marker = (row.problem.path, row.problem.line, row.problem.message)
                    if marker not in seen and marker[:2] not in reported:
                        seen.add(marker)
                        problems.append(row.problem)
                elif row.status == "too_long" or (
                    row.status == "paused" and row.limit is not None and row.length > row.limit
                ):
                    marker2 = (lc.campaign.name, post.id, row.occurrence.account)
                    if marker2 not in too_long:
                        too_long.add(marker2)
                        problems.append(_too_long(lc, post, row))
    problems.extend(_over_daily_limit(project, daily))
    return problems


def _over_daily_limit(project: Project, daily: dict[tuple[str, date], int]) -> list[Problem]:
    """Warn where the campaigns plan more posts in a day than an account's platform publishes."""
    out: list[Problem] = []
    worst: dict[str, tuple[int, date]] = {}
    for (name, day), count in daily.items():
        account = project.accounts.get(name)
        limit = account.platform.posts_per_day if account is not None else None
        if limit is not None and count > limit and count > worst.get(name, (0, day))[0]:
            worst[name] = (count, day)
    for name, (count, day) in sorted(worst.items()):
        account = project.accounts[name]
        out.append(
            Problem(
                account.path,
                account.line,
                f"{name}: {count} posts are planned on {day} (UTC), and "
                f"{account.platform.label} publishes at most {account.platform.posts_per_day} "
                "in 24 hours; the rest would be refused",
                "warning",
            )
        )
    return out


def _too_long(lc: LoadedCampaign, post: Post, row: Row) -> Problem:
    occ = row.occurrence
    index = lc.post_index(post.id)
    where = "template" if post.template else "text" if post.text is not None else "thread"
    line = lc.line("posts", index, where)
    who = f" featuring {occ.person}" if occ.person else ""
    extra = "; ".join(w for w in row.warnings if "bytes" in w)
    size = (
        f"{row.length}/{row.limit}" if row.limit is not None and row.length > row.limit else extra
    )
    return Problem(
        lc.source.path,
        line,
        f"post '{post.id}' is too long for {occ.account} ({row.platform}) on "
        f"{occ.scheduled_for:%Y-%m-%d %H:%M}{who}: {size}; shorten it, add a shorter "
        f"{post.template or 'NAME'}.{row.platform}.j2, or set overflow: thread or truncate",
    )
