"""``python benchmarks/child.py ARGS``: run ``asr ARGS`` and print this process's peak memory on exit.

The benchmarks start the CLI (``transcribe``, ``serve``) through this file rather than a code string, so that
what they run is a module the layering test reads. SIGTERM ends it cleanly, so a server reports its peak too.
"""

from __future__ import annotations

import resource
import signal
import sys
from pathlib import Path

MARK = "MAXRSS"  # the line on standard error that carries the peak, in KiB


def peak_rss_kb() -> int:
    """This process's peak resident memory in KiB: Linux's VmHWM, which starts afresh at exec (``ru_maxrss``
    does not: a child started from a large parent reports the parent's memory as its own)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_from(stderr: str) -> float | None:
    """The peak (MB) that a child printed on ``stderr``, or None."""
    lines = [line for line in stderr.splitlines() if line.startswith(MARK)]
    return int(lines[-1].split()[1]) / 1024 if lines else None


def main() -> int:
    from asr.cli import main as asr

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return asr(sys.argv[1:])
    finally:
        print(f"{MARK} {peak_rss_kb()}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
