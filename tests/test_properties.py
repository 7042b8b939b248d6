"""Property-based tests: whatever a user saves, validate and preview answer with problems.

Hypothesis generates and mutates campaign files, templates and accounts files;
loading, validating and previewing them must never raise, never hang and never
go over the render budget. Each property runs a bounded number of examples (the
whole file well under a minute); the failing examples it found are kept below
as regular test cases.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import dryrun
from scheduler.accounts import load_accounts
from scheduler.budget import MAX_OUTPUT
from scheduler.config import Settings
from scheduler.project import Project, load_project
from tests.conftest import ACCOUNTS

NOW = datetime(2026, 6, 1, 12, 0)
LIMIT_SECONDS = 10.0  # one example: a render is stopped at 2 s, a file loads in well under 1 s
EXAMPLES = settings(
    max_examples=int(os.environ.get("SOLIDARITY_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples in every run: CI does not flake
)

BASE = {
    "name": "c",
    "title": "C",
    "timezone": "Asia/Baku",
    "starts": "2025-12-01",
    "accounts": ["hr-mastodon", "hr-bluesky"],
    "vars": {"url": "https://example.org"},
    "people": [
        {"id": "a", "name": "Ana", "detained_on": "2023-11-21"},
        {"id": "b", "name": "Bo", "released_on": "2026-06-02"},
    ],
    "posts": [
        {"id": "p", "cron": "0 11 * * *", "template": "t", "rotate": "people"},
        {"id": "q", "every": "3d", "text": "Day {{ person.detained_on | days_since }}"},
    ],
}
BASE["posts"][1]["for_each"] = "people"  # type: ignore[index]

HOSTILE_SCALARS = [
    "9999-12-31",
    "0001-01-01",
    "2025-02-30",
    "99999999999999999999d",
    "1000000000d",
    "0",
    "-1d",
    "1e400",
    "\u0000",
    "../../etc/passwd",
    "http://[::1",
    "${NOPE}",
    "{{ 'x' | center(10**9) }}",
    "* * * * * *",
    "61 25 32 13 8",
    "",
    " ",
    "x" * 300,
    "Fatimə Movlamlı",
    "🙂",
]
scalars = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "name", "title", "timezone", "starts", "ends", "paused", "accounts", "vars", "people",
    "posts", "id", "at", "cron", "every", "anchor", "template", "text", "thread", "rotate",
    "for_each", "media", "path", "alt", "grace", "jitter", "overflow", "language",
    "link_card", "detained_on", "released_on", "typo",
]  # fmt: skip


@contextmanager
def project_folder(
    campaign: str | bytes, templates: dict[str, str], accounts: str | bytes = ACCOUNTS
) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "campaigns").mkdir()
        (root / "templates").mkdir()
        for path, body in (
            (root / "campaigns" / "c.yaml", campaign),
            (root / "accounts.yaml", accounts),
        ):
            path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8", "replace"))
        for name, text in templates.items():
            (root / "templates" / name).write_text(text, encoding="utf-8", errors="replace")
        yield Settings(
            campaigns=root / "campaigns",
            templates=root / "templates",
            accounts=root / "accounts.yaml",
            db=f"sqlite:///{root / 'ledger.db'}",
        )


def check_everything(folder: Settings) -> Project:
    """Load, validate and preview; assert the answers are problems, in time and in budget."""
    began = time.monotonic()
    project = load_project(folder, environ={})
    problems = dryrun.validate(project, NOW, 3)
    rows = dryrun.rows(project, NOW, NOW.replace(day=4))
    assert time.monotonic() - began < LIMIT_SECONDS
    for problem in [*project.problems, *problems]:
        assert problem.path and problem.line >= 0 and problem.message
    for row in rows:
        assert len(row.text) <= MAX_OUTPUT * 2  # a thread may hold two parts at the limit
        if row.status == "error":
            assert row.problem is not None and row.problem.line >= 1
    return project


def mutate(data: Any, path: list[Any], value: Any) -> Any:
    """Put ``value`` at ``path`` inside ``data`` (creating or replacing what is there)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        key = head if isinstance(head, str) else KEYS[head % len(KEYS)]
        out = dict(data)
        out[key] = mutate(data.get(key), rest, value)
        return out
    if isinstance(data, list) and data:
        i = head % len(data) if isinstance(head, int) else 0
        out_list = list(data)
        out_list[i] = mutate(data[i], rest, value)
        return out_list
    return value


paths = st.lists(
    st.one_of(st.sampled_from(KEYS), st.integers(min_value=0, max_value=5)), max_size=4
)


@EXAMPLES
@given(st.lists(st.tuples(paths, values), min_size=1, max_size=4))
def test_mutated_campaign_files_give_problems_never_a_traceback(
    edits: list[tuple[list[Any], Any]],
) -> None:
    data: Any = BASE
    for path, value in edits:
        data = mutate(data, path, value)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with project_folder(text, {"t.j2": "{{ person.name }} {{ vars.url }}"}) as folder:
        check_everything(folder)


base_text = yaml.safe_dump(BASE, sort_keys=False)


@EXAMPLES
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(base_text)),
            st.integers(min_value=0, max_value=8),
            st.sampled_from(
                [
                    "",
                    "\t",
                    ": ",
                    "- ",
                    "&a ",
                    "*a",
                    "<<: *a\n",
                    "? [a, b]\n",
                    "!!python/name:os.system ",
                    "!!int ",
                    "\x00",
                    "[" * 200,
                    "{",
                    "'",
                    '"',
                    "|\n",
                    "\n  ",
                    "\ufeff",
                    "\x85",
                ]
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_campaign_texts_cut_and_spliced_give_problems_never_a_traceback(
    splices: list[tuple[int, int, str]],
) -> None:
    text = base_text
    for at, cut, insert in splices:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut :]
    with project_folder(text, {"t.j2": "{{ person.name }}"}) as folder:
        check_everything(folder)


NUMBERS = ["0", "1", "3", "10**9", "100000", "2**64", "-1", "99999999999999999999"]
TEXTS = ["'x'", "'x' * 100000", "person.name", "vars.url", "people", "range(100000)", "[1, 2]"]
FRAGMENTS = st.one_of(
    st.builds("{{{{ {} }}}}".format, st.sampled_from(TEXTS)),
    st.builds(
        "{{{{ {} | {}({}) }}}}".format,
        st.sampled_from(TEXTS),
        st.sampled_from(
            [
                "center",
                "indent",
                "wordwrap",
                "batch",
                "slice",
                "truncate",
                "join",
                "replace('x', 'xx') | string",
                "list | join",
                "format",
            ]
        ),
        st.sampled_from(NUMBERS),
    ),
    st.builds("{{{{ {} * {} }}}}".format, st.sampled_from(TEXTS), st.sampled_from(NUMBERS)),
    st.builds("{{{{ {} ** {} }}}}".format, st.sampled_from(NUMBERS), st.sampled_from(NUMBERS)),
    st.builds("{{{{ {} ~ {} }}}}".format, st.sampled_from(TEXTS), st.sampled_from(TEXTS)),
    st.builds("{{{{ '%{}s' % 'x' }}}}".format, st.sampled_from(NUMBERS)),
    st.builds("{{{{ '{{:>{}}}'.format(1) }}}}".format, st.sampled_from(NUMBERS)),
    st.builds("{{% for i in range({}) %}}".format, st.sampled_from(NUMBERS)),
    st.just("{% for c in 'x' * 100000 %}"),
    st.just("{% endfor %}"),
    st.just("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
    st.just("{% macro g(s) %}{{ g(s ~ s) }}{% endmacro %}{{ g('x') }}"),
    st.just("{% if person %}"),
    st.just("{% endif %}"),
    st.just("{% include 't.j2' %}"),
    st.just("{% include '../accounts.yaml' %}"),
    st.just("{{ ''.__class__ }}"),
    st.just("{{ lipsum(10**9) }}"),
    st.just("{{ person.detained_on | days_since }}"),
    st.text(max_size=10),
)


@EXAMPLES
@given(st.lists(FRAGMENTS, min_size=1, max_size=6))
def test_generated_templates_render_in_budget_or_give_a_problem(fragments: list[str]) -> None:
    campaign = yaml.safe_dump(BASE, sort_keys=False)
    with project_folder(campaign, {"t.j2": "\n".join(fragments)}) as folder:
        check_everything(folder)


PLATFORMS = ["mastodon", "bluesky", "telegram", "x", "discord", "webhook", "matrix", "nope"]
ACCOUNT_KEYS = [
    "platform", "instance", "service", "api", "homeserver", "url", "webhook_url", "proxy",
    "pace", "max_characters", "access_token", "bot_token", "chat", "handle", "room", "typo",
]  # fmt: skip
URLISH = st.sampled_from(
    [
        "http://[::1",
        "https://a:99999",
        "https://a:x",
        "http://",
        "https://ok.example",
        "socks5://u:p@[::1",
        "ftp://x",
        "${NOPE}",
        "http://127.0.0.1:9",
        "1000000000d",
        "99999999999999999999d",
        "2s",
    ]
)


@EXAMPLES
@given(
    st.dictionaries(
        st.sampled_from(["hr-mastodon", "hr-a", "Bad Name", "x"]),
        st.one_of(
            st.dictionaries(
                st.sampled_from(ACCOUNT_KEYS),
                st.one_of(URLISH, scalars),
                max_size=6,
            ).map(lambda d: d if "platform" in d else {**d, "platform": "mastodon"}),
            values,
        ),
        max_size=4,
    ),
    st.sampled_from(PLATFORMS),
)
def test_generated_accounts_files_give_problems_never_a_traceback(
    accounts: dict[str, Any], platform: str
) -> None:
    for body in accounts.values():
        if isinstance(body, dict) and body.get("platform") == "mastodon":
            body["platform"] = platform
    text = yaml.safe_dump(accounts, allow_unicode=True)
    with project_folder(yaml.safe_dump(BASE, sort_keys=False), {"t.j2": "Hi."}, text) as folder:
        check_everything(folder)
        found, problems = load_accounts(folder.accounts, {})
        for account in found.values():
            assert account.settings is not None
        assert all(p.line >= 0 for p in problems)


# -- what hypothesis found, kept as regular cases ------------------------------------------


@pytest.mark.parametrize(
    ("campaign", "template"),
    [
        # a key that is a list, under posts (checks.py read loc[-1] of an empty location)
        (base_text.replace("posts:\n", "posts:\n  ? [a]\n  : 1\n", 1), "Hi."),
        # a NUL written by hand in the middle of the file
        (base_text.replace("title: C", "title: C\x00"), "Hi."),
        # a fold of 400 nines: float infinity as a duration
        (base_text.replace("every: 3d", "every: " + "9" * 400 + "d"), "Hi."),
        # an unclosed flow nesting deeper than the pure-Python parser can recurse
        (base_text.replace("title: C", "title: " + "[" * 2000), "Hi."),
        # a template nested deeper than Jinja's parser can recurse
        (base_text, "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"),
        # a template asking range() for more than a C long
        (base_text, "{% for i in range(99999999999999999999) %}{% endfor %}"),
        # str.format with a nested width from its arguments
        (base_text, "{{ '{:{w}}'.format('x', w=10**9) }}"),
    ],
)
def test_examples_found_give_problems_never_a_traceback(campaign: str, template: str) -> None:
    with project_folder(campaign, {"t.j2": template}) as folder:
        project = check_everything(folder)
    assert project.problems or any(
        p.severity == "error" for p in dryrun.validate(project, NOW, 3)
    ), campaign
