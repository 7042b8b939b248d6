"""``preview --format html`` in a real browser: Debian's Chromium driven by Playwright.

Every card is checked against the JSON preview of the same window. Screenshots (laptop,
phone, print) are saved under $SOLIDARITY_ARTIFACTS or tests/artifacts/ for a person to
look at. Outside CI the browser tests are skipped when Chromium or playwright is missing;
in CI they fail (``bash .ci/install-chromium`` and the ``test`` extra install them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler.campaigns import Media
from scheduler.previewimages import Images
from tests import preview_sample
from tests.test_cli import run

CHROMIUM = Path("/usr/bin/chromium")
# the closed network here refuses Chromium's own background connections: turn them off
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("SOLIDARITY_ARTIFACTS") or Path(__file__).parent / "artifacts")
# what content-visibility: auto leaves unpainted off screen, a full-page screenshot must show
SHOW_ALL = ".occurrence { content-visibility: visible !important; }"


def _browser_or_skip() -> Any:
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (bash .ci/install-chromium)")
    if missing:
        reason = "the HTML preview's browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The sample project's week as an HTML file, with the JSON preview of the same window."""
    root = preview_sample.build(tmp_path_factory.mktemp("sample"))
    held = run("hold", "--campaign", "free-them", "--person", "sevinj", "--why", "Ask the family first", cwd=root)  # fmt: skip
    assert held.returncode == 0, held.stderr
    start, days = preview_sample.WINDOW
    window = ("preview", "--from", start, "--days", days)
    out = run(*window, "--format", "html", "-o", str(root / "preview.html"), cwd=root)
    assert out.returncode == 0, out.stderr
    js = run(*window, "--format", "json", cwd=root)
    assert js.returncode == 0, js.stderr
    return root / "preview.html", [json.loads(line) for line in js.stdout.splitlines()]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


class Opened:
    """A page opened from the file, with every request that was not file:// or data: refused."""

    def __init__(self, browser: Any, path: Path, width: int, height: int = 900) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.page.route("**/*", self._route)
        self.page.on("request", self._request)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri(), wait_until="load")

    def _request(self, request: Any) -> None:
        if not request.url.startswith(("file:", "data:")):
            self.outside.append(request.url)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()

    def cards(self) -> list[dict[str, Any]]:
        return self.page.evaluate(  # type: ignore[no-any-return]
            """() => [...document.querySelectorAll('.occurrence')].map(c => ({
              data: {...c.dataset},
              parts: [...c.querySelectorAll('.part')].map(p => ({
                number: p.dataset.part,
                label: p.querySelector('.num')?.textContent ?? null,
                text: p.querySelector('.text').textContent,
                alts: [...p.querySelectorAll('figure')].map(f => ({
                  alt: f.querySelector('img')?.getAttribute('alt') ?? null,
                  caption: f.querySelector('figcaption').textContent,
                  src: f.querySelector('img')?.src.slice(0, 22) ?? null,
                  decoded: f.querySelector('img')?.naturalWidth ?? 0,
                  broken: f.querySelector('.broken')?.textContent ?? null,
                })),
                meter: p.querySelector('meter') && {
                  value: p.querySelector('meter').getAttribute('value'),
                  max: p.querySelector('meter').getAttribute('max'),
                },
              })),
              link: c.querySelector('.link-card') && {
                href: c.querySelector('.link-card').getAttribute('href'),
                title: c.querySelector('.link-card .title').textContent,
                desc: c.querySelector('.link-card .desc')?.textContent ?? '',
              },
              state: c.querySelector('.state')?.textContent ?? null,
              border: getComputedStyle(c).borderBottomStyle,
              warnings: [...c.querySelectorAll('.warnings li')].map(li => li.textContent),
            }))"""
        )

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def laptop(browser: Any, sample: tuple[Path, list[dict[str, Any]]]) -> Iterator[Opened]:
    opened = Opened(browser, sample[0], 1280)
    opened.page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-media]')].every(i => i.complete)"
    )
    yield opened
    opened.close()


def test_one_card_per_row_with_the_jsons_values(laptop: Opened, sample: Any) -> None:
    rows = sample[1]
    cards = laptop.cards()
    assert len(cards) == len(rows) > 10
    assert {r["status"] for r in rows} >= {"ok", "held", "too_long", "skipped", "paused"}
    for card, row in zip(cards, rows, strict=True):
        expected = {
            "campaign": row["campaign"],
            "post": row["post"],
            "account": row["account"],
            "platform": row["platform"],
            "person": row["person"] or "",  # JSON null is the empty string
            "scheduledFor": row["scheduled_for"],
            "sendsAt": row["sends_at"],
            "status": row["status"],
            "key": row["key"],
        }
        assert card["data"] == expected


def test_each_card_shows_its_parts_images_alt_text_link_card_and_meters(
    laptop: Opened, sample: Any
) -> None:
    for card, row in zip(laptop.cards(), sample[1], strict=True):
        assert [p["text"] for p in card["parts"]] == row["parts"]
        many = len(row["parts"]) > 1
        for i, part in enumerate(card["parts"]):
            assert part["number"] == str(i + 1)
            assert part["label"] == (f"Part {i + 1} of {len(row['parts'])}" if many else None)
            media = (row["media"] if i == 0 else []) + (
                row["part_media"][i] if row["part_media"] else []
            )
            assert [a["caption"] for a in part["alts"]] == [f"Alt text: {m['alt']}" for m in media]
            for shown, m in zip(part["alts"], media, strict=True):
                if m["path"].endswith("notes.png"):  # not an image: its alt text and why
                    assert shown["alt"] is None and "not a PNG" in shown["broken"]
                else:
                    assert shown["alt"] == m["alt"]
                    assert shown["src"] == "data:image/png;base64,"
                    assert shown["decoded"] > 0, m
            assert part["meter"] == {"value": str(row["lengths"][i]), "max": str(row["limit"])}
        card_link = row["link_card"]
        assert card["link"] == (
            {
                "href": card_link["url"],
                "title": card_link["title"],
                "desc": card_link["description"],
            }
            if card_link
            else None
        )
        assert card["warnings"] == row["warnings"]


def test_held_skipped_paused_and_too_long_cards_are_unmistakable(laptop: Opened) -> None:
    by_status: dict[str, list[dict[str, Any]]] = {}
    for card in laptop.cards():
        by_status.setdefault(card["data"]["status"], []).append(card)
    assert all(c["state"] is None and c["border"] == "solid" for c in by_status["ok"])
    words = {"held": "Held", "skipped": "Skipped", "paused": "Paused", "too_long": "Too long"}
    for status, word in words.items():
        for card in by_status[status]:
            assert card["state"] and word in card["state"], card
    assert {c["border"] for s in ("held", "skipped", "paused") for c in by_status[s]} == {"dashed"}


def test_the_page_makes_no_request_runs_no_post_text_and_has_no_error(laptop: Opened) -> None:
    assert laptop.outside == []
    assert laptop.errors == []
    assert laptop.dialogs == []  # the post's "<script>alert(1)</script>" is text
    assert "<script>alert(1)</script>" in laptop.page.inner_text("body")


def test_the_header_has_campaigns_zones_window_and_file_warnings(laptop: Opened) -> None:
    header = laptop.page.inner_text("header.top")
    for words in (
        "Free the journalists of Abzas Media",
        "Asia/Baku",
        "Europe/Istanbul",
        "Mon 7 Jan 2030 00:00 to Mon 14 Jan 2030 00:00 (Asia/Baku)",
        "File warnings",
        "needs ${SAMPLE_TOKEN}",
    ):
        assert words in header
    days = laptop.page.eval_on_selector_all(".day > h2", "hs => hs.map(h => h.textContent)")
    assert days[0] == "Monday 7 January 2030" and days[-1] == "Sunday 13 January 2030"


def test_filters_by_campaign_account_and_status_work_offline(laptop: Opened, sample: Any) -> None:
    page, rows = laptop.page, sample[1]

    def visible() -> list[dict[str, str]]:
        return page.eval_on_selector_all(  # type: ignore[no-any-return]
            ".occurrence:not([hidden])", "cs => cs.map(c => ({...c.dataset}))"
        )

    for name, value in (("account", "m"), ("status", "held"), ("campaign", "released")):
        page.select_option(f"select[name={name}]", value)
        assert len(visible()) == sum(r[name] == value for r in rows) > 0
        assert {c[name] for c in visible()} == {value}
        page.click("button[type=reset]")
        page.wait_for_function(f"() => document.querySelectorAll('.occurrence:not([hidden])').length == {len(rows)}")  # fmt: skip
    page.select_option("select[name=account]", "t")
    page.select_option("select[name=status]", "paused")
    assert [c["campaign"] for c in visible()] == ["paused-one"]
    assert "1 of" in page.inner_text("#shown")
    page.click("button[type=reset]")


def test_it_is_accessible_by_its_structure_and_keyboard(browser: Any, sample: Any) -> None:
    opened = Opened(browser, sample[0], 1280)
    page = opened.page
    assert page.get_attribute("html", "lang") == "en"
    assert page.eval_on_selector_all("h1", "hs => hs.length") == 1
    assert page.eval_on_selector_all("img", "is => is.every(i => i.alt.trim())")
    assert page.eval_on_selector_all(".occurrence", "cs => cs.every(c => c.querySelector('h3'))")
    assert page.eval_on_selector_all(".text[lang=en]", "ts => ts.length") > 0
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to the posts"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.name") == "campaign"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the skip link moves the focus to the posts
    assert page.evaluate("() => document.activeElement.id") == "days"
    ratios = page.evaluate(CONTRAST)
    opened.close()
    assert min(ratios.values()) >= 4.5, ratios


# the WCAG contrast of each kind of small text against the first opaque background behind it
CONTRAST = """() => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length < 4 || c[3] > 0.9) return c; } return [255, 255, 255]; };
  const out = {};
  for (const sel of ['.meta', '.when', '.plat', '.state', 'figcaption', '.length', '.num',
                     '.link-card .desc', '.warnings', '.problems li', '.ok', '.none', '.text']) {
    for (const e of document.querySelectorAll(sel)) {
      const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(bg(e))];
      const r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      out[sel] = Math.min(out[sel] ?? 99, Math.round(r * 100) / 100);
    }
  }
  return out;
}"""


@pytest.mark.parametrize(("name", "width"), [("laptop", 1280), ("phone", 390)])
def test_no_sideways_scrolling_and_screenshots(
    browser: Any, sample: Any, name: str, width: int
) -> None:
    opened = Opened(browser, sample[0], width, 844)
    try:
        page = opened.page
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        assert page.evaluate("() => document.body.scrollWidth") <= width
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.add_style_tag(content=SHOW_ALL)
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        page.screenshot(path=str(ARTIFACTS / f"preview-{name}.png"), full_page=True)
        if name == "laptop":
            page.emulate_media(media="print")
            page.screenshot(path=str(ARTIFACTS / "preview-print.png"), full_page=True)
        assert opened.outside == [] and opened.errors == []
    finally:
        opened.close()


def test_an_image_that_cannot_be_read_shows_why_and_breaks_nothing(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "real.png").write_bytes(preview_sample.png(4, 4, (10, 20, 30)))
    (tmp_path / "img" / "link.png").symlink_to(tmp_path / "img" / "real.png")
    images = Images(tmp_path)
    ok = images.image(Media(path="img/real.png", alt="a square"))
    again = images.image(Media(path="img/real.png", alt="the same square"))
    assert ok.ref == again.ref and ok.problem is None and len(images.uris) == 1  # embedded once
    assert images.uris[ok.ref].startswith("data:image/png;base64,iVBORw0KGgo")
    link = images.image(Media(path="img/link.png", alt="x"))
    assert link.ref is None and link.problem is not None and "symbolic link" in link.problem
    missing = images.image(Media(path="img/none.png", alt="x"))
    assert missing.ref is None and missing.problem is not None and "not found" in missing.problem
    outside = images.image(Media(path="../secret.png", alt="x"))
    assert outside.ref is None and outside.problem is not None and "outside" in outside.problem


def test_the_page_masks_secrets_in_its_texts_and_keeps_its_images(tmp_path: Path) -> None:
    root = preview_sample.build(tmp_path)
    start, days = preview_sample.WINDOW
    secret = "Abzas Media"  # a secret that the campaign's title and texts happen to hold
    out = root / "p.html"
    result = run("preview", "--from", start, "--days", days, "--format", "html", "-o", str(out), cwd=root, env={"SAMPLE_TOKEN": secret})  # fmt: skip
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert secret not in page and "Free the journalists of ***" in page
    assert page.count("data:image/png;base64,") == 2  # each image once, whatever uses it
    assert 'class="occurrence' in page and "<script>alert(1)</script>" not in page
