"""Writing files so that a reader (or a killed run) never sees half of one.

Every writer in asr goes through :func:`atomic_path`: the content is written to a temporary file beside the
target, then renamed over it with ``os.replace``, which is atomic on POSIX and Windows. A file that exists is
therefore complete, which is what makes preparation, training and transcription safe to interrupt and resume.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", per_process: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error remove it.

    ``suffix`` is appended to the temporary name for writers that pick a format from the extension
    (soundfile, matplotlib): ``atomic_path("a.flac", ".flac")`` yields ``a.flac.tmp.flac``. ``per_process``
    puts the process id in the temporary name, for files that several processes may write at once (a shared
    cache): each writes its own, and the last rename wins with a complete file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid() if per_process else ''}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
