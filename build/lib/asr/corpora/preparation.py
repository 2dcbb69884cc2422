"""Shared steps of corpus preparation: fetch + extract, convert audio, read durations, write manifests.

Recipes (``recipes/<name>/prepare.py``) only name their archives and parse their corpus' own layout
(:mod:`asr.corpora.layouts`); every step here is idempotent, so a second run does nothing and an interrupted one
resumes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import soundfile as sf

from asr.audio import SAMPLE_RATE, audio_duration, load_audio
from asr.corpora.archive import extract
from asr.corpora.download import download, verify
from asr.corpora.layouts import Row
from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.manifest import Utterance, write_manifest
from asr.text import Vocabulary, normalize
from asr.progress import tracked


@dataclass(frozen=True)
class Archive:
    """An official download: where it lives and its published checksum (md5 / sha1 / sha256 hex)."""

    url: str
    checksum: str | None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def fetch(archive: Archive, download_dir: str | os.PathLike, extract_dir: str | os.PathLike,
          mirror: str | None = None, check: bool = True) -> Path:
    """Download (resumable, verified) and extract (safely, once) one archive; returns ``extract_dir``."""
    url = archive.url if not mirror else mirror.rstrip("/") + "/" + archive.filename
    path = download(url, Path(download_dir) / archive.filename, archive.checksum if check else None)
    return extract(path, extract_dir)


def local_archive(path: str | os.PathLike, extract_dir: str | os.PathLike, archive: Archive | None = None,
                  check: bool = True) -> Path:
    """Extract an archive the user downloaded (e.g. Common Voice, which needs a login); checksum when known."""
    path = Path(path)
    if not path.is_file():
        raise AsrError(f"{path}: no such archive")
    if check and archive is not None and archive.checksum:
        verify(path, archive.checksum)
    return extract(path, extract_dir)


def durations(paths: list[str], threads: int = 8) -> list[float]:
    """Seconds of audio in each file (header reads, threaded); ``-1`` for a file that cannot be read."""
    def one(p: str) -> float:
        try:
            return audio_duration(p)
        except AsrError:
            return -1.0

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, paths))


def _convert_one(job: tuple[str, str]) -> str | None:
    src, dst = job
    if os.path.exists(dst):
        return None
    try:
        wave = load_audio(src)
    except AsrError as e:
        return str(e)
    with atomic_path(dst, ".flac") as tmp:
        sf.write(tmp, wave.numpy(), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return None


def convert(jobs: list[tuple[str, str]], processes: int = 0, desc: str = "convert") -> list[str]:
    """Convert ``(source, destination.flac)`` pairs to 16 kHz mono FLAC in parallel; existing ones are skipped.

    Returns the errors (one line each, naming the file): a bad file never stops the others.
    """
    todo = [j for j in jobs if not os.path.exists(j[1])]
    if not todo:
        return []
    processes = processes or os.cpu_count() or 1
    errors = []
    # spawn: forked children of a process that has run torch threads can deadlock
    with get_context("spawn").Pool(processes, initializer=_single_thread) as pool:
        for err in tracked(pool.imap_unordered(_convert_one, todo, chunksize=16), len(todo), desc, "file"):
            if err:
                errors.append(err)
    return errors


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def with_durations(rows: Iterable[Row]) -> list[Row]:
    """``rows`` with whole-file durations read from the audio headers (in parallel); ``-1`` marks a file that
    cannot be read."""
    rows = list(rows)
    missing = [i for i, r in enumerate(rows) if r.duration is None]
    for i, d in zip(missing, durations([rows[i].audio for i in missing])):
        rows[i] = replace(rows[i], duration=d)
    return rows


def fetch_for(archive: Archive, args) -> Path:
    """:func:`fetch` with a recipe's standard options (``--data_dir``, ``--download_dir``, ``--mirror``,
    ``--skip_checksum``); returns the extraction folder."""
    downloads = Path(args.download_dir or Path(args.data_dir) / "downloads")
    return fetch(archive, downloads, downloads / "extracted", args.mirror, not args.skip_checksum)


def parse_recipe_args(name: str, doc: str, argv: list[str]):
    """The arguments of a recipe that takes only the shared options."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"asr prepare {name}", description=doc)
    recipe_arguments(parser, name)
    return parser.parse_args(argv)


def recipe_arguments(parser, name: str, downloads: bool = True) -> None:
    """The options every real-corpus recipe shares."""
    parser.add_argument("--data_dir", default=f"data/{name}", help="where manifests (and converted audio) go")
    if downloads:
        parser.add_argument("--download_dir", default=None, help="archives and extracted corpus "
                            "(default: DATA_DIR/downloads)")
        parser.add_argument("--mirror", default=None, help="base URL of a mirror holding the same archive names")
        parser.add_argument("--skip_checksum", action="store_true",
                            help="do not check archives against the published checksums")


def write_split(path: str | os.PathLike, rows: Iterable[Row], vocab: Vocabulary = Vocabulary()) -> dict:
    """Write a manifest from rows with durations (see :func:`with_durations`), normalising the text.

    Rows whose text is empty or uses characters outside ``vocab`` after normalisation, or whose audio has no
    duration, are left out and counted; returns the counts and the hours written.
    """
    utts, dropped = [], {"empty_text": 0, "outside_vocabulary": 0, "unreadable_audio": 0}
    for row in rows:
        text = normalize(row.text)
        if row.duration is None or row.duration <= 0:
            dropped["unreadable_audio"] += 1
        elif not text:
            dropped["empty_text"] += 1
        elif vocab.unknown(text):
            dropped["outside_vocabulary"] += 1
        else:
            utts.append(Utterance(str(row.audio), round(row.duration, 3), text, round(row.offset, 3)))
    if not utts:
        raise AsrError(f"{path}: no usable utterances ({', '.join(f'{k} {v}' for k, v in dropped.items() if v)})")
    write_manifest(path, utts)
    return {"utterances": len(utts), "hours": round(sum(u.duration for u in utts) / 3600, 3), **dropped}


def write_splits(data_dir: str | os.PathLike, splits: dict[str, list]) -> None:
    """:func:`write_split` each ``name -> rows`` to ``DATA_DIR/name.jsonl`` and report it; empty splits are skipped."""
    for name, rows in splits.items():
        if rows:
            path = Path(data_dir) / f"{name}.jsonl"
            report(str(path), write_split(path, rows))


def report(name: str, stats: dict) -> None:
    dropped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in stats.items()
                        if k not in ("utterances", "hours") and v)
    print(f"{name}: {stats['utterances']} utterances, {stats['hours']} h" + (f" (left out: {dropped})" if dropped else ""))


def prepare_librispeech_layout(subsets: list[str], archives: dict[str, Archive], args) -> None:
    """LibriSpeech-layout corpora (LibriSpeech, Mini LibriSpeech): fetch and extract each subset, write
    ``DATA_DIR/<subset>.jsonl``, and ``train.jsonl`` joining the chosen ``train*`` subsets."""
    from asr.corpora.layouts import librispeech

    trains = []
    for subset in subsets:
        rows = with_durations(librispeech(fetch_for(archives[subset], args) / "LibriSpeech" / subset))
        write_splits(args.data_dir, {subset: rows})
        if subset.startswith("train"):
            trains += rows
    write_splits(args.data_dir, {"train": trains})
