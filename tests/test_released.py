"""A released person is never rendered: an occurrence that features nobody is skipped first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scheduler import dryrun
from scheduler.campaigns import Campaign
from scheduler.errors import Problem
from scheduler.planning import plan
from scheduler.project import Project
from scheduler.rendering import Renderer
from tests.conftest import ProjectFactory, write_project
from tests.test_cli import json_rows, run

REASON = "everyone this post speaks for has been released"

# Paused AND its only person released: the template needs a person it cannot have.
CAMPAIGN = """\
name: c
title: C
timezone: Asia/Baku
starts: 2026-01-01
paused: {paused}
accounts: [hr-mastodon]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    released_on: 2026-01-01
posts:
  - id: spotlight
    cron: "0 11 * * *"
    template: spotlight
    {mode}: people
"""
TEMPLATES = {"spotlight.j2": "Free {{ person.name }}! {{ person.name | hashtag }}\n"}
NOW = datetime(2026, 2, 1, tzinfo=UTC)


def errors(problems: list[Problem]) -> list[Problem]:
    """Drop the warnings (a missing secret is one, in validate and preview)."""
    return [p for p in problems if p.severity == "error"]


def body(*, paused: bool = True, mode: str = "rotate") -> str:
    return CAMPAIGN.format(paused=str(paused).lower(), mode=mode)


def test_nobody_featured_is_skipped_even_when_the_campaign_is_paused() -> None:
    for mode in ("rotate", "for_each"):
        c = Campaign.model_validate(
            {
                "name": "c",
                "title": "C",
                "timezone": "Europe/London",
                "accounts": ["a", "b"],
                "starts": "2026-01-01",
                "paused": True,
                "people": [{"id": "a", "name": "A", "released_on": "2026-01-02"}],
                "posts": [{"id": "p", "cron": "0 11 * * *", "text": "x", mode: "people"}],
            }
        )
        found = plan([c], datetime(2026, 1, 1), datetime(2026, 1, 3))
        assert [(o.scheduled_for.day, o.account, o.person, o.status) for o in found] == [
            (1, "a", "a", "paused"),
            (1, "b", "a", "paused"),
            (2, "a", None, "skipped"),
            (2, "b", None, "skipped"),
        ], mode
        assert {o.reason for o in found if o.status == "skipped"} == {REASON}


@pytest.mark.parametrize("paused", [True, False])
@pytest.mark.parametrize("mode", ["rotate", "for_each"])
def test_validate_is_clean_when_only_the_released_would_fail(
    make_project: ProjectFactory, paused: bool, mode: str
) -> None:
    project = make_project(body(paused=paused, mode=mode), TEMPLATES)
    assert errors(project.problems) == []
    assert errors(dryrun.validate(project, NOW, 30)) == []


def test_validate_still_reports_a_real_template_error(make_project: ProjectFactory) -> None:
    # The same campaign with someone still detained: the broken name is found.
    campaign = body().replace("    released_on: 2026-01-01\n", "")
    project = make_project(campaign, {"spotlight.j2": "Free {{ person.nme }}!\n"})
    problems = errors(dryrun.validate(project, NOW, 30))
    assert problems and "nme" in str(problems[0])


def test_the_renderer_never_runs_for_a_skipped_occurrence(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(body(), TEMPLATES)
    calls: list[Any] = []
    original: Callable[..., Any] = Renderer.message

    def spy(self: Renderer, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Renderer, "message", spy)
    found = dryrun.rows(project, NOW, datetime(2026, 2, 4, tzinfo=UTC))
    assert [r.status for r in found] == ["skipped"] * 3
    assert all(r.parts == () and r.warnings == (REASON,) for r in found)
    assert calls == []
    assert errors(dryrun.validate(project, NOW, 30)) == [] and calls == []


def _project_on_disk(tmp_path: Path) -> Project:
    from scheduler.project import load_project

    return load_project(write_project(tmp_path, body(), TEMPLATES), environ={})


def test_preview_and_validate_from_the_command_line(tmp_path: Path) -> None:
    assert errors(_project_on_disk(tmp_path).problems) == []
    check = run("validate", cwd=tmp_path, env={"SOLIDARITY_NOW": NOW.isoformat()})
    assert check.returncode == 0, check.stderr
    result = run("preview", "--from", "2026-02-01", "--days", "2", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json_rows(result.stdout)
    assert len(found) == 2
    for row in found:
        assert row["status"] == "skipped"
        assert row["person"] is None
        assert row["warnings"] == [REASON]
        assert "Sevinj" not in str(row["text"])
    table = run("preview", "--from", "2026-02-01", "--days", "2", cwd=tmp_path)
    assert table.returncode == 0 and "SKIPPED" in table.stdout and "Sevinj" not in table.stdout
