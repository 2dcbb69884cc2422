"""Downloading corpora: resumable (HTTP Range), verified against published checksums, with a progress bar.

Written on the standard library's ``urllib`` rather than a client library: the only features needed are a
Range header, a status check and streaming, and that keeps the dependency list to what the toolkit uses.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from asr.errors import AsrError
from asr.progress import Progress

CHUNK = 1 << 20  # bytes per read
USER_AGENT = "asr-toolkit (+https://github.com/)"


class DownloadError(AsrError):
    """A download that failed or did not match its checksum."""


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _checksum_algorithm(checksum: str) -> str:
    return {32: "md5", 40: "sha1", 64: "sha256"}.get(len(checksum)) or "sha256"


def verify(path: str | os.PathLike, checksum: str | None) -> None:
    """Raise :class:`DownloadError` unless ``path`` has this md5 / sha1 / sha256 (told apart by length)."""
    if not checksum:
        return
    algorithm = _checksum_algorithm(checksum)
    got = file_digest(path, algorithm)
    if got != checksum.lower():
        raise DownloadError(f"{path}: {algorithm} checksum mismatch (expected {checksum}, got {got}); "
                            "the file was removed, run again to download it anew")


def download(url: str, dest: str | os.PathLike, checksum: str | None = None, retries: int = 5,
             timeout: float = 60.0, progress: bool | None = None, backoff: float = 1.0) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is already there; returns ``dest``.

    Bytes go to ``dest.part`` first. An interrupted transfer (a dropped connection, or a killed process)
    continues from the bytes already on disk with an HTTP Range request, here up to ``retries`` times and on
    any later run. The finished file is checked against ``checksum`` (md5, sha1 or sha256 hex) before it is
    renamed to ``dest``; a mismatch deletes it and raises.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    marker = dest.with_name(dest.name + ".verified")  # checksum already checked: skip re-hashing big archives
    if dest.is_file():
        if checksum and not (marker.is_file() and marker.read_text().strip() == checksum):
            try:
                verify(dest, checksum)
            except DownloadError:
                dest.unlink()
                raise
            marker.write_text(checksum + "\n")
        return dest
    part = dest.with_name(dest.name + ".part")
    show = True if progress is None else progress  # a bar on a terminal, a line now and then in a log
    attempt = 0
    while True:
        try:
            _fetch(url, part, timeout, show)
            break
        except DownloadError:
            raise
        except (urllib.error.URLError, OSError, ConnectionError, TimeoutError) as e:
            attempt += 1
            if attempt > retries:
                reason = getattr(e, "reason", None) or e
                raise DownloadError(f"{url}: download failed after {retries} retries ({reason}); "
                                    f"run again to resume from {part.stat().st_size if part.exists() else 0} bytes") \
                    from None
            time.sleep(backoff * min(2 ** attempt, 30))
    try:
        verify(part, checksum)
    except DownloadError as e:
        part.unlink()
        raise DownloadError(str(e).replace(str(part), url)) from None
    os.replace(part, dest)
    if checksum:
        marker.write_text(checksum + "\n")
    return dest


def _fetch(url: str, part: Path, timeout: float, show: bool) -> None:
    """One attempt: continue ``part`` from its current size. Raises on a short or failed transfer."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the part file is already complete
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = Progress(total, part.name[:-5], "B", enabled=show, unit_scale=True, initial=have)
        received = have
        with open(part, "ab" if have else "wb") as f:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
        bar.close()
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
