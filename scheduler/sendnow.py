"""A person's send (``solidarity send``): what it would post, whether it may, and posting it.

Before anything is asked or sent, every target is checked: a hold in force
refuses it, and so does a send of the same post to the same account (and person)
in the last 24 hours, unless ``again``. Nothing goes out when any is refused.
The posting itself is the daemon's own path (:func:`scheduler.runner.send_now`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.accounts import Account
from scheduler.campaigns import LoadedCampaign, Post
from scheduler.errors import SolidarityError, UsageError
from scheduler.ledger import Entry, Ledger
from scheduler.planning import Occurrence, next_instant, plan_post
from scheduler.project import Project


@dataclass
class Asked:
    """A send a person asked for, checked: what goes where, and how it reads."""

    lc: LoadedCampaign
    post: Post
    jobs: list[tuple[Occurrence, Account]]
    previews: list[str]


def prepare(
    project: Project,
    ledger: Ledger | None,
    now: datetime,
    campaign: str,
    post_id: str,
    *,
    account: str | None = None,
    person: str | None = None,
    again: bool = False,
) -> Asked:
    """Check a send and render it; raise UsageError (wrong names) or SolidarityError (refused)."""
    from scheduler import manual
    from scheduler.holds import HoldStore

    lc, post, targets = target(project, campaign, post_id, account)
    stopped = stop_of(lc, now)
    if stopped is not None:
        raise SolidarityError(f"nothing was sent: {stopped}")
    instant = now.astimezone(lc.campaign.tz).replace(microsecond=0)
    people = people_for(lc, post, person, now)
    occurrences = [
        Occurrence(lc.campaign.name, post.id, a.name, instant, who, 0)
        for a in targets
        for who in people
    ]
    # file problems: this load has its own (a daemon's file holds may be older than the files)
    holds = [h for h in HoldStore(ledger).all() if h.is_command] if ledger is not None else []
    refused = manual.refusals(lc, post, occurrences, holds, ledger, now, again)
    if refused:
        lines = "".join(f"\nrefused: {line}" for line in refused)
        raise SolidarityError(
            f"nothing was sent ({len(refused)} of {len(occurrences)} refused){lines}"
        )
    accounts = {a.name: a for a in targets}
    jobs = [(occ, accounts[occ.account]) for occ in manual.free_instant(ledger, occurrences)]
    previews = []
    for occ, acct in jobs:
        msg = project.renderer.message(lc, post, occ, acct)
        who = f" [{occ.person}]" if occ.person else ""
        head = f"── {acct.name} ({acct.platform.label}){who}: {msg.length}/{msg.limit or '-'} {msg.status}"
        previews.append("\n".join([head, *_shown(post, msg.parts)]))
        if msg.status != "ok":
            raise SolidarityError(
                f"the text is too long for {acct.name}; run `solidarity validate` for details"
            )
    return Asked(lc, post, jobs, previews)


def carry_out(
    asked: Asked,
    project: Project,
    ledger: Ledger,
    now: datetime,
    on_project: Callable[[Project], None],
) -> tuple[list[str], list[str]]:
    """Post a checked send; return what went out and what did not, a line per account."""
    from scheduler import runner

    located = [(asked.lc, asked.post, occ, acct) for occ, acct in asked.jobs]
    clock = runner.running_clock(now)
    entries: dict[str, Entry] = {
        e.key: e for e in runner.send_now(project, ledger, clock, located, on_project)
    }
    done: list[str] = []
    failed: list[str] = []
    for occ, acct in asked.jobs:
        entry = entries.get(occ.key)
        if entry is None:
            failed.append(f"{acct.name}: not sent (held, or taken by another process)")
        elif entry.status == "sent":
            done.append(f"{acct.name}: sent {entry.remote_url or entry.remote_id}")
        else:
            failed.append(f"{acct.name}: {entry.status}: {entry.error or entry.reason}")
    return done, failed


def _shown(post: Post, parts: tuple[str, ...]) -> list[str]:
    """Show a send's parts numbered, each with its images and alt text, then the link card."""
    thread = post.thread or []
    lines: list[str] = []
    for i, part in enumerate(parts):
        if len(parts) > 1:
            lines.append(f"┄ part {i + 1}/{len(parts)}")
        lines.append(part)
        media = [*(post.media if i == 0 else [])]
        if len(thread) == len(parts) and i < len(thread):
            media += thread[i].media
        lines.extend(f"🖼 {m.path}, alt: {m.alt}" for m in media)
    if post.link_card is not None:
        lines.append(f"🔗 {post.link_card.title} <{post.link_card.url}>")
    return lines


def stop_of(lc: LoadedCampaign, now: datetime) -> str | None:
    """Say why a campaign sends nothing now (paused, not started, ended), if it does not."""
    from scheduler.timeutil import end_of, start_of

    c = lc.campaign
    if c.paused:
        return f"{c.name} is paused ({lc.source.path}:{lc.line('paused')})"
    if c.starts is not None and now < start_of(c.starts, c.tz):
        return f"{c.name} starts on {c.starts}"
    if c.ends is not None and now >= end_of(c.ends, c.tz):
        return f"{c.name} ended on {c.ends}"
    return None


def people_for(
    lc: LoadedCampaign, post: Post, wanted: str | None, now: datetime
) -> list[str | None]:
    """Return whom a manual send features: --person, else whom the schedule features now."""
    c = lc.campaign
    if wanted is not None and not (post.rotate or post.for_each):
        raise UsageError(
            f"--person: post '{post.id}' features nobody (it has no rotate or for_each)"
        )
    if wanted is not None:
        person = c.person(wanted)
        if person is None:
            known = ", ".join(p.id for p in c.people) or "none"
            raise UsageError(f"--person: no person '{wanted}' in {c.name}; people: {known}")
        if person.released_by(now.astimezone(c.tz).date()):
            raise SolidarityError(
                f"{person.name} was released on {person.released_on}; nothing is sent featuring them"
            )
        return [person.id]
    if not (post.rotate or post.for_each):
        return [None]
    detained = [p for p in c.people if not p.released_by(now.astimezone(c.tz).date())]
    if not detained:
        raise SolidarityError(
            f"everyone post '{post.id}' speaks for has been released; nothing to send"
        )
    if post.for_each:
        return [p.id for p in detained]
    last = None
    for days in (1, 31, 400):  # the latest occurrence so far, looking back no further than needed
        for last in plan_post(c, post, now - timedelta(days=days), now + timedelta(seconds=1)):  # noqa: B007
            pass
        if last is not None:
            break
    if last is None:
        upcoming = next_instant(c, post, now)
        found = (
            list(plan_post(c, post, upcoming, upcoming + timedelta(seconds=1))) if upcoming else []
        )
        last = found[0] if found else None
    return [last.person if last else detained[0].id]


def target(
    project: Project, campaign: str, post_id: str, account: str | None
) -> tuple[LoadedCampaign, Post, list[Account]]:
    """Find the campaign, the post and the accounts a manual send goes to, or a usage error."""
    lc = project.campaign(campaign)
    if lc is None:
        known = ", ".join(c.campaign.name for c in project.campaigns) or "none loaded"
        problems = "".join(f"\n{p}" for p in project.errors)
        raise UsageError(f"no campaign '{campaign}'; campaigns: {known}{problems}")
    post = next((p for p in lc.campaign.posts if p.id == post_id), None)
    if post is None:
        posts = ", ".join(p.id for p in lc.campaign.posts)
        raise UsageError(f"no post '{post_id}' in {campaign}; posts: {posts}")
    targets = project.accounts_of(lc, post)
    if account is not None:
        targets = [a for a in targets if a.name == account]
        if not targets:
            raise UsageError(f"--account: post '{post_id}' does not go to '{account}'")
    return lc, post, targets
