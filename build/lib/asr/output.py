"""Writing transcripts: plain text, JSON lines, and SRT / WebVTT subtitles built from word timestamps, to
standard output or one file per input."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from asr.fileio import atomic_write_text

if TYPE_CHECKING:  # annotations only: the CLI imports this module for FORMATS before anything heavy
    from asr.decode import Word
    from asr.assemble import Result

FORMATS = ("txt", "json", "srt", "vtt")  # the file extension of each is the format's name


@dataclass(frozen=True)
class CueLimits:
    """How words are grouped into subtitle cues (common broadcast guidance: ~42 characters, a few seconds)."""

    max_chars: int = 42
    max_seconds: float = 6.0
    max_gap: float = 1.0  # a pause longer than this starts a new cue


def cues(words: list[Word], limits: CueLimits = CueLimits()) -> list[tuple[float, float, str]]:
    """Group timed words into ``(start, end, text)`` cues, in seconds."""
    out: list[tuple[float, float, str]] = []
    group: list[Word] = []
    for w in words:
        if group:
            text = " ".join(g.word for g in group + [w])
            if (len(text) > limits.max_chars or w.end - group[0].start > limits.max_seconds
                    or w.start - group[-1].end > limits.max_gap):
                out.append((group[0].start, group[-1].end, " ".join(g.word for g in group)))
                group = []
        group.append(w)
    if group:
        out.append((group[0].start, group[-1].end, " ".join(g.word for g in group)))
    return out


def _timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def format_srt(cue_list: list[tuple[float, float, str]]) -> str:
    blocks = [f"{i}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(cue_list, 1)]
    return "\n".join(blocks)


def format_vtt(cue_list: list[tuple[float, float, str]]) -> str:
    blocks = [f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n" for a, b, text in cue_list]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_srt(words: list[Word], limits: CueLimits = CueLimits()) -> str:
    return format_srt(cues(words, limits))


def to_vtt(words: list[Word], limits: CueLimits = CueLimits()) -> str:
    return format_vtt(cues(words, limits))


def result_cues(result: Result, limits: CueLimits = CueLimits()) -> list[tuple[float, float, str]]:
    """Cues of a transcript: cut within each segment, never across two (a segment ends at a pause)."""
    if not result.segments:
        return cues(result.words, limits)
    return [c for segment in result.segments for c in cues(segment.words, limits)]


def to_json(result: Result, nbest: bool = False) -> str:
    """One JSON object: ``file``, ``text``, ``duration``, ``segments`` (id, start, end, text), ``words``
    (word, start, end, confidence; seconds in the file) and, with ``nbest``, the n-best list."""
    hyp = result.hypothesis
    obj = {"file": result.path, "text": hyp.text, "duration": round(result.duration, 3),
           "segments": [{"id": s.id, "start": s.start, "end": s.end, "text": s.text} for s in result.segments],
           "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in hyp.words]}
    if nbest:
        obj["nbest"] = [{"text": h.text, "score": round(h.score, 4)} for h in (hyp.alternatives or [hyp])]
    return json.dumps(obj, ensure_ascii=False)


def render(fmt: str, result: Result, nbest: bool = False) -> str:
    """The text of one file's transcript in ``fmt`` (``txt`` is ``FILE<TAB>TEXT`` on stdout, the text in a file)."""
    if fmt == "json":
        return to_json(result, nbest) + "\n"
    if fmt == "srt":
        return format_srt(result_cues(result))
    if fmt == "vtt":
        return format_vtt(result_cues(result))
    return result.hypothesis.text + "\n"


class TranscriptWriter:
    """Where ``asr transcribe`` puts each result.

    Without ``out_dir``: standard output, ``FILE<TAB>TEXT`` per line for txt, the rendered text otherwise.
    With ``out_dir``: one file per input, named after it (``NAME.txt`` ...; ``NAME_2`` for a second input of the
    same name from another folder), each written atomically.
    """

    def __init__(self, fmt: str, out_dir: str | os.PathLike | None = None, nbest: bool = False,
                 stream: TextIO | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        self.fmt, self.nbest = fmt, nbest
        self.out_dir = Path(out_dir) if out_dir else None
        self.stream = stream or sys.stdout
        self.written: list[Path] = []
        self._used: set[str] = set()
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, result: Result) -> None:
        """Write one file's transcript."""
        if self.out_dir is None:
            if self.fmt == "txt":
                self.stream.write(f"{result.path}\t{result.hypothesis.text}\n")
            else:
                self.stream.write(render(self.fmt, result, self.nbest))
            self.stream.flush()
            return
        stem, n = Path(result.path).stem, 1
        name = stem
        while name in self._used:
            n += 1
            name = f"{stem}_{n}"
        self._used.add(name)
        target = self.out_dir / f"{name}.{self.fmt}"
        atomic_write_text(target, render(self.fmt, result, self.nbest))
        self.written.append(target)
