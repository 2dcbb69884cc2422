"""Extracting corpus archives (tar, tar.gz, tar.bz2, tgz, zip) safely and once.

Safe: every member must land inside the target folder. Absolute paths, ``..`` components, and links pointing
outside are refused with an error naming the archive and the member, before anything is written.
Once: a marker file records a finished extraction, so a second run does nothing and an interrupted one
starts again.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path

from asr.errors import AsrError


class ArchiveError(AsrError):
    """An archive that cannot be, or must not be, extracted."""


def _inside(root: Path, name: str) -> bool:
    target = (root / name).resolve()
    return target == root or root in target.parents


def _check_tar(archive: Path, tar: tarfile.TarFile, root: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        if os.path.isabs(m.name) or not _inside(root, m.name):
            raise ArchiveError(f"{archive}: member {m.name!r} would be written outside {root}; refusing to extract")
        if m.issym() or m.islnk():
            link = m.linkname if m.islnk() else os.path.join(os.path.dirname(m.name), m.linkname)
            if os.path.isabs(m.linkname) or not _inside(root, link):
                raise ArchiveError(f"{archive}: link {m.name!r} -> {m.linkname!r} points outside {root}; "
                                   "refusing to extract")
        if m.isdev():
            raise ArchiveError(f"{archive}: member {m.name!r} is a device file; refusing to extract")
    return members


def extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract ``archive`` into ``target`` (once); returns ``target``."""
    archive, target = Path(archive), Path(target)
    marker = target / f".extracted-{archive.name}"
    if marker.is_file():
        return target
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such archive")
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    if os.path.isabs(name) or not _inside(root, name):
                        raise ArchiveError(f"{archive}: member {name!r} would be written outside {root}; "
                                           "refusing to extract")
                z.extractall(root)
        else:
            with tarfile.open(archive) as tar:
                members = _check_tar(archive, tar, root)
                # The "data" filter (Python >= 3.11.4) re-checks the same rules and drops unsafe permissions.
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(root, members=members, **kwargs)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise ArchiveError(f"{archive}: not a readable archive ({e})") from None
    marker.write_text("done\n")
    return target
