"""Bounded work for any file a user can save, and confinement of templates and media.

Every refusal is a ``path:line`` problem: a template over its budget, a YAML file
too large or too deep, a template or image that leads out of its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from scheduler import dryrun
from scheduler.budget import MAX_LOOPS, OverBudget, spending
from scheduler.errors import LedgerError
from scheduler.ledger import Ledger
from scheduler.project import Project
from scheduler.templating import make_environment
from tests.conftest import ProjectFactory
from tests.test_broken_files import CORPUS, FAKE_SECRETS, lay_out, solidarity

NOW = datetime(2026, 6, 1, 12, 0)

CAMPAIGN = """\
name: c
title: C
timezone: Asia/Baku
starts: 2025-12-01
accounts: [hr-mastodon]
posts:
  - id: p
    cron: "0 11 * * *"
    template: t
"""


@pytest.fixture(autouse=True)
def _in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # problems name paths as the user sees them


def problems_of(project: Project) -> list[str]:
    found = [str(p) for p in project.errors]
    found += [str(p) for p in dryrun.validate(project, NOW, 3) if p.severity == "error"]
    return sorted(set(found))


def timed_problems(make_project: ProjectFactory, body: str) -> list[str]:
    project = make_project(CAMPAIGN, {"t.j2": body})
    began = time.monotonic()
    found = problems_of(project)
    assert time.monotonic() - began < 5, body
    return found


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{{ 'x' | center(10**9) }}", "center(1000000000) builds more than 100,000"),
        ("{{ 'x' | center(1000000000) }}", "center(1000000000) builds more than 100,000"),
        ("{{ 'x'.ljust(10**9) }}", "ljust(1000000000) builds more than"),
        ("{{ (['x'*100000]*100000)|join }}", "sandbox refused: repeating"),
        ("{{ (['x'*50000, 'y'*50000, 'z'])|join('-' * 50000) }}", "join builds more than"),
        ("{{ ('x'*1000)|replace('x', 'y'*1000) }}", "replace builds more than"),
        ("{{ [1]|batch(10**9, 'x')|list }}", "batch(1000000000) builds"),
        ("{{ [1]|slice(10**9)|list }}", "slice(1000000000) builds"),
        ("{{ '%1000000000s' % 'x' }}", "formatting with % builds"),
        ("{{ '%*s' % (10**9, 'x') }}", "formatting with % builds"),
        ("{{ '%s'|format('x'*100000 ~ 'y') }}", "~ builds more than"),
        ("{{ '{:>1000000000}'.format('x') }}", "format builds more than"),
        ("{{ 'x{:>{w}}'.format('x', w=10**9) }}", "format builds more than"),
        ("{{ ('x\ty' * 1000).expandtabs(10**6) }}", "expandtabs builds more than"),
        ("{{ ((10 ** 60) ** 60) ** 60 }}", "** builds a number too large"),
        ("{{ 'x' * 60000 + 'y' * 60000 }}", "+ builds more than"),
        ("{{ ['x'] * 20000 + ['y'] * 20000 }}", "+ builds more than"),
        ("{{ [['x' * 1000] * 1000] * 1000 }}", "repeating a text or list"),
        ("{{ lipsum(10**9) }}", "'lipsum' is undefined"),
        ("{% for i in range(200000) %}x{% endfor %}", "sandbox blocks ranges larger"),
        ("{% for i in range(20000) %}0123456789{% endfor %}", "renders more than 100,000"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            f"loops more than {MAX_LOOPS:,} times",
        ),
        (
            "{% set l = 'x' * 100000 %}{% for c in l %}{% for d in l %}{% endfor %}{% endfor %}",
            f"loops more than {MAX_LOOPS:,} times",
        ),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "macros call each other"),
        (
            "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}"
            "{% endif %}{% endmacro %}{{ d('x', 40) }}",
            "~ builds more than",
        ),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
            "~ builds more than",
        ),
        (
            "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"
            "{% endmacro %}{{ m()|length }}",
            "rendering builds more than 1,000,000",
        ),
        ("{{ ('x' * 100000)|list|string }}", "the filter string on this value builds"),
        ("{{ ['x' * 50000, 'y' * 50000, 'z'] }}", "printing this value builds"),
        ("{{ ['x' * 50000, 'y' * 50000, 'z']|tojson }}", "the filter tojson on this value"),
        ("{{ ['x' * 50000, 'y' * 50000, 'z']|upper }}", "the filter upper on this value"),
    ],
)
def test_a_template_over_budget_is_a_problem_at_its_line(
    make_project: ProjectFactory, body: str, words: str
) -> None:
    found = timed_problems(make_project, body)
    assert found, body
    assert all(f.startswith("templates/t.j2:1: ") for f in found), found
    assert any(words in f for f in found), found


def test_the_macro_depth_line_is_the_call_inside_the_macro(make_project: ProjectFactory) -> None:
    body = "Start.\n{% macro f(n) %}\n{{ f(n + 1) }}\n{% endmacro %}\n{{ f(0) }}\n"
    (found,) = timed_problems(make_project, body)
    assert found.startswith("templates/t.j2:3: macros call each other more than 50 deep")


def test_a_template_within_budget_renders_as_before(make_project: ProjectFactory) -> None:
    body = (
        "{% macro tag(p) %}{{ p.name | hashtag }}{% endmacro %}"
        "{% for p in people %}{{ tag(p) }} {% endfor %}{{ 'x' * 10 }} {{ '%5s|' % 'ab' }}"
        "{{ '{:>4}'.format(7) }} {{ [1, 2]|join(',') }} {{ 'a' ~ 'b' }} {{ 2 ** 10 }}"
    )
    campaign = CAMPAIGN + "people:\n  - id: a\n    name: Ana Li\n"
    project = make_project(campaign, {"t.j2": body})
    assert problems_of(project) == []
    (row, *_) = dryrun.rows(project, datetime(2026, 6, 1), datetime(2026, 6, 2))
    assert row.text == "#AnaLi xxxxxxxxxx    ab|   7 1,2 ab 1024"


def test_the_clock_budget_ends_a_render_that_counts_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "slow.j2").write_text(
        "{% for i in range(100000) %}{{ i }}{% endfor %}", encoding="utf-8"
    )
    template = make_environment(tmp_path).get_template("slow.j2")
    with pytest.raises(OverBudget, match=r"takes longer than 2 s to render"), spending(0.0):
        template.render()


def test_budgets_are_per_render_and_per_thread(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{% for i in range(600000) %}{% endfor %}ok", encoding="utf-8")
    env = make_environment(tmp_path)
    env.globals["range"] = range  # 600,000 items: over the sandbox's range cap otherwise
    template = env.get_template("t.j2")
    for _ in range(3):  # 1.8 million iterations in all, 600,000 in each render
        with spending():
            assert template.render() == "ok"


# -- confinement -----------------------------------------------------------------


def test_a_template_symlinked_out_of_its_folder_is_a_problem_that_holds_the_post(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("MASTODON_ACCESS_TOKEN=secret-token\n", encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").symlink_to(tmp_path / ".env")
    project = make_project(CAMPAIGN)
    found = problems_of(project)
    assert found == [
        "campaigns/c.yaml:9: template 't.j2' goes through a symbolic link; "
        "keep the file itself inside the folder"
    ] or all("symbolic link" in f for f in found), found
    assert [lc.campaign.name for lc in project.rejected] == ["c"]
    assert not any("secret-token" in f for f in found)


@pytest.mark.parametrize(
    "include", ["{% include '../.env' %}", "{% include 'inner.j2' %}", "{% extends 'inner.j2' %}"]
)
def test_include_and_extends_read_only_inside_the_folder(
    make_project: ProjectFactory, tmp_path: Path, include: str
) -> None:
    (tmp_path / ".env").write_text("MASTODON_ACCESS_TOKEN=secret-token\n", encoding="utf-8")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "inner.j2").symlink_to(tmp_path / ".env")
    project = make_project(CAMPAIGN, {"t.j2": f"Before.\n{include}\n"})
    found = problems_of(project)
    assert found, include
    assert all(f.startswith("templates/t.j2:") for f in found), found
    assert any("symbolic link" in f or "leads outside" in f for f in found), found
    rows = dryrun.rows(project, datetime(2026, 6, 1), datetime(2026, 6, 2))
    assert not any("secret-token" in r.text for r in rows)


def test_media_symlinked_out_of_the_campaigns_folder_is_a_problem(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SECRET=1\n", encoding="utf-8")
    (tmp_path / "campaigns" / "img").mkdir(parents=True)
    (tmp_path / "campaigns" / "img" / "photo.png").symlink_to(tmp_path / ".env")
    campaign = CAMPAIGN.replace(
        "template: t", "template: t\n    media: {path: img/photo.png, alt: A}"
    )
    project = make_project(campaign, {"t.j2": "Hi."})
    assert [str(p) for p in project.errors] == [
        "campaigns/c.yaml:10: media 'img/photo.png' goes through a symbolic link; "
        "keep the file itself inside the folder"
    ]


# -- files -----------------------------------------------------------------------


def test_a_campaign_file_over_a_megabyte_is_a_problem(make_project: ProjectFactory) -> None:
    campaign = CAMPAIGN + "vars:\n  big: '" + "x" * 1_100_000 + "'\n"
    project = make_project(campaign, {"t.j2": "Hi."})
    assert [str(p) for p in project.errors] == [
        "campaigns/c.yaml:1: the file is larger than 1,000,000 bytes; "
        "split it (one campaign per file) or shorten it"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "vars:\n  x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
        "vars:\n  x: " + "[" * 5000 + "\n",  # unclosed: the pure-Python parser recurses
        "vars:\n  x: !!binary 'not base64!'\n",
        "vars:\n  x: !!timestamp 2025-13-45\n",
        "vars:\n  x: !!set {a, b}\n",
        "vars:\n  x: !custom 1\n",
        "vars:\n  x: !!float abc\n",
        "? !!python/name:os.system\n: 1\n",
        "vars:\n  <<: [1, 2]\n",
        "vars:\n  x: \x7f\n",
    ],
)
def test_a_hostile_yaml_file_is_a_problem_not_a_traceback(
    make_project: ProjectFactory, text: str
) -> None:
    project = make_project(CAMPAIGN + text, {"t.j2": "Hi."})
    assert project.errors, text
    assert all(p.path == "campaigns/c.yaml" and p.line >= 1 for p in project.errors)


def test_a_ledger_that_cannot_be_opened_is_a_ledger_error(tmp_path: Path) -> None:
    import sqlite3

    future = tmp_path / "future.db"
    with sqlite3.connect(future) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        db.execute("INSERT INTO alembic_version VALUES ('9999')")
    empty = tmp_path / "empty.db"
    with sqlite3.connect(empty) as db:
        db.execute("CREATE TABLE other (x)")
    for url in (
        f"sqlite:///{future}",
        f"sqlite:///file:{empty}?mode=ro&uri=true",
        f"sqlite:///file:{tmp_path / 'none.db'}?mode=ro&uri=true",
        "nosuchdialect://x/y",
    ):
        with pytest.raises(LedgerError, match="cannot open the ledger"):
            Ledger.open(url)


# -- the real command line on each broken case ---------------------------------------

NEW_CASES = [
    "alias-bomb",
    "bad-url",
    "complex-key",
    "deep-nesting",
    "far-dates",
    "huge-durations",
    "media-nul",
    "nul-char",
    "self-alias",
    "template-budget",
    "yaml-tags",
]


@pytest.mark.parametrize("case", NEW_CASES)
def test_preview_of_a_broken_case_exits_1_with_path_line(case: str, tmp_path: Path) -> None:
    assert (CORPUS / case).is_dir()
    folder = lay_out(case, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(FAKE_SECRETS)
    env["SOLIDARITY_NOW"] = "2026-06-01T00:00:00+00:00"
    result = subprocess.run(
        [*solidarity(), "preview", "--format", "json", "--days", "3"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout
    expected = (CORPUS / case / "expected.txt").read_text(encoding="utf-8").splitlines()
    if case == "template-budget":  # render problems are the rows' status, each with path:line
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        warnings = {w for row in rows for w in row["warnings"]}
        assert {row["status"] for row in rows} == {"error"}
        assert set(expected) <= warnings, sorted(warnings)
    else:
        assert result.returncode == 1, result.stderr
        assert all(line in result.stderr for line in expected), result.stderr
    shutil.rmtree(folder, ignore_errors=True)
