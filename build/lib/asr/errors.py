"""The one exception type the CLI turns into a clean one-line error (no traceback), and how problems are listed."""

from __future__ import annotations

MAX_LISTED = 20  # offending lines shown in one error; a count says how many more there are


class AsrError(Exception):
    """A problem with the user's input (a file, a manifest, a checkpoint, a config).

    The message names the file or line and says what is wrong; the CLI prints it as
    ``asr: error: <message>`` and exits non-zero.
    """


def listed(header: str, problems: list[str]) -> str:
    """``header`` followed by the first :data:`MAX_LISTED` problems, one per line, and how many more there are."""
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return header + "\n  " + "\n  ".join(problems[:MAX_LISTED]) + more


class Cancelled(Exception):
    """Work cancelled from outside (a server's client went away, or its time ran out); not the input's fault."""
