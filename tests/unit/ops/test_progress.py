"""Progress bars (issue 8, item 5): on stderr only when a person watches and the work is large."""
from __future__ import annotations

import io

from services.ops.progress import bar, shows, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_terminal_or_small():
    assert not shows(10**6, 1000, io.StringIO())
    assert not shows(999, 1000, Terminal())
    assert shows(1000, 1000, Terminal())
    out = io.StringIO()
    assert list(track(range(5000), 5000, "x", "lines", 10, out)) == list(range(5000))
    assert out.getvalue() == ""


def test_a_bar_on_a_terminal_for_large_work():
    term = Terminal()
    assert list(track(range(3000), 3000, "vpa replay", "lines", 1000, term)) == list(range(3000))
    assert "vpa replay" in term.getvalue()
    days = bar(30, "vpa simulate", "day", 10, term)
    days.update(30)
    days.close()
    assert "vpa simulate" in term.getvalue()
