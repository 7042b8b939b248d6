"""A small project that shows every kind of card the HTML preview draws.

Two campaigns in two zones, a numbered thread with an image on each part, a link card,
a post too long for Bluesky, an image that is not an image, a person released (skipped),
a paused campaign, and a missing secret (a file warning). ``hold --person sevinj``
with ``solidarity hold`` to add held cards.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

WINDOW = ("2030-01-07", "7")  # --from, --days: Monday to Sunday

ACCOUNTS = """\
m:
  platform: mastodon
  instance: http://127.0.0.1:9
  access_token: ${SAMPLE_TOKEN}
b:
  platform: bluesky
  service: http://127.0.0.1:9
  handle: sample.example
  app_password: ${SAMPLE_TOKEN}
t:
  platform: telegram
  api: http://127.0.0.1:9
  bot_token: ${SAMPLE_TOKEN}
  chat: "@sample"
"""

FREE = """\
name: free-them
title: "Free the journalists of Abzas Media"
timezone: Asia/Baku
starts: 2029-12-01
language: en
accounts: [m, b, t]
vars: {url: "https://example.org/report"}
people:
  - id: sevinj
    name: Sevinj Vagifgizi
    detained_on: 2023-11-21
  - id: nargiz
    name: Nargiz Absalamova
    detained_on: 2023-11-22
posts:
  - id: spotlight
    cron: "0 11 * * 1,3,5"
    rotate: people
    accounts: [m, b]
    thread:
      - text: "{{ person.name }} is behind bars for doing journalism.\\nDay {{ person.detained_on | days_since }} of detention."
        media: {path: img/portrait.png, alt: "A portrait drawn in blue, the face turned to the light"}
      - text: "Write to the authorities: {{ vars.url }}\\n#PressFreedom <script>alert(1)</script>"
        media: {path: img/letter.png, alt: "A letter & an envelope"}
  - id: report
    at: 2030-01-08 10:00
    text: "Our report is out today.\\n\\nRead it: {{ vars.url }}"
    link_card:
      url: https://example.org/report
      title: "From Newsroom to Cell"
      description: "How Azerbaijan jails journalists for their work."
  - id: long
    at: 2030-01-09 15:00
    accounts: [m, b]
    text: "{{ 'Every day in detention is a day too many. ' * 9 }}"
  - id: broken
    at: 2030-01-10 09:00
    accounts: [t]
    text: "This image is not an image."
    media: {path: img/notes.png, alt: "A scanned note that cannot be shown"}
"""

RELEASED = """\
name: released
title: "Welcome home, Tofig"
timezone: Europe/Istanbul
starts: 2029-11-01
accounts: [m]
people:
  - id: tofig
    name: Tofig Yagublu
    released_on: 2029-12-01
posts:
  - id: daily
    cron: "0 9 * * 2,4"
    rotate: people
    text: "{{ person.name }} is still detained."
"""

PAUSED = """\
name: paused-one
title: "A paused campaign"
timezone: Europe/Istanbul
paused: true
accounts: [t]
posts:
  - id: weekly
    cron: "30 18 * * 6"
    text: "Saturday reminder: share their names."
"""


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """Return a real PNG: a gradient of ``colour`` with a light stripe."""
    r, g, b = colour
    rows = []
    for y in range(height):
        shade = 0.55 + 0.45 * y / max(1, height - 1)
        line = bytearray([0])
        for x in range(width):
            light = 1.6 if (x // 24) % 4 == 0 else 1.0
            line += bytes(min(255, int(c * shade * light)) for c in (r, g, b))
        rows.append(bytes(line))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + chunk(b"IEND", b"")
    )


def build(root: Path) -> Path:
    """Lay the sample project out in ``root`` and return it."""
    img = root / "campaigns" / "img"
    img.mkdir(parents=True)
    (root / "templates").mkdir()
    (img / "portrait.png").write_bytes(png(320, 200, (40, 90, 200)))
    (img / "letter.png").write_bytes(png(320, 160, (200, 120, 40)))
    (img / "notes.png").write_text("not an image\n", encoding="utf-8")
    for name, text in (("free-them", FREE), ("released", RELEASED), ("paused-one", PAUSED)):
        (root / "campaigns" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (root / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    return root
