"""Stopping always wins: the real daemon and commands as processes, against stand-ins.

An edit that pauses or releases takes effect even when the same save is invalid; a broken
campaign file or template holds what it touches while the rest goes on; `hold` (and the
kill switch) stops posting within about a second; start-up after downtime sends only
the latest occurrence; `send` refuses a repeat; `resolve` settles an uncertain row.

Posts repeat every second (a list of `at` instants) so that a few "occurrences' worth"
of time is a few seconds; one post is also a `cron: "* * * * *"` under `--now`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e_site import TIMEOUT, Site, marker, stamp, wait_for
from tests.standins.fixtures import standin_process  # noqa: F401 - a pytest fixture
from tests.standins.process import StandInProcess

# How long after a save or a `hold` an occurrence may still go out: the file watcher's
# debounce and one request already on its way. Anything due later must not.
SETTLE = 1.5
WINDOW = 3.0  # how long a test watches that nothing more goes out


@pytest.fixture
def start(
    tmp_path: Path,
    standin_process: Callable[..., StandInProcess],  # noqa: F811
) -> Iterator[Callable[..., Site]]:
    """Yield make(**site options) -> a Site; every daemon it started is stopped at the end."""
    sites: list[Site] = []

    def make(**options: object) -> Site:
        site = Site(tmp_path, standin_process, **options)  # type: ignore[arg-type]
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.stop()


def real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def every_second(first: datetime, count: int) -> str:
    """Return a YAML flow list of ``count`` instants one second apart from ``first``."""
    return "[" + ", ".join(stamp(first + timedelta(seconds=i)) for i in range(count)) + "]"


def ticking(name: str, first: datetime, *, count: int = 40, accounts: str = "[m, t]") -> str:
    """Return a campaign whose one post goes out every second, featuring its one person."""
    return f"""\
name: {name}
title: {name.upper()}
timezone: UTC
starts: {first:%Y-%m-%d}
accounts: {accounts}
people:
  - id: sevinj
    name: Sevinj Vagifgizi
posts:
  - id: tick
    at: {every_second(first, count)}
    rotate: people
    text: "{marker(name, "tick")}"
"""


def late(site: Site, campaign: str, after: datetime, post: str | None = None) -> list[object]:
    """Return what arrived for ``campaign`` that was due at or after ``after``."""
    return [
        a
        for a in site.arrivals()
        if a.campaign == campaign and a.scheduled_for >= after and (post is None or a.post == post)
    ]


def hold_for(site: Site, *, campaign: str | None = None, source_end: str) -> dict[str, object]:
    """Wait (a few seconds) until `holds --format json` lists the hold; return it."""
    found: list[dict[str, object]] = []

    def listed() -> bool:
        found[:] = [
            h
            for h in site.holds()
            if str(h.get("source", "")).endswith(source_end)
            and (campaign is None or h.get("campaign") == campaign)
        ]
        return bool(found)

    wait_for(listed, 5, f"a hold with source ...{source_end} in `holds --format json`")
    return found[0]


# -- a. one save that releases, pauses and breaks the campaign ----------------------------

N0 = datetime(2026, 3, 10, 10, 0, 50, tzinfo=UTC)  # the daemon's clock at start (--now)


def minutely(*, stopped: bool = False) -> str:
    """Return campaign a: a cron post every minute and a post every second, for one person.

    ``stopped``: the one save under test: the person released, the campaign paused, and
    an unknown key (a typo) on line 3, all at once.
    """
    typo = 'summry: "typo"\n' if stopped else ""
    paused = "paused: true\n" if stopped else ""
    released = f"    released_on: {N0:%Y-%m-%d}\n" if stopped else ""
    return f"""\
name: a
title: A
{typo}timezone: UTC
starts: {stamp(N0 - timedelta(seconds=5))}
{paused}accounts: [m, t]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
{released}posts:
  - id: minutely
    cron: "* * * * *"
    rotate: people
    text: "{marker("a", "minutely")}"
  - id: often
    at: {every_second(N0 + timedelta(seconds=3), 20)}
    rotate: people
    text: "{marker("a", "often")}"
"""


def test_a_save_that_releases_pauses_and_is_invalid_stops_the_campaign(
    start: Callable[..., Site],
) -> None:
    site = start()
    site.campaign("a", minutely())
    site.run(now=N0.isoformat())
    site.ready()
    wait_for(lambda: site.count("a", "often") >= 4, 15, "campaign a posting")  # 2 per account

    saved = time.monotonic()
    site.campaign("a", minutely(stopped=True))
    # the daemon's clock runs from --now at (a little after) its Popen: this is its time
    # of the save, or a little later (which only makes the check below lenient)
    clock_at_save = N0 + timedelta(seconds=saved - site.started[-1])
    # watch past the cron's 10:01:00 (about 5 s after the save) and the per-second posts
    watch_until = max(N0 + timedelta(seconds=13), clock_at_save + timedelta(seconds=WINDOW))
    time.sleep(max(0.0, (watch_until - clock_at_save).total_seconds()))

    after = clock_at_save + timedelta(seconds=SETTLE)
    assert late(site, "a", after) == [], (
        f"posts went out for campaign a after the save\n{site.tail()}"
    )
    assert not [a for a in site.arrivals() if a.post == "minutely"], (
        f"the minutely post went out after its person was released and the campaign paused\n{site.tail()}"
    )
    hold = hold_for(site, campaign="a", source_end="a.yaml:3")
    assert str(hold["source"]) in ("campaigns/a.yaml:3", str(site.root / "campaigns/a.yaml:3"))
    assert "a.yaml:3" in site.log()  # the problem is logged with path:line


# -- b. a YAML syntax error holds that campaign; another file goes on ---------------------


def test_b_yaml_syntax_error_holds_its_campaign_and_the_fix_resumes_it(
    start: Callable[..., Site],
) -> None:
    site = start()
    first = real_now() + timedelta(seconds=4)
    site.campaign("b1", ticking("b1", first))
    site.campaign("b2", ticking("b2", first))
    site.run()
    site.ready()
    wait_for(lambda: site.count("b1") >= 2 and site.count("b2") >= 2, 15, "both posting")

    broken = ticking("b1", first).replace("title: B1\n", "title: B1: the sequel\n")  # line 2
    site.campaign("b1", broken)
    saved = datetime.now(UTC)
    hold = hold_for(site, campaign="b1", source_end="b1.yaml:2")
    assert hold["person"] is None and hold["account"] is None
    others = site.count("b2")
    time.sleep(WINDOW)
    assert late(site, "b1", saved + timedelta(seconds=SETTLE)) == [], (
        f"b1 posted while broken\n{site.tail()}"
    )
    assert site.count("b2") >= others + 2, f"b2 stopped posting because b1 is broken\n{site.tail()}"
    assert "b1.yaml:2" in site.log()

    site.campaign("b1", ticking("b1", first))
    fixed = datetime.now(UTC)
    wait_for(lambda: late(site, "b1", fixed) != [], 5, "b1 posting again after the fix")
    wait_for(lambda: not [h for h in site.holds() if h.get("campaign") == "b1"], 5, "no hold")


# -- c. a template with a Jinja syntax error holds the posts that use it ------------------


def two_templates(first: datetime) -> str:
    return f"""\
name: c
title: C
timezone: UTC
starts: {first:%Y-%m-%d}
accounts: [m, t]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
posts:
  - id: uses-one
    at: {every_second(first, 40)}
    rotate: people
    template: one
  - id: uses-two
    at: {every_second(first, 40)}
    rotate: people
    template: two
"""


def test_c_template_syntax_error_holds_its_posts_and_the_fix_resumes_them(
    start: Callable[..., Site],
) -> None:
    site = start()
    first = real_now() + timedelta(seconds=4)
    good = marker("c", "uses-one") + "\n"
    site.template("one", good)
    site.template("two", marker("c", "uses-two") + "\n")
    site.campaign("c", two_templates(first))
    site.run()
    site.ready()
    wait_for(
        lambda: site.count("c", "uses-one") >= 2 and site.count("c", "uses-two") >= 2,
        15,
        "both posts going out",
    )

    site.template("one", good + "{% if %}broken{% endif %}\n")  # line 2
    saved = datetime.now(UTC)
    hold_for(site, source_end="one.j2:2")
    others = site.count("c", "uses-two")
    time.sleep(WINDOW)
    after = saved + timedelta(seconds=SETTLE)
    assert late(site, "c", after, "uses-one") == [], (
        f"a post went out with a broken template\n{site.tail()}"
    )
    assert site.count("c", "uses-two") >= others + 2, (
        f"a post with a sound template stopped\n{site.tail()}"
    )
    assert "one.j2:2" in site.log()

    site.template("one", good)
    fixed = datetime.now(UTC)
    wait_for(lambda: late(site, "c", fixed, "uses-one") != [], 5, "uses-one again after the fix")


# -- d. hold and resume a campaign by command ---------------------------------------------


def test_d_hold_a_campaign_by_command_then_resume_it(start: Callable[..., Site]) -> None:
    site = start()
    first = real_now() + timedelta(seconds=4)
    site.campaign("d1", ticking("d1", first))
    site.campaign("d2", ticking("d2", first))
    site.run()
    site.ready()
    wait_for(lambda: site.count("d1") >= 2 and site.count("d2") >= 2, 15, "both posting")

    held = site.cli("hold", "--campaign", "d1", "--why", "family asked")
    returned = datetime.now(UTC)
    assert held.returncode == 0, held.stderr
    others = site.count("d2")
    time.sleep(WINDOW)
    assert late(site, "d1", returned + timedelta(seconds=1)) == [], (
        f"d1 posted while held\n{site.tail()}"
    )
    assert site.count("d2") >= others + 2, f"d2 stopped posting when d1 was held\n{site.tail()}"
    holds = site.holds()
    assert [(h["campaign"], h["person"], h["account"], h["why"], h["source"]) for h in holds] == [
        ("d1", None, None, "family asked", "command")
    ]
    assert holds[0]["since"]

    resumed = site.cli("resume", "--campaign", "d1")
    assert resumed.returncode == 0, resumed.stderr
    lifted = datetime.now(UTC)
    wait_for(lambda: late(site, "d1", lifted) != [], 5, "d1 posting again after resume")
    assert site.holds() == []
    again = site.cli("resume", "--campaign", "d1")
    assert again.returncode == 1  # no hold matched


# -- e. the kill switch in the middle of a burst ------------------------------------------

BURST_PEOPLE = 20
BURST_ACCOUNTS = ("m1", "m2", "m3"), ("t1", "t2")


def burst(at: datetime) -> str:
    people = "\n".join(f"  - id: p{i}\n    name: Person {i}" for i in range(BURST_PEOPLE))
    accounts = ", ".join(BURST_ACCOUNTS[0] + BURST_ACCOUNTS[1])
    return f"""\
name: e
title: E
timezone: UTC
accounts: [{accounts}]
people:
{people}
posts:
  - id: one
    at: {stamp(at)}
    for_each: people
    text: "{marker("e", "one")}"
  - id: two
    at: {stamp(at)}
    for_each: people
    text: "{marker("e", "two")}"
"""


def test_e_kill_switch_mid_burst_stops_everything_within_a_second(
    start: Callable[..., Site],
) -> None:
    site = start(mastodon=BURST_ACCOUNTS[0], telegram=BURST_ACCOUNTS[1], latency=0.25)
    lanes = len(BURST_ACCOUNTS[0]) + len(BURST_ACCOUNTS[1])
    total = 2 * BURST_PEOPLE * lanes  # 200
    site.campaign("e", burst(real_now() + timedelta(seconds=4)))
    site.run()
    site.ready()
    wait_for(lambda: site.count("e") >= 1, 15, "the burst to begin")
    began = time.monotonic()
    wait_for(lambda: site.count("e") >= 25, 15, "25 posts of the burst")

    before = site.count("e")
    rate = before / max(time.monotonic() - began, 0.1)  # posts a second, as it ran
    held = site.cli("hold", "--why", "stop")
    assert held.returncode == 0, held.stderr
    at_return = site.count("e")
    time.sleep(1.5)  # what was in flight lands (the stand-ins answer after 0.25 s)
    settled = site.count("e")
    allowed = lanes + int(rate * 1.0) + 1  # in flight, plus about one second's worth
    assert settled - at_return <= allowed, (
        f"{settled - at_return} posts arrived after the kill switch returned "
        f"(at most {allowed}: {lanes} in flight and {rate:.0f}/s for a second)"
    )
    time.sleep(2.0)
    assert site.count("e") == settled, f"posts kept arriving after the kill switch\n{site.tail()}"
    assert settled < total, "the whole burst went out: the kill switch stopped nothing"
    holds = site.holds()
    assert [(h["campaign"], h["person"], h["account"], h["why"], h["source"]) for h in holds] == [
        (None, None, None, "stop", "command")
    ]


# -- f. start-up after downtime sends only the latest occurrence --------------------------

F0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def test_f_start_after_downtime_sends_only_the_latest_occurrence(
    start: Callable[..., Site],
) -> None:
    site = start()
    site.campaign(
        "f",
        f"""\
name: f
title: F
timezone: UTC
starts: {stamp(F0)}
accounts: [m, t]
people:
  - id: sevinj
    name: Sevinj Vagifgizi
  - id: fatima
    name: Fatima Movlamli
posts:
  - id: minutely
    every: 1m
    for_each: people
    text: "{marker("f", "minutely")}"
""",
    )
    last_run = site.cli("run", "--once", now=(F0 + timedelta(seconds=2)).isoformat())
    assert last_run.returncode == 0, last_run.stdout + last_run.stderr
    assert site.count("f") == 4  # 10:00, to two accounts for two people

    # five minutes later (grace is 15 minutes): 10:01 to 10:05 fell due while no daemon ran
    later = F0 + timedelta(minutes=5)
    daemon = site.run(now=(later + timedelta(seconds=2)).isoformat())
    site.ready()
    wait_for(lambda: site.count("f") >= 8, 15, "the catch-up posts")

    def settled() -> bool:
        rows = site.rows()
        return len(rows) >= 4 * 6 and not any(
            r["status"] in ("claimed", "sending", "retrying") for r in rows
        )

    wait_for(settled, 10, "a row for every occurrence from 10:00 to 10:05")
    time.sleep(1.0)  # anything else the daemon was going to send
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(TIMEOUT) == 0, site.log()

    caught_up = sorted(
        (a.account, a.person, a.scheduled_for) for a in site.arrivals() if a.scheduled_for > F0
    )
    assert caught_up == sorted(
        (platform, person, later)
        for platform in ("mastodon", "telegram")
        for person in ("sevinj", "fatima")
    ), "exactly one post per account and person, the latest, goes out on start"
    rows = site.rows()
    missed = [r for r in rows if r["status"] == "missed"]
    assert len(missed) == 4 * 4, [(r["key"], r["status"]) for r in rows]
    for row in missed:
        assert datetime.fromisoformat(row["scheduled_for"]) < later
        assert "superseded" in f"{row.get('reason') or ''} {row.get('error') or ''}", row
    assert len([r for r in rows if r["status"] == "sent"]) == 8


# -- g. send refuses a repeat within 24 hours, unless --again -----------------------------

ONE_OFF = f"""\
name: g
title: G
timezone: UTC
accounts: [m, t]
posts:
  - id: hello
    at: 2030-01-01 10:00
    text: "{marker("g", "hello", person=False)}"
  - id: other
    at: 2030-01-01 10:00
    text: "{marker("g", "other", person=False)}"
"""


def test_g_send_twice_is_refused_with_the_first_url_and_again_sends(
    start: Callable[..., Site],
) -> None:
    site = start()
    site.campaign("g", ONE_OFF)
    first = site.cli("send", "g", "hello", "--account", "m", "--yes")
    assert first.returncode == 0, first.stderr
    url = next(line.split()[-1] for line in first.stdout.splitlines() if "m: sent" in line)
    assert url.startswith("http")
    time.sleep(2.0)
    second = site.cli("send", "g", "hello", "--account", "m", "--yes")
    assert second.returncode == 1, second.stdout + second.stderr
    assert url in second.stdout + second.stderr, "the refusal names where the first one went"
    assert site.count("g", "hello") == 1
    third = site.cli("send", "g", "hello", "--account", "m", "--yes", "--again")
    assert third.returncode == 0, third.stdout + third.stderr
    assert site.count("g", "hello") == 2


# -- h. resolve settles an uncertain row ---------------------------------------------------


def test_h_resolve_settles_uncertain_rows_sent_or_not_sent(start: Callable[..., Site]) -> None:
    site = start()
    site.campaign("g", ONE_OFF)
    for post in ("hello", "other"):
        # Telegram creates the post, then answers 502: the outcome is unknown
        site.telegram.knob("fail_next", n=1, status=502, after=True)
        result = site.cli("send", "g", post, "--account", "t", "--yes")
        assert result.returncode == 1 and "t: uncertain" in result.stderr, result.stderr
    rows = {r["post"]: r for r in site.rows()}
    assert {p: r["status"] for p, r in rows.items()} == {"hello": "uncertain", "other": "uncertain"}

    url = "https://t.me/test/4242"
    sent = site.cli("resolve", rows["hello"]["key"], "--sent", url)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    why = "checked the channel: it is not there"
    not_sent = site.cli("resolve", rows["other"]["key"], "--not-sent", "--why", why)
    assert not_sent.returncode == 0, not_sent.stdout + not_sent.stderr

    after = {r["post"]: r for r in site.rows()}
    assert after["hello"]["status"] == "sent" and after["hello"]["remote_url"] == url
    assert after["other"]["status"] == "failed"
    assert "not sent, per a person" in str(after["other"]["error"])
    again = site.cli("resolve", rows["hello"]["key"], "--not-sent")
    assert again.returncode == 1, "a row that is no longer uncertain is not resolved again"
    assert site.count("g") == 2  # the stand-in has both; no command sent a second copy
