"""What ``asr transcribe`` reads: files, folders searched recursively, and standard input (``-``)."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from asr.audio import AUDIO_SUFFIXES


def expand(items: list[str], glob: str | None = None) -> list[tuple[str, str]]:
    """``(name shown, path read)`` for every input: a file as given, each audio file under a folder (matching
    ``glob``, e.g. ``*.m4a``, else any known audio suffix) in sorted order, ``-`` as standard input."""
    out: list[tuple[str, str]] = []
    for item in items:
        path = Path(item)
        if item == "-":
            out.append(("-", stdin_file()))
        elif path.is_dir():
            found = sorted(p for p in path.rglob(glob or "*") if p.is_file()
                           and (glob or p.suffix.lower() in AUDIO_SUFFIXES))
            # A folder with no audio in it is passed on, to be reported with the other bad inputs.
            out += [(str(p), str(p)) for p in found] or [(item, item)]
        else:
            out.append((item, item))  # a missing file is reported with the others, not here
    return out


def stdin_file() -> str:
    """Standard input copied to a temporary file (removed at exit): any container can then be probed and
    read in blocks, without holding the stream in memory."""
    folder = tempfile.mkdtemp(prefix="asr-stdin-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "stdin"
    with open(path, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
    return str(path)
