"""Readers for the official layouts of public corpora and the usual ways people store their own data.

Each reader yields :class:`Row` records; a ``duration`` of ``None`` means "the whole file" (read from the audio
afterwards by :func:`asr.corpora.preparation.with_durations`). Text stays raw:
:func:`asr.corpora.preparation.write_split` normalises it with the training normaliser.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from asr.audio import AUDIO_SUFFIXES
from asr.errors import AsrError
from asr.manifest import lines, read_entries


@dataclass(frozen=True)
class Row:
    """One utterance as a corpus layout describes it, before normalisation and validation."""

    audio: str  # path of the audio file
    text: str  # raw transcript
    offset: float = 0.0  # seconds into the file
    duration: float | None = None  # seconds; None = to the end of the file (read from its header later)


class FormatError(AsrError):
    """A corpus file that does not follow its format; the message names the file and line."""


def librispeech(root: str | Path) -> Iterator[Row]:
    """LibriSpeech / Mini LibriSpeech: ``SPK/CHAPTER/SPK-CHAPTER.trans.txt`` lines ``UTT-ID TEXT``, audio ``UTT-ID.flac``."""
    for trans in sorted(Path(root).rglob("*.trans.txt")):
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.partition(" ")
            if not text.strip():
                raise FormatError(f"{trans}:{lineno}: expected 'UTTERANCE-ID TEXT'")
            yield Row(str(trans.parent / f"{uid}.flac"), text)


_AN4_LINE = re.compile(r"^(.*)\(([^()]+)\)\s*$")


def an4(root: str | Path, split: str) -> Iterator[Row]:
    """CMU AN4 (sphere release): ``etc/an4_{split}.fileids`` + ``etc/an4_{split}.transcription`` in the same order,
    transcripts like ``<s> YES </s> (fash-an251-b)``, audio ``wav/<fileid>.sph``."""
    root = Path(root)
    ids_file, trans_file = root / "etc" / f"an4_{split}.fileids", root / "etc" / f"an4_{split}.transcription"
    for f in (ids_file, trans_file):
        if not f.is_file():
            raise FormatError(f"{f}: missing (is {root} the 'an4' folder of an4_sphere.tar.gz?)")
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    lines = [line for line in trans_file.read_text().splitlines() if line.strip()]
    if len(ids) != len(lines):
        raise FormatError(f"{trans_file}: {len(lines)} transcripts for {len(ids)} file ids in {ids_file.name}")
    for lineno, (fileid, line) in enumerate(zip(ids, lines), 1):
        m = _AN4_LINE.match(line)
        if not m:
            raise FormatError(f"{trans_file}:{lineno}: expected '<s> TEXT </s> (utterance-id)'")
        text = m.group(1).replace("<s>", " ").replace("</s>", " ")
        yield Row(str(root / "wav" / f"{fileid}.sph"), text)


def ljspeech(root: str | Path) -> list[Row]:
    """LJSpeech 1.1: ``metadata.csv`` lines ``ID|raw text|normalized text`` (numbers spelled out), ``wavs/ID.wav``."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FormatError(f"{meta}: missing (is {root} the LJSpeech-1.1 folder?)")
    rows = []
    for lineno, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("|")
        if len(fields) != 3:
            raise FormatError(f"{meta}:{lineno}: expected 'ID|text|normalized text'")
        rows.append(Row(str(root / "wavs" / f"{fields[0]}.wav"), fields[2] or fields[1]))
    return rows


def commonvoice(lang_dir: str | Path, split: str) -> Iterator[Row]:
    """Common Voice: ``{split}.tsv`` with (at least) ``path`` and ``sentence`` columns, audio ``clips/<path>`` (mp3)."""
    tsv = Path(lang_dir) / f"{split}.tsv"
    if not tsv.is_file():
        raise FormatError(f"{tsv}: missing")
    with open(tsv, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not {"path", "sentence"} <= set(reader.fieldnames or []):
            raise FormatError(f"{tsv}:1: expected a header with 'path' and 'sentence' columns")
        for row in reader:
            yield Row(str(Path(lang_dir) / "clips" / row["path"]), row["sentence"] or "")


_STM_SKIP = "ignore_time_segment_in_scoring"
_STM_TOKEN = re.compile(r"<[^>]*>|\{[^}]*\}|\[[^\]]*\]|\(\d+\)")  # <unk>, {NOISE}, [laughter], (2)


def stm(path: str | Path, audio: str | Path) -> Iterator[Row]:
    """An STM transcript (TED-LIUM): ``talk channel speaker start end <label> text`` per segment of ``audio``.

    Segments marked ``ignore_time_segment_in_scoring`` are skipped; markup (``<unk>``, ``{NOISE}``) is removed and
    TED-LIUM's detached contractions (``it 's``) are joined back.
    """
    path = Path(path)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split(None, 6)
        try:
            start, end = float(fields[3]), float(fields[4])
        except (IndexError, ValueError):
            raise FormatError(f"{path}:{lineno}: expected 'talk channel speaker start end <label> text'") from None
        text = fields[6] if len(fields) > 6 else ""
        if fields[5:6] and not fields[5].startswith("<"):  # no label column
            text = " ".join(fields[5:])
        if _STM_SKIP in text or end <= start:
            continue
        text = _STM_TOKEN.sub(" ", text)
        text = re.sub(r"\s+'(?=\w)", "'", text)
        yield Row(str(audio), text, start, round(end - start, 3))


def kaldi(data_dir: str | Path) -> Iterator[Row]:
    """A Kaldi data dir: ``wav.scp`` (``RECORDING PATH``), ``text`` (``UTT TEXT``), optional ``segments``
    (``UTT RECORDING START END``). Piped ``wav.scp`` entries (``cmd |``) are refused: convert them first."""
    d = Path(data_dir)

    def table(name: str) -> dict[str, str]:
        f = d / name
        out = {}
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            if not value.strip() and name != "text":
                raise FormatError(f"{f}:{lineno}: expected 'ID VALUE'")
            if name == "wav.scp" and value.rstrip().endswith("|"):
                raise FormatError(f"{f}:{lineno}: piped commands are not supported; write the audio to files")
            out[key] = value.strip()
        return out

    for name in ("wav.scp", "text"):
        if not (d / name).is_file():
            raise FormatError(f"{d / name}: missing (a Kaldi data dir needs wav.scp and text)")
    wavs, texts = table("wav.scp"), table("text")
    resolve = lambda p: str(p if Path(p).is_absolute() else d / p)
    if (d / "segments").is_file():
        for lineno, line in enumerate((d / "segments").read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                utt, rec, start, end = line.split()
                start, end = float(start), float(end)
            except ValueError:
                raise FormatError(f"{d / 'segments'}:{lineno}: expected 'UTT RECORDING START END'") from None
            if rec not in wavs:
                raise FormatError(f"{d / 'segments'}:{lineno}: recording {rec!r} is not in wav.scp")
            if utt in texts:
                yield Row(resolve(wavs[rec]), texts[utt], start, round(end - start, 3))
    else:
        for utt, text in texts.items():
            if utt not in wavs:
                raise FormatError(f"{d / 'text'}: utterance {utt!r} is not in wav.scp")
            yield Row(resolve(wavs[utt]), text)


def sidecar_folder(folder: str | Path) -> Iterator[Row]:
    """Audio files with a ``.txt`` of the same name beside them (searched recursively)."""
    for audio in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        txt = audio.with_suffix(".txt")
        if txt.is_file():
            yield Row(str(audio), txt.read_text(encoding="utf-8"))


def csv_table(path: str | Path) -> Iterator[Row]:
    """A CSV with a ``path,text`` header; relative paths are relative to the CSV's folder."""
    path = Path(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"path", "text"} <= set(reader.fieldnames or []):
            raise FormatError(f"{path}:1: expected a header with 'path' and 'text' columns")
        for row in reader:
            p = Path(row["path"])
            yield Row(str(p if p.is_absolute() else path.parent / p), row["text"] or "")


def nemo(path: str | Path) -> Iterator[Row]:
    """An existing NeMo manifest (JSON lines): re-validated and normalised."""
    entries, problems = read_entries(path)
    if problems:
        raise FormatError(f"{path}: {lines(problems)[0]}")
    for e in entries:
        if e.text is None:
            raise FormatError(f"{path}: line {e.line}: missing field 'text'")
        yield Row(e.audio_filepath, e.text, e.offset, e.duration)
