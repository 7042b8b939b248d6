"""Everything a command needs, loaded and cross-checked: campaigns, accounts, templates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from scheduler.accounts import Account, load_accounts
from scheduler.campaigns import LoadedCampaign, Media, Post, load_campaigns
from scheduler.config import Settings
from scheduler.confine import check_inside
from scheduler.errors import Problem, display_path
from scheduler.rendering import Renderer

TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


@dataclass
class Project:
    """A loaded set of campaigns with the accounts and templates they use."""

    settings: Settings
    campaigns: list[LoadedCampaign]
    accounts: dict[str, Account]
    renderer: Renderer
    problems: list[Problem] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)  # account names in the file, valid or not
    # what a fail-safe reload needs to hold exactly what a problem touches:
    rejected: list[LoadedCampaign] = field(default_factory=list)  # parsed, but with errors
    unread: dict[str, list[Problem]] = field(default_factory=dict)  # campaign files not parsed
    broken_accounts: dict[str, list[Problem]] = field(default_factory=dict)  # entries with errors
    accounts_unread: list[Problem] = field(default_factory=list)  # accounts.yaml not readable

    @property
    def errors(self) -> list[Problem]:
        """Return the problems that make the files invalid."""
        return sorted(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> list[Problem]:
        """Return the problems that are only worth knowing."""
        return sorted(p for p in self.problems if p.severity == "warning")

    def campaign(self, name: str) -> LoadedCampaign | None:
        """Return a campaign by name."""
        return next((c for c in self.campaigns if c.campaign.name == name), None)

    def accounts_of(self, lc: LoadedCampaign, post: Post) -> list[Account]:
        """Return the known accounts a post goes to."""
        names = post.accounts if post.accounts is not None else lc.campaign.accounts
        return [self.accounts[n] for n in names if n in self.accounts]

    def accounts_in_use(self) -> list[Account]:
        """Return every account some post goes to, once each."""
        seen: dict[str, Account] = {}
        for lc in self.campaigns:
            for post in lc.campaign.posts:
                for account in self.accounts_of(lc, post):
                    seen.setdefault(account.name, account)
        return list(seen.values())


def load_project(settings: Settings, environ: Mapping[str, str]) -> Project:
    """Load and cross-check every file; keep every problem found."""
    every, problems = load_campaigns(settings.campaigns)
    unread: dict[str, list[Problem]] = {}
    for problem in problems:
        unread.setdefault(problem.path, []).append(problem)
    declared: set[str] = set()
    broken: dict[str, list[Problem]] = {}
    accounts, account_problems = load_accounts(settings.accounts, environ, declared, broken)
    problems.extend(account_problems)
    attributed = {id(p) for found in broken.values() for p in found}
    accounts_unread = [
        p for p in account_problems if p.severity == "error" and id(p) not in attributed
    ]
    renderer = Renderer(settings.templates)
    project = Project(
        settings, [], accounts, renderer, problems, declared, [], unread, broken, accounts_unread
    )
    for lc in every:
        found = [*lc.problems, *_cross_check(project, lc)]
        problems.extend(found)
        if not any(p.severity == "error" for p in found):
            project.campaigns.append(lc)
        else:
            project.rejected.append(
                LoadedCampaign(
                    lc.campaign, lc.source, lc.path, tuple(found), lc.post_rows, lc.people_rows
                )
            )
    for account in project.accounts_in_use():
        problems.extend(
            account.unset_problems("validate and preview go on; run will refuse to start")
        )
    return project


def _cross_check(project: Project, lc: LoadedCampaign) -> list[Problem]:
    """Check a campaign against the accounts, templates and media it names."""
    out: list[Problem] = []
    c, src = lc.campaign, lc.source
    known = ", ".join(sorted(project.accounts)) or "none"
    accounts_file = display_path(project.settings.accounts)
    for i, name in enumerate(c.accounts):
        if name not in project.declared:
            out.append(
                src.problem(
                    ("accounts", i),
                    f"account '{name}' is not in {accounts_file}; accounts there: {known}",
                )
            )
    for i, post in zip(lc.post_rows, c.posts, strict=True):
        for j, name in enumerate(post.accounts or []):
            if name not in project.declared:
                out.append(
                    src.problem(
                        ("posts", i, "accounts", j),
                        f"account '{name}' is not in {accounts_file}; accounts there: {known}",
                    )
                )
        names: list[tuple[str | int, ...]] = [("posts", i, "template")] if post.template else []
        names += [
            ("posts", i, "thread", j, "template")
            for j, part in enumerate(post.thread or [])
            if part.template
        ]
        for loc in names:
            template = src.data
            for part in loc:
                template = template[part]
            out.extend(_check_template(project, lc, post, str(template), loc))
        for j, media in enumerate(post.media):
            out.extend(_check_media(project, lc, media.path, ("posts", i, "media", j, "path")))
        out.extend(_check_part_media(project, lc, post, i))
        out.extend(_check_media_fit(project, lc, post, i))
    return out


def _check_media_fit(project: Project, lc: LoadedCampaign, post: Post, i: int) -> list[Problem]:
    """Check images against what each platform the post goes to takes: count, alt, a public URL."""
    out: list[Problem] = []
    groups: list[tuple[tuple[str | int, ...], list[Media]]] = [(("posts", i, "media"), post.media)]
    groups += [
        (("posts", i, "thread", j, "media"), part.media) for j, part in enumerate(post.thread or [])
    ]
    platforms = {a.platform.name: a.platform for a in project.accounts_of(lc, post)}
    for platform in sorted(platforms.values(), key=lambda p: p.name):
        for loc, media in groups:
            if platform.max_media is not None and len(media) > platform.max_media:
                out.append(
                    lc.source.problem(
                        loc,
                        f"{len(media)} images, and {platform.label} takes at most "
                        f"{platform.max_media} on one post; keep {platform.max_media} or fewer",
                    )
                )
            for k, m in enumerate(media):
                at = (*loc, k)
                if platform.max_alt is not None and len(m.alt) > platform.max_alt:
                    out.append(
                        lc.source.problem(
                            (*at, "alt"),
                            f"the alt text of {m.path} is {len(m.alt)} characters, and "
                            f"{platform.label} takes at most {platform.max_alt}; shorten it",
                        )
                    )
                if platform.media_by_url and m.url is None:
                    out.append(
                        lc.source.problem(
                            at,
                            f"{platform.label} takes images only from a public address: give "
                            f"{m.path} a url: where the same image is published (https://...)",
                        )
                    )
    return out


def _check_part_media(project: Project, lc: LoadedCampaign, post: Post, i: int) -> list[Problem]:
    """Check each thread part's images; refuse them where a platform cannot post them there."""
    out: list[Problem] = []
    refusing = sorted(
        {a.platform.label for a in project.accounts_of(lc, post) if not a.platform.media_on_parts}
    )
    for j, part in enumerate(post.thread or []):
        for k, media in enumerate(part.media):
            loc: tuple[str | int, ...] = ("posts", i, "thread", j, "media", k, "path")
            out.extend(_check_media(project, lc, media.path, loc))
            if j > 0 and refusing:
                out.append(
                    lc.source.problem(
                        ("posts", i, "thread", j, "media"),
                        f"thread part {j + 1} of post '{post.id}' has an image, and "
                        f"{', '.join(refusing)} cannot post images on a thread's later parts; "
                        "move it to the first part, or give this post accounts: without them",
                    )
                )
    return out


def _check_template(
    project: Project, lc: LoadedCampaign, post: Post, name: str, loc: tuple[str | int, ...]
) -> list[Problem]:
    src = lc.source
    if not TEMPLATE_NAME.match(name) or name.endswith(".j2"):
        return [
            src.problem(
                loc,
                f"'{name}' is not a template name; write the file name without .j2 (template: spotlight uses templates/spotlight.j2)",
            )
        ]
    folder = display_path(project.settings.templates)
    if not project.settings.templates.is_dir():
        return [
            src.problem(
                loc, f"template '{name}' not found: the templates folder {folder} does not exist"
            )
        ]
    found = {
        a.platform.name: project.renderer.template_file(name, a.platform.name)
        for a in project.accounts_of(lc, post)
    }
    for file in sorted({f for f in found.values() if f is not None}):
        what = check_inside(project.settings.templates, file.name)
        if what is not None:
            return [src.problem(loc, f"template {what}")]
    missing = sorted(platform for platform, file in found.items() if file is None)
    if not missing:
        return []
    available = sorted({p.name.split(".")[0] for p in project.settings.templates.glob("*.j2")})
    listed = ", ".join(available) or "none"
    if len(missing) == len({a.platform.name for a in project.accounts_of(lc, post)}) and not any(
        project.settings.templates.glob(f"{name}.*.j2")
    ):
        return [
            src.problem(
                loc,
                f"template '{name}' not found: no {folder}/{name}.j2; templates there: {listed}",
            )
        ]
    return [
        src.problem(
            loc,
            f"template '{name}' has no version for {', '.join(missing)}: add {folder}/{name}.j2 (or {name}.PLATFORM.j2)",
        )
    ]


def _check_media(
    project: Project, lc: LoadedCampaign, path: str, loc: tuple[str | int, ...]
) -> list[Problem]:
    """Check an image the way it is read at send time: inside the folder, no symlink."""
    folder = project.settings.campaigns
    shown = display_path(folder)
    if "\x00" in path:
        return [
            lc.source.problem(
                loc, f"media {path!r} has a NUL character; name an image inside {shown}/"
            )
        ]
    written = PurePosixPath(path.replace("\\", "/"))
    if written.is_absolute() or ".." in written.parts:
        return [
            lc.source.problem(
                loc,
                f"media '{path}' is outside the campaigns folder; keep images inside {shown}/",
            )
        ]
    what = check_inside(folder, path)
    if what is None:
        return []
    if what.endswith("not found"):
        what = f"'{path}' not found (looked for {display_path(folder / path)})"
    return [lc.source.problem(loc, f"media {what}")]
