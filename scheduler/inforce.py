"""The files in force: what the daemon plans from, and what file problems hold.

An edit never leaves an old version sending, and a stop inside a broken edit
still stops. Each load is assessed against the version in force before it:

- a valid campaign file is in force as it is; a post whose templates fail to
  render is held (the template's ``path:line``), the rest of the campaign goes on;
- a campaign file with errors holds that campaign; it is planned from its last
  valid version with the stops its new text still says (``paused: true``,
  ``ends``, ``released_on``, removed posts and accounts), so that what stopped is
  ``skipped``, not sent when the file is fixed;
- a file that does not parse holds the campaign it held before (by path);
- an account entry with errors, or whose secrets are unset, holds that account;
  an ``accounts.yaml`` that cannot be read holds all posting.

Pure: the caller loads the files and gives ``now``; nothing here does I/O but
re-reading a broken campaign file for the stops it still says.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from scheduler import dryrun
from scheduler.campaigns import LoadedCampaign, Person, Post
from scheduler.errors import Problem, ProblemsError, display_path
from scheduler.holds import Hold
from scheduler.locate import grace_of
from scheduler.planning import next_instant, plan_post
from scheduler.project import Project
from scheduler.timeutil import parse_date_or_datetime, to_zone
from scheduler.yamlfile import load_yaml

_PAUSED = re.compile(r"^paused:\s*(true|True|TRUE|yes|on)\s*(#.*)?$", re.MULTILINE)
_LENIENT: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NAME = re.compile(r"^name:\s*['\"]?([a-z0-9][a-z0-9_-]*)", re.MULTILINE)


@dataclass
class InForce:
    """A project to plan from, the file holds it carries, and every problem found."""

    project: Project
    holds: list[Hold] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # errors that hold something
    by_path: dict[str, str] = field(default_factory=dict)  # campaign file -> campaign name

    def held(self, campaign: str, post: str, account: str, person: str | None) -> Hold | None:
        """Return the file hold that stops an occurrence, if any."""
        return next((h for h in self.holds if h.covers(campaign, post, account, person)), None)


def _source(problem: Problem) -> str:
    return f"{problem.path}:{problem.line}" if problem.line else problem.path


def _hold(problem: Problem, now: datetime, **scope: str | None) -> Hold:
    return Hold(
        campaign=scope.get("campaign"),
        person=None,
        account=scope.get("account"),
        why=problem.message,
        since=now,
        source=_source(problem),
        post=scope.get("post"),
    )


def assess(new: Project, before: InForce | None, now: datetime) -> InForce:
    """Put a freshly loaded project in force against the one before it (None at start)."""
    holds: list[Hold] = []
    problems: list[Problem] = []
    old_campaigns = {lc.campaign.name: lc for lc in before.project.campaigns} if before else {}
    old_accounts = before.project.accounts if before else {}
    accounts = dict(new.accounts)

    if new.accounts_unread:  # everything stops: accounts.yaml says nothing we can trust
        first = min(new.accounts_unread)
        holds.append(_hold(first, now))
        problems.extend(new.accounts_unread)
        accounts = {**old_accounts, **accounts}
    for name, found in sorted(new.broken_accounts.items()):
        where = min(found) if found else Problem(display_path(new.settings.accounts), 0, "invalid")
        holds.append(_hold(where, now, account=name))
        problems.extend(found)
        if name in old_accounts and name not in accounts:
            accounts[name] = old_accounts[name]
    in_use = {a for lc in new.campaigns for post in lc.campaign.posts for a in _names(lc, post)}
    for account in sorted(accounts.values(), key=lambda a: a.name):
        if account.name in in_use and account.unset:
            unset = account.unset_problems("posting from this account is held until it is set")
            holds.append(
                _hold(
                    Problem(unset[0].path, unset[0].line, unset[0].message),
                    now,
                    account=account.name,
                )
            )
            problems.extend(Problem(p.path, p.line, p.message) for p in unset)

    campaigns: list[LoadedCampaign] = []
    by_path: dict[str, str] = {}
    for lc in new.campaigns:
        by_path[lc.source.path] = lc.campaign.name
        campaigns.append(lc)
        for post in lc.campaign.posts:
            found = _render_problems(new, lc, post, now)
            if found:
                holds.append(_hold(found[0], now, campaign=lc.campaign.name, post=post.id))
                problems.extend(found)
    for lc in new.rejected:
        name = lc.campaign.name
        by_path[lc.source.path] = name
        errors = sorted(p for p in lc.problems if p.severity == "error")
        holds.append(_hold(errors[0], now, campaign=name))
        problems.extend(errors)
        old = old_campaigns.get(name)
        if old is not None:
            campaigns.append(_with_stops(old, lc.source.data))
    for path, found in sorted(new.unread.items()):
        errors = sorted(p for p in found if p.severity == "error") or sorted(found)
        problems.extend(errors)
        known = (before.by_path.get(path) if before else None) or _guess_name(path)
        if known is None:
            holds.append(_hold(errors[0], now, campaign=f"(the campaign in {path})"))
            continue
        by_path[path] = known
        holds.append(_hold(errors[0], now, campaign=known))
        old = old_campaigns.get(known)
        if old is not None and all(c.campaign.name != known for c in campaigns):
            campaigns.append(_with_stops(old, _raw(path)))

    if before is not None:  # a hold that goes on keeps the time it began
        began = {_scope(h): h.since for h in before.holds}
        holds = [dataclasses.replace(h, since=began.get(_scope(h), h.since)) for h in holds]
    project = Project(
        new.settings,
        campaigns,
        accounts,
        new.renderer,
        new.problems,
        new.declared,
        new.rejected,
        new.unread,
        new.broken_accounts,
        new.accounts_unread,
    )
    return InForce(project, holds, sorted(set(problems)), by_path)


def _scope(hold: Hold) -> tuple[str | None, ...]:
    return (hold.campaign, hold.post, hold.person, hold.account)


def lifted(before: InForce, after: InForce) -> list[Hold]:
    """Return the file holds in force before that are no longer (their problem was fixed)."""
    kept = {_scope(h) for h in after.holds}
    return [h for h in before.holds if _scope(h) not in kept]


def _names(lc: LoadedCampaign, post: Post) -> list[str]:
    return post.accounts if post.accounts is not None else lc.campaign.accounts


def _render_problems(
    project: Project, lc: LoadedCampaign, post: Post, now: datetime
) -> list[Problem]:
    """Render a post from its grace ago (what may wait to go out) over the next day (or at its
    next occurrence); return its errors."""
    tz = lc.campaign.tz
    lo, hi = to_zone(now - grace_of(post), tz), to_zone(now + timedelta(days=1), tz)
    found = list(plan_post(lc.campaign, post, lo, hi))
    if not found:
        upcoming = next_instant(lc.campaign, post, hi)
        if upcoming is not None:
            found = list(plan_post(lc.campaign, post, upcoming, upcoming + timedelta(seconds=1)))
    rows = dryrun.render_rows(project, lc, post, found)
    return sorted({row.problem for row in rows if row.problem is not None})


# -- the stops a broken file still says ---------------------------------------------


def _raw(path: str) -> Any:
    """Read a campaign file that did not load, for the stops it may still say.

    Leniently: a duplicate key (``paused: true`` written above an old
    ``paused: false``) or a syntax error elsewhere must not hide a pause.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")[:1_000_000]
    except OSError:
        return None
    data: Any = None
    try:
        data = load_yaml(Path(path)).data
    except (ProblemsError, OSError, ValueError):
        if not ("&" in text and "*" in text):  # no aliases: safe to parse once more
            try:
                data = yaml.load(text, Loader=_LENIENT)
            except yaml.YAMLError:
                data = None
    if _PAUSED.search(text):
        data = {**data, "paused": True} if isinstance(data, dict) else {"paused": True}
    return data


def _guess_name(path: str) -> str | None:
    try:
        found = _NAME.search(Path(path).read_text(encoding="utf-8", errors="replace")[:100_000])
    except OSError:
        return None
    return found.group(1) if found else None


def _day(value: Any) -> date | datetime | None:
    try:
        return parse_date_or_datetime(value) if value is not None else None
    except (ValueError, TypeError, OverflowError):
        return None


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _with_stops(old: LoadedCampaign, raw: Any) -> LoadedCampaign:
    """Return the last valid version with every stop the broken new text says applied."""
    if not isinstance(raw, dict):
        return old
    c = old.campaign
    update: dict[str, Any] = {}
    if raw.get("paused") is True:
        update["paused"] = True
    ends = _day(raw.get("ends"))
    if ends is not None and (c.ends is None or _as_date(ends) < _as_date(c.ends)):
        update["ends"] = ends
    accounts = raw.get("accounts")
    defaults = c.accounts
    if isinstance(accounts, list):
        defaults = update["accounts"] = [a for a in c.accounts if a in accounts]
    people = {p.get("id"): p for p in raw.get("people") or [] if isinstance(p, dict)}
    if isinstance(raw.get("people"), list):
        update["people"] = [_person_stops(p, people.get(p.id)) for p in c.people]
    if isinstance(raw.get("posts"), list):
        posts = {p.get("id"): p for p in raw["posts"] if isinstance(p, dict)}
        update["posts"] = [_post_stops(p, posts[p.id], defaults) for p in c.posts if p.id in posts]
    if not update:
        return old
    return LoadedCampaign(
        c.model_copy(update=update),
        old.source,
        old.path,
        old.problems,
        old.post_rows,
        old.people_rows,
    )


def _person_stops(person: Person, raw: Any) -> Person:
    if not isinstance(raw, dict):
        return person
    released = _day(raw.get("released_on"))
    if released is None:
        return person
    day = _as_date(released)
    if person.released_on is not None and person.released_on <= day:
        return person
    return person.model_copy(update={"released_on": day})


def _post_stops(post: Post, raw: dict[str, Any], defaults: list[str]) -> Post:
    accounts = raw.get("accounts")
    if isinstance(accounts, list):
        mine = post.accounts if post.accounts is not None else defaults
        return post.model_copy(update={"accounts": [a for a in mine if a in accounts]})
    if post.accounts is None and defaults is not None:
        return post  # the campaign's accounts, narrowed above
    return post
