"""Progress reports that suit where they go: a tqdm bar on a terminal, a plain line now and then elsewhere.

A bar redrawn with carriage returns turns a redirected log (``make demo > log``) into megabytes of partial
lines; in a file, a line every ``every`` seconds and one at the end say the same in a few hundred bytes.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")

LOG_EVERY = 30.0  # seconds between lines when the output is not a terminal


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Counts work done: ``update(n)``, then ``close()`` (or use it as a context manager).

    On a terminal it draws a tqdm bar (``leave`` as tqdm's); elsewhere it prints
    ``DESC: N/TOTAL UNIT (P %), S s, R UNIT/s`` every ``every`` seconds and once when closed. ``enabled=False``
    prints nothing at all.
    """

    def __init__(self, total: float | None = None, desc: str = "", unit: str = "it", enabled: bool = True,
                 leave: bool = True, unit_scale: bool = False, every: float = LOG_EVERY,
                 stream: TextIO | None = None, initial: float = 0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.stream = stream or sys.stderr
        self.done = initial
        self.enabled = enabled
        self._bar = None
        self._started = self._last = time.monotonic()
        if enabled and is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, unit_scale=unit_scale,
                             file=self.stream, initial=initial)

    def update(self, n: float = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= self.every:
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled:
            self._line()
            self.enabled = False  # once

    def _line(self) -> None:
        now = time.monotonic()
        self._last = now
        elapsed = now - self._started
        count = f"{self.done:g}" + (f"/{self.total:g}" if self.total else "")
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        rate = f", {self.done / elapsed:.1f} {self.unit}/s" if elapsed > 0 else ""
        print(f"{self.desc}: {count} {self.unit}{share}, {elapsed:.0f} s{rate}", file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def tracked(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
            enabled: bool = True) -> Iterator[T]:
    """``items``, counted by a :class:`Progress` as they are consumed."""
    with Progress(total, desc, unit, enabled=enabled) as progress:
        for item in items:
            yield item
            progress.update()
