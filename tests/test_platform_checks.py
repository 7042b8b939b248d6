"""validate knows what each platform takes: image counts, alt text, public image URLs, daily limits."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import run

ACCOUNTS = """\
x:
  platform: x
  api: http://127.0.0.1:9
  api_key: ${XK}
  api_secret: ${XS}
  access_token: ${XT}
  access_token_secret: ${XTS}
th:
  platform: threads
  api: http://127.0.0.1:9
  user_id: "1234"
  access_token: ${TH}
"""


def project(tmp_path: Path, campaign: str) -> Path:
    (tmp_path / "campaigns" / "img").mkdir(parents=True)
    (tmp_path / "templates").mkdir()
    for i in range(5):
        (tmp_path / "campaigns" / "img" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "campaigns" / "c.yaml").write_text(campaign, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    return tmp_path


def errors(result_stderr: str) -> list[str]:
    return [line for line in result_stderr.splitlines() if "warning" not in line]


def test_five_images_on_x_and_images_without_a_public_url_on_threads(tmp_path: Path) -> None:
    media = "".join(f"      - {{path: img/{i}.png, alt: Photo {i}}}\n" for i in range(5))
    campaign = (
        "name: c\ntitle: C\ntimezone: UTC\naccounts: [x, th]\nposts:\n"
        "  - id: p\n    at: 2030-01-01 10:00\n    text: Free them\n    media:\n" + media
    )
    result = run("validate", cwd=project(tmp_path, campaign))
    assert result.returncode == 1
    found = errors(result.stderr)
    assert any("5 images, and X takes at most 4" in line for line in found), found
    assert any("Threads takes images only from a public address" in line for line in found)


def test_alt_text_over_xs_limit(tmp_path: Path) -> None:
    campaign = (
        "name: c\ntitle: C\ntimezone: UTC\naccounts: [x]\nposts:\n"
        "  - id: p\n    at: 2030-01-01 10:00\n    text: Free them\n"
        f"    media: {{path: img/0.png, alt: {'a' * 1001}}}\n"
    )
    result = run("validate", cwd=project(tmp_path, campaign))
    assert result.returncode == 1
    assert any("is 1001 characters, and X takes at most 1000" in e for e in errors(result.stderr))


def test_a_public_url_satisfies_threads(tmp_path: Path) -> None:
    campaign = (
        "name: c\ntitle: C\ntimezone: UTC\naccounts: [th]\nposts:\n"
        "  - id: p\n    at: 2030-01-01 10:00\n    text: Free them\n"
        "    media: {path: img/0.png, alt: A photo, url: 'https://example.org/0.png'}\n"
    )
    result = run("validate", cwd=project(tmp_path, campaign))
    assert errors(result.stderr) == [], result.stderr


def test_more_posts_a_day_than_threads_publishes_is_a_warning(tmp_path: Path) -> None:
    campaign = (
        "name: c\ntitle: C\ntimezone: UTC\nstarts: 2026-01-01\naccounts: [th]\nposts:\n"
        "  - id: p\n    every: 5m\n    text: Free them\n"
    )
    result = run("validate", "--days", "2", cwd=project(tmp_path, campaign))
    assert any(
        "th: 288 posts are planned on" in line and "publishes at most 250 in 24 hours" in line
        for line in result.stderr.splitlines()
    ), result.stderr


def test_preview_shows_the_estimated_cost_of_the_window_per_x_account(tmp_path: Path) -> None:
    campaign = (
        "name: c\ntitle: C\ntimezone: UTC\naccounts: [x]\nposts:\n"
        "  - id: p\n    at: [2030-01-01 10:00, 2030-01-01 11:00]\n    text: Free them\n"
        "  - id: q\n    at: 2030-01-01 12:00\n    text: Read https://example.org/r\n"
    )
    result = run("preview", "--from", "2030-01-01", "--days", "1", cwd=project(tmp_path, campaign))
    assert result.returncode == 0, result.stderr
    assert "X, estimated cost of this window: x $0.23" in result.stdout  # 2 x 0.015 + 0.20
