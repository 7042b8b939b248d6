"""One campaign, all ten platforms: ``solidarity run --once`` posts a thread with an image and
its alt text and a link card to each platform's stand-in, and every row ends ``sent``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.standins.base import StandIn
from tests.standins.fixtures import (  # noqa: F401 - pytest fixtures
    bluesky_standin,
    discord_standin,
    mastodon_standin,
    matrix_standin,
    telegram_standin,
    webhook_standin,
)
from tests.test_platforms_e2e import (  # noqa: F401 - pytest fixtures
    PNG,
    REPORT,
    facebook_standin,
    linkedin_standin,
    threads_standin,
    x_standin,
)

CAMPAIGN = f"""\
name: ten
title: "Azerbaijan: From Newsroom to Cell"
timezone: Asia/Baku
language: en
accounts: [m, b, t, d, w, x, fb, th, li, mx]
posts:
  - id: launch
    at: 2026-03-10 11:00
    link_card:
      url: {REPORT}
      title: "Azerbaijan: From Newsroom to Cell"
      description: Amnesty International's report on jailed journalists
    thread:
      - text: "From Newsroom to Cell: journalists jailed for their work #FreeThePress {REPORT}"
        media:
          - path: photo.png
            alt: A reporter's empty desk in a Baku newsroom
            url: https://example.org/photo.png
      - "Sevinj Vagifgizi and her colleagues at Abzas Media are still detained (2/2)"
"""


def test_run_once_posts_the_same_thread_image_and_card_to_all_ten_platforms(
    tmp_path: Path,
    mastodon_standin: Any,  # noqa: F811
    bluesky_standin: Any,  # noqa: F811
    telegram_standin: Any,  # noqa: F811
    discord_standin: Any,  # noqa: F811
    webhook_standin: Any,  # noqa: F811
    x_standin: Any,  # noqa: F811
    facebook_standin: Any,  # noqa: F811
    threads_standin: Any,  # noqa: F811
    linkedin_standin: Any,  # noqa: F811
    matrix_standin: Any,  # noqa: F811
) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "templates").mkdir()
    (tmp_path / "campaigns" / "photo.png").write_bytes(PNG)
    (tmp_path / "campaigns" / "ten.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(
        f"""\
m: {{platform: mastodon, instance: "{mastodon_standin.url}", access_token: "${{M_TOKEN}}", pace: 0}}
b: {{platform: bluesky, service: "{bluesky_standin.url}", handle: test.example, app_password: "${{B_PASSWORD}}", pace: 0}}
t: {{platform: telegram, api: "{telegram_standin.url}", bot_token: "${{T_TOKEN}}", chat: "@test", pace: 0}}
d: {{platform: discord, webhook_url: "${{D_WEBHOOK}}", pace: 0}}
w: {{platform: webhook, url: "${{W_URL}}", pace: 0}}
x:
  platform: x
  api: {x_standin.url}
  api_key: ${{X_API_KEY}}
  api_secret: ${{X_API_SECRET}}
  access_token: ${{X_ACCESS_TOKEN}}
  access_token_secret: ${{X_ACCESS_TOKEN_SECRET}}
  pace: 0
fb: {{platform: facebook, api: "{facebook_standin.url}", page_id: "{facebook_standin.page_id}", page_access_token: "${{FB_PAGE_TOKEN}}", pace: 0}}
th: {{platform: threads, api: "{threads_standin.url}", user_id: "{threads_standin.user_id}", access_token: "${{THREADS_ACCESS_TOKEN}}", pace: 0}}
li: {{platform: linkedin, api: "{linkedin_standin.url}", author: "{linkedin_standin.author}", access_token: "${{LINKEDIN_ACCESS_TOKEN}}", pace: 0}}
mx: {{platform: matrix, homeserver: "{matrix_standin.url}", room: "{matrix_standin.room_id}", access_token: "${{MATRIX_ACCESS_TOKEN}}", pace: 0}}
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env.update(
        M_TOKEN="test-access-token",
        B_PASSWORD="test-app-password",
        T_TOKEN=telegram_standin.token,
        D_WEBHOOK=discord_standin.webhook_url,
        W_URL=f"{webhook_standin.url}/hook",
        X_API_KEY=x_standin.api_key,
        X_API_SECRET=x_standin.api_secret,
        X_ACCESS_TOKEN=x_standin.access_token,
        X_ACCESS_TOKEN_SECRET=x_standin.access_token_secret,
        FB_PAGE_TOKEN=facebook_standin.token,
        THREADS_ACCESS_TOKEN=threads_standin.token,
        LINKEDIN_ACCESS_TOKEN=linkedin_standin.token,
        MATRIX_ACCESS_TOKEN=matrix_standin.token,
        SOLIDARITY_NOW="2026-03-10T11:05:00+04:00",
    )
    exe = shutil.which("solidarity")
    base = [exe] if exe else [sys.executable, "-m", "scheduler"]

    def solidarity(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
        )

    checked = solidarity("validate")
    assert checked.returncode == 0, checked.stderr
    result = solidarity("run", "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [
        json.loads(line)
        for line in solidarity("history", "--format", "json").stdout.split("\n")
        if line
    ]
    assert sorted(r["account"] for r in rows) == sorted(
        ["m", "b", "t", "d", "w", "x", "fb", "th", "li", "mx"]
    )
    assert {r["status"] for r in rows} == {"sent"}, rows
    standins: list[StandIn] = [
        mastodon_standin, bluesky_standin, telegram_standin, discord_standin, webhook_standin,
        x_standin, facebook_standin, threads_standin, linkedin_standin, matrix_standin,
    ]  # fmt: skip
    for standin in standins:
        shown = json.dumps(standin.posts, ensure_ascii=False)
        assert standin.posts, f"{standin.platform} received no post"
        assert "Sevinj Vagifgizi" in shown or standin.platform in ("facebook", "linkedin"), (
            standin.platform
        )  # later parts go as comments there, kept apart from posts
    secrets = [v for k, v in env.items() if k.endswith(("_TOKEN", "_KEY", "_SECRET", "_PASSWORD"))]
    for secret in secrets:
        assert secret not in result.stdout + result.stderr
