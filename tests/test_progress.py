"""Progress reports: a bar on a terminal, plain lines in a log (never carriage-return redraws)."""

from __future__ import annotations

import io

from asr.progress import Progress, tracked


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_every_so_often_and_one_at_the_end():
    log = io.StringIO()
    with Progress(total=4, desc="synthesise", unit="file", every=0.0, stream=log) as p:
        for _ in range(4):
            p.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith("synthesise: 1/4 file (25 %)")
    assert lines[-1].startswith("synthesise: 4/4 file (100 %)") and len(lines) == 5  # four updates, then closed


def test_lines_wait_for_their_interval():
    log = io.StringIO()
    p = Progress(total=1000, desc="x", every=3600.0, stream=log)
    for _ in range(1000):
        p.update()
    assert log.getvalue() == ""
    p.close()
    p.close()  # once
    assert log.getvalue().count("\n") == 1 and "1000/1000" in log.getvalue()


def test_a_terminal_gets_a_bar_and_disabled_progress_says_nothing():
    term = Terminal()
    with Progress(total=3, desc="bar", stream=term) as p:
        p.update(3)
    assert "\r" in term.getvalue() and "bar" in term.getvalue()
    quiet = io.StringIO()
    assert list(tracked(range(3), 3, "q", enabled=False)) == [0, 1, 2]
    with Progress(total=3, enabled=False, stream=quiet) as p:
        p.update(3)
    assert quiet.getvalue() == ""
