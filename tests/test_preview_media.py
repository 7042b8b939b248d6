"""Preview shows what goes out with the text: images and their alt text, per part, and the card."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run

CAMPAIGN = """\
name: c
title: C
timezone: UTC
accounts: [m]
posts:
  - id: t
    at: 2030-01-01 10:00
    media: {path: img/a.png, alt: "A photo of the courthouse"}
    link_card: {url: "https://example.org/r", title: "The report", description: "Amnesty's report"}
    thread:
      - "Part one"
      - text: "Part two"
        media: {path: img/b.png, alt: "The second image"}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "campaigns" / "img").mkdir(parents=True)
    (tmp_path / "templates").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "campaigns" / "img" / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "campaigns" / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(
        "m:\n  platform: mastodon\n  instance: http://127.0.0.1:9\n  access_token: ${M}\n"
    )
    return tmp_path


def test_json_has_the_media_the_card_and_each_parts_media(tmp_path: Path) -> None:
    result = run(
        "preview", "--from", "2030-01-01", "--days", "1", "--format", "json", cwd=project(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["parts"] == ["Part one", "Part two"]
    assert row["media"] == [{"path": "img/a.png", "alt": "A photo of the courthouse"}]
    assert row["link_card"] == {
        "url": "https://example.org/r",
        "title": "The report",
        "description": "Amnesty's report",
    }
    assert row["part_media"] == [[], [{"path": "img/b.png", "alt": "The second image"}]]


def test_the_table_shows_alt_text_under_its_part_and_the_card(tmp_path: Path) -> None:
    result = run("preview", "--from", "2030-01-01", "--days", "1", cwd=project(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    part2 = next(i for i, line in enumerate(lines) if "part 2/2" in line)
    first = next(i for i, line in enumerate(lines) if "alt: A photo of the courthouse" in line)
    second = next(i for i, line in enumerate(lines) if "alt: The second image" in line)
    assert first < part2 < second
    assert any("The report <https://example.org/r>" in line for line in lines)


def test_validate_checks_each_parts_images_and_refuses_them_where_they_cannot_go(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    (root / "campaigns" / "c.yaml").write_text(
        CAMPAIGN.replace("accounts: [m]", "accounts: [m, d]").replace("img/b.png", "img/zz.png"),
        encoding="utf-8",
    )
    with (root / "accounts.yaml").open("a") as accounts:
        accounts.write("d:\n  platform: discord\n  webhook_url: ${D}\n")
    result = run("validate", cwd=root)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "warning" not in line]
    assert "campaigns/c.yaml:13: media 'img/zz.png' not found" in errors[0]
    assert "thread part 2 of post 't' has an image, and Discord cannot post images" in errors[1]


def test_sends_confirmation_shows_the_parts_the_images_and_the_card(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    root = project(tmp_path)
    exe = shutil.which("solidarity")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLIDARITY_")}
    env["M"] = "t0k3n"
    result = subprocess.run(  # answered "n": shown, then not sent
        [*([exe] if exe else [sys.executable, "-m", "scheduler"]), "send", "c", "t"],
        cwd=root,
        env=env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "not sent" in result.stderr
    shown = result.stdout
    assert "┄ part 1/2" in shown and "┄ part 2/2" in shown
    assert shown.index("alt: A photo of the courthouse") < shown.index("┄ part 2/2")
    assert shown.index("┄ part 2/2") < shown.index("alt: The second image")
    assert "🔗 The report <https://example.org/r>" in shown
