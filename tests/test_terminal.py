"""The terminal: wrapped to its width, never cut; colour only on a terminal."""

from __future__ import annotations

import io

import pytest

from scheduler import terminal


def test_a_long_line_is_wrapped_under_an_arrow_never_cut() -> None:
    line = "    " + " ".join(f"word{i}" for i in range(40))
    wrapped = terminal.fit(line, 60).split("\n")
    assert all(len(w) <= 60 for w in wrapped) and len(wrapped) > 1
    assert all(w.startswith("      ↪ ") for w in wrapped[1:])
    assert " ".join(w.replace("↪", "").strip() for w in wrapped) == line.strip()


def test_without_a_terminal_nothing_is_wrapped_or_cut() -> None:
    line = "x" * 300
    assert terminal.fit(line, None) == line


def test_a_pipe_gets_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    terminal.show("12:00  p → m 10/500 ok\n")
    assert out.getvalue() == "12:00  p → m 10/500 ok\n"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_colour_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Tty()
    monkeypatch.setattr("sys.stdout", out)
    terminal.show("a journalist held for years  FAILED\n")
    shown = out.getvalue()
    assert "\x1b[" in shown and "FAILED" in shown
    assert "held for" in shown  # a word of the text is not a status: not coloured
    monkeypatch.setenv("NO_COLOR", "1")
    out2 = Tty()
    monkeypatch.setattr("sys.stdout", out2)
    terminal.show("x  FAILED\n")
    assert out2.getvalue() == "x  FAILED\n"


def test_the_preview_tells_a_wrapped_line_from_a_line_break() -> None:
    from tests.test_cli import run

    result = run("preview", "--days", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.lstrip().startswith("┆ ") for line in lines)  # a wrapped paragraph goes on
    assert any(line.lstrip().startswith("│ ") for line in lines)  # each line of the text
    assert "\x1b[" not in result.stdout  # a pipe: no colour
