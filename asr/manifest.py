"""Manifests: NeMo's JSON-lines convention, as typed :class:`Utterance` records, read, validated and written.

A manifest has one JSON object per line: ``audio_filepath``, ``duration`` (seconds), ``text`` and optionally
``offset`` (seconds into the file) and ``speaker`` (any label naming who speaks: ``asr evaluate`` then gives each
speaker's rates). Relative audio paths are resolved against the manifest's folder.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from asr.errors import AsrError, listed
from asr.fileio import atomic_path
from asr.text import Vocabulary, normalize


class ManifestError(AsrError):
    """A manifest with bad lines; the message lists every offending line."""


@dataclass(frozen=True)
class Utterance:
    audio_filepath: str  # absolute, or relative to the manifest's folder when written
    duration: float  # seconds
    text: str  # normalised transcript
    offset: float = 0.0  # seconds into the file where the utterance starts
    speaker: str = ""  # who speaks (e.g. the synthetic corpus's voice); "" = not known

    @property
    def span(self) -> tuple[float, float | None]:
        """``(offset, duration)`` to read, in seconds; duration None (to the end) for a whole file, whose
        manifest duration is rounded and must not cut its last samples."""
        return self.offset, (self.duration if self.offset else None)


@dataclass(frozen=True)
class Entry:
    """One manifest line as written, before validation: the fields parsed, the audio path made absolute (against
    the manifest's folder), the text not yet normalised. Every reader of manifests (training and evaluation,
    ``asr transcribe-corpus``, ``asr prepare`` of an existing manifest) starts from these."""

    line: int  # 1-based line number in the file
    audio_filepath: str
    text: str | None = None
    duration: float | None = None  # seconds
    offset: float = 0.0  # seconds
    speaker: str = ""
    id: str | None = None  # the line's own id, when it gives one


def read_entries(path: str | os.PathLike) -> tuple[list[Entry], list[tuple[int, str]]]:
    """Every line of the manifest at ``path`` that is an object with ``audio_filepath`` (and numbers where numbers
    are due), and ``(line number, why)`` for each line that is not; blank lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    base = path.resolve().parent
    entries: list[Entry] = []
    problems: list[tuple[int, str]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                audio = Path(row["audio_filepath"])
                text = row.get("text")
                duration = row.get("duration")
                entries.append(Entry(
                    lineno, str(audio if audio.is_absolute() else Path(os.path.normpath(base / audio))),
                    None if text is None else str(text), None if duration is None else float(duration),
                    float(row.get("offset") or 0.0), str(row.get("speaker") or ""),
                    None if row.get("id") is None else str(row["id"])))
            except json.JSONDecodeError as e:
                problems.append((lineno, f"not valid JSON ({e.msg})"))
            except KeyError as e:
                problems.append((lineno, f"missing field {e.args[0]!r}"))
            except (TypeError, ValueError, AttributeError):
                problems.append((lineno, "not an object with audio_filepath (and numbers for duration and offset)"))
    return entries, problems


def lines(problems: list[tuple[int, str]]) -> list[str]:
    """``(line number, why)`` pairs as ``"line N: why"``, in the file's order."""
    return [f"line {n}: {why}" for n, why in sorted(problems)]


def read_manifest(path: str | os.PathLike, vocab: Vocabulary | None = Vocabulary(), check_files: bool = True) -> list[Utterance]:
    """Read and validate a training or evaluation manifest. Text is normalised; paths become absolute.

    Raises :class:`ManifestError` listing each bad line: not JSON, missing fields, a missing audio file,
    empty text after normalisation, or characters outside ``vocab`` (skipped when ``vocab`` is None).
    """
    path = Path(path)
    entries, problems = read_entries(path)
    utts: list[Utterance] = []
    for e in entries:
        missing = "duration" if e.duration is None else "text" if e.text is None else None
        text = normalize(e.text or "")
        if missing:
            problems.append((e.line, f"missing field {missing!r}"))
        elif check_files and not Path(e.audio_filepath).is_file():
            problems.append((e.line, f"audio file not found: {e.audio_filepath}"))
        elif not text:
            problems.append((e.line, "empty text"))
        elif vocab is not None and (bad := vocab.unknown(text)):
            chars = "".join(sorted(bad))
            problems.append((e.line, f"characters outside the vocabulary: {chars!r} in {text!r}"))
        elif not (e.duration > 0 and math.isfinite(e.duration)) or e.offset < 0:
            problems.append((e.line, f"bad duration {e.duration} or offset {e.offset}"))
        else:
            utts.append(Utterance(e.audio_filepath, e.duration, text, e.offset, e.speaker))
    if problems:
        raise ManifestError(listed(f"{path}: {len(problems)} bad line(s):", lines(problems)))
    if not utts:
        raise ManifestError(f"{path}: manifest has no utterances")
    return utts


def write_manifest(path: str | os.PathLike, utts: list[Utterance], relative: bool = True) -> None:
    """Write ``utts`` as JSON lines, atomically; audio paths relative to the manifest's folder if possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for u in utts:
            row = asdict(u)
            if relative:
                try:
                    row["audio_filepath"] = os.path.relpath(u.audio_filepath, base)
                except ValueError:  # another drive on Windows
                    pass
            for optional in ("offset", "speaker"):
                if not row[optional]:
                    del row[optional]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
