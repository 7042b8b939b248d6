"""Rendering: the sandbox, per-platform templates, the context, filters and path:line errors."""

from __future__ import annotations

from datetime import datetime

import pytest

from scheduler import dryrun
from scheduler.rendering import hashtag
from tests.conftest import ProjectFactory

CAMPAIGN = """\
name: c
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
starts: 2025-12-01
accounts: [hr-mastodon, hr-bluesky]
vars:
  url: https://example.org/report
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    detained_on: 2023-11-21
  - id: fatima
    name: Fatimə Movlamli
posts:
  - id: p
    cron: "0 11 * * *"
    template: t
    rotate: people
"""


def texts(project: object, start: str = "2025-12-01", days: int = 1) -> dict[str, str]:
    s = datetime.fromisoformat(start)
    from datetime import timedelta

    rows = dryrun.rows(project, s, s + timedelta(days=days))  # type: ignore[arg-type]
    return {f"{r.occurrence.account}@{r.occurrence.local_date}": r.text for r in rows}


@pytest.mark.parametrize(
    ("name", "tag"),
    [
        ("Fatimə Movlamlı", "#FatiməMovlamlı"),
        ("Sevinj Vagifgizi", "#SevinjVagifgizi"),
        ("Abzas Media!", "#AbzasMedia"),
        ("free_them 2025", "#free_them2025"),
        ("Toplum-Media (case)", "#ToplumMediacase"),
        ("Ульвия Али", "#УльвияАли"),
    ],
)
def test_hashtag(name: str, tag: str) -> None:
    assert hashtag(name) == tag


def test_days_since_counts_to_the_occurrence_date_not_today(make_project: ProjectFactory) -> None:
    project = make_project(
        CAMPAIGN,
        {
            "t.j2": "{{ person.name }}{% if person.detained_on %}: day {{ person.detained_on | days_since }}{% endif %}"
        },
    )
    out = texts(project, "2025-12-01", 2)
    # 2023-11-21 -> 2025-12-01 is 741 days
    assert out["hr-mastodon@2025-12-01"] == "Sevinj Vagifgizi: day 741"
    assert out["hr-mastodon@2025-12-02"] == "Fatimə Movlamli"


def test_days_since_is_zero_on_the_same_day(make_project: ProjectFactory) -> None:
    campaign = CAMPAIGN.replace("detained_on: 2023-11-21", "detained_on: 2025-12-01")
    project = make_project(campaign, {"t.j2": "{{ person.detained_on | days_since }}"})
    assert texts(project)["hr-mastodon@2025-12-01"] == "0"


def test_platform_template_wins_over_the_generic_one(make_project: ProjectFactory) -> None:
    project = make_project(
        CAMPAIGN, {"t.j2": "generic {{ platform }}", "t.bluesky.j2": "short {{ account }}"}
    )
    out = texts(project)
    assert out["hr-mastodon@2025-12-01"] == "generic mastodon"
    assert out["hr-bluesky@2025-12-01"] == "short hr-bluesky"


def test_context_holds_campaign_vars_people_and_scheduled_for(make_project: ProjectFactory) -> None:
    body = (
        "{{ campaign.title }}|{{ vars.url }}|{{ people | length }}|{{ detained | length }}|"
        "{{ scheduled_for.isoformat() }}|{{ campaign.name }}"
    )
    project = make_project(CAMPAIGN, {"t.j2": body})
    assert texts(project)["hr-mastodon@2025-12-01"] == (
        "Azerbaijan: From Newsroom to Cell|https://example.org/report|2|2|"
        "2025-12-01T11:00:00+04:00|c"
    )


def test_plain_text_no_html_escaping(make_project: ProjectFactory) -> None:
    project = make_project(CAMPAIGN, {"t.j2": "<b>{{ '&' }}</b> \"{{ person.name }}\""})
    assert texts(project)["hr-mastodon@2025-12-01"] == '<b>&</b> "Sevinj Vagifgizi"'


def test_inline_text(make_project: ProjectFactory) -> None:
    campaign = CAMPAIGN.replace("    template: t\n", "    text: 'Free {{ person.name }}'\n")
    project = make_project(campaign)
    assert texts(project)["hr-bluesky@2025-12-01"] == "Free Sevinj Vagifgizi"


def problems_of(project: object) -> list[str]:
    found = dryrun.validate(project, datetime.fromisoformat("2025-12-01T00:00+04:00"), 3)  # type: ignore[arg-type]
    return [str(p) for p in found if p.severity == "error"]


def test_undefined_name_names_the_template_line(make_project: ProjectFactory) -> None:
    project = make_project(CAMPAIGN, {"t.j2": "one\ntwo {{ person.name }}\nthree {{ nope }}\n"})
    found = problems_of(project)
    assert len(found) == 1
    assert found[0].split(": ", 1)[0].endswith("templates/t.j2:3")
    assert "'nope' is undefined" in found[0]


def test_syntax_error_names_the_template_line(make_project: ProjectFactory) -> None:
    project = make_project(CAMPAIGN, {"t.j2": "one\n{{ person.name }\n"})
    (found,) = problems_of(project)
    assert found.split(": ", 1)[0].endswith("templates/t.j2:2")
    assert "template syntax" in found


def test_inline_text_error_names_the_campaign_line(make_project: ProjectFactory) -> None:
    campaign = CAMPAIGN.replace(
        "    template: t\n", "    text: |\n      fine\n      {{ missing }}\n"
    )
    project = make_project(campaign)
    (found,) = problems_of(project)
    assert found.split(": ", 1)[0].endswith("campaigns/c.yaml:19")
    assert "'missing' is undefined" in found


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ person.name.__class__ }}",
        "{{ campaign.__init__ }}",
        "{{ scheduled_for.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% set x = people.append(1) %}{{ x }}",
    ],
)
def test_sandbox_refuses_python_internals(make_project: ProjectFactory, body: str) -> None:
    project = make_project(CAMPAIGN, {"t.j2": body})
    found = problems_of(project)
    assert found, body
    assert all(":1: " in f for f in found)
    assert any("sandbox refused" in f or "undefined" in f or "unsafe" in f for f in found)


def test_render_error_in_preview_is_a_row_status_not_a_crash(make_project: ProjectFactory) -> None:
    project = make_project(CAMPAIGN, {"t.j2": "{{ nope }}"})
    rows = dryrun.rows(project, datetime(2025, 12, 1), datetime(2025, 12, 2))
    assert {r.status for r in rows} == {"error"}
    assert all("undefined" in r.warnings[0] for r in rows)


@pytest.mark.parametrize(
    "body", ["{{ 'x' * 100000000 }}", "{{ [1, 2] * 10000000 }}", "{{ 2 ** 100000000 }}"]
)
def test_sandbox_refuses_runaway_sizes(make_project: ProjectFactory, body: str) -> None:
    project = make_project(CAMPAIGN, {"t.j2": body})
    (found,) = set(problems_of(project))
    assert "sandbox refused" in found


def test_yaml_merge_keys_let_written_keys_override(make_project: ProjectFactory) -> None:
    campaign = CAMPAIGN.replace(
        "posts:\n  - id: p\n",
        "posts:\n  - &base {id: base, cron: '0 9 * * *', template: t}\n  - <<: *base\n    id: p\n",
    )
    project = make_project(campaign, {"t.j2": "t"})
    assert not project.errors
    assert [p.id for p in project.campaigns[0].campaign.posts] == ["base", "p"]
