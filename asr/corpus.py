"""Transcribing a corpus in shards: the plan, the shard files, merging them, and pseudo-labels from the result.

Work for ``asr transcribe-corpus`` (run by :mod:`asr.training.predict` on Lightning, one process or many):

- the *plan*: every input (manifest lines, audio files under folders) in order, each with an id, cut into shards
  of about ``shard_hours`` of audio. The same inputs give the same plan, on every rank and on every rerun;
- a *shard file* ``shard-NNNNN.jsonl`` per shard, one row per utterance, written to a temporary name and renamed
  when the shard is complete: a rerun skips the shards whose file exists and redoes the others;
- the *merge*: every shard's rows in input order, each id once, scored against references where the inputs had
  them (``merged.jsonl``, ``summary.json``);
- *pseudo-labels*: rows whose confidence passes thresholds, as a training manifest (``asr filter``).

Needs no torch: the plan and merge run anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from asr.audio import AUDIO_SUFFIXES, audio_duration
from asr.errors import AsrError, listed
from asr.fileio import atomic_write_text
from asr.metrics import error_rates
from asr.text import normalize

PLAN_FILE = "plan.json"
MERGED_FILE = "merged.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Item:
    """One utterance (or whole file) to transcribe."""

    id: str  # unique in the plan: the path, and the offset when it is a span
    audio_filepath: str
    offset: float = 0.0
    duration: float | None = None  # seconds to read; None: the whole file
    text: str | None = None  # the reference, when the input had one
    seconds: float = 0.0  # its length for planning (0 when it could not be read: reported by the shard)
    error: str | None = None  # why it cannot be planned (read), if so


@dataclass
class Plan:
    shards: list[list[Item]] = field(default_factory=list)
    fingerprint: str = ""  # of the inputs and the shard size: a folder holds one plan's shards only

    @property
    def items(self) -> int:
        return sum(len(s) for s in self.shards)


def shard_file(out: Path, index: int) -> Path:
    return Path(out) / f"shard-{index:05d}.jsonl"


def _items_of_manifest(path: Path) -> list[Item]:
    base = path.resolve().parent
    items, problems = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio = str(row["audio_filepath"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"{path}:{lineno}: not a JSON object with audio_filepath")
            continue
        audio = audio if os.path.isabs(audio) else str(base / audio)
        offset = float(row.get("offset") or 0.0)
        duration = row.get("duration")
        text = normalize(str(row["text"])) if row.get("text") is not None else None
        ident = str(row.get("id") or (audio if not offset else f"{audio}#{offset:.3f}"))
        items.append(Item(ident, audio, offset, float(duration) if (duration and offset) else None, text,
                          float(duration or 0.0)))
    if problems:
        raise AsrError(listed(f"{path}: {len(problems)} bad line(s)", problems))
    return items


def _items_of_folder(path: Path) -> list[Item]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [Item(str(p), str(p)) for p in files]


def plan(inputs: list[str], shard_hours: float = 1.0) -> Plan:
    """Every input's items in order, cut into shards of about ``shard_hours`` of audio (never splitting an
    item). Items without a duration (folders, manifests without one) are measured from their headers."""
    items: list[Item] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            items += _items_of_folder(path)
        elif path.suffix == ".jsonl" or path.suffix == ".json":
            if not path.is_file():
                raise AsrError(f"{path}: no such manifest")
            items += _items_of_manifest(path)
        else:
            items.append(Item(str(path), str(path)))
    seen: set[str] = set()
    measured = []
    for it in items:
        if it.id in seen:
            continue  # the same utterance listed twice is transcribed once
        seen.add(it.id)
        if not it.seconds:
            try:
                it = replace(it, seconds=audio_duration(it.audio_filepath) - it.offset)
            except AsrError as e:
                it = replace(it, error=str(e))
        measured.append(it)
    budget = shard_hours * 3600
    shards: list[list[Item]] = []
    held = budget
    for it in measured:
        if held + it.seconds > budget and (not shards or shards[-1]):
            shards.append([])
            held = 0.0
        shards[-1].append(it)
        held += it.seconds
    digest = hashlib.sha256(json.dumps([shard_hours, [[asdict(i) for i in s] for s in shards]]).encode())
    return Plan(shards, digest.hexdigest()[:16])


def check_folder(out: Path, plan: Plan) -> None:
    """Keep one plan's shards per folder: a rerun with other inputs or another shard size is refused."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / PLAN_FILE
    if marker.is_file():
        saved = json.loads(marker.read_text()).get("fingerprint")
        if saved != plan.fingerprint:
            raise AsrError(f"{out}: holds the shards of other inputs or another --shard-hours ({saved}); use "
                           f"another --out, or empty this one")
        return
    atomic_write_text(marker, json.dumps({"fingerprint": plan.fingerprint, "shards": len(plan.shards),
                                          "items": plan.items}) + "\n")


def pending(out: Path, plan: Plan) -> list[int]:
    """The shards still to do: those without a complete file."""
    return [k for k in range(len(plan.shards)) if not shard_file(out, k).is_file()]


def write_shard(out: Path, index: int, rows: list[dict]) -> Path:
    """A shard's rows, to a temporary name, then renamed: the file exists only when complete."""
    path = shard_file(out, index)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def model_identity(path: str | os.PathLike) -> str:
    """``NAME@SHA256[:12]`` of a model file: which model wrote a row."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{Path(path).name}@{h.hexdigest()[:12]}"


def merge(out: Path) -> dict:
    """Join the shards in input order, each id once, into ``merged.jsonl``; score against the references when
    there are any; write and return the summary (counts, skipped utterances with their reasons, WER/CER)."""
    out = Path(out)
    marker = out / PLAN_FILE
    if not marker.is_file():
        raise AsrError(f"{out}: no transcribe-corpus output here ({PLAN_FILE} is missing)")
    expected = json.loads(marker.read_text())["shards"]
    missing = [k for k in range(expected) if not shard_file(out, k).is_file()]
    if missing:
        raise AsrError(f"{out}: {len(missing)} of {expected} shards are not done (first: "
                       f"{shard_file(out, missing[0]).name}); run the same transcribe-corpus command again")
    rows, seen, skipped = [], set(), []
    for k in range(expected):
        for line in shard_file(out, k).read_text().splitlines():
            row = json.loads(line)
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            if row.get("error"):
                skipped.append({"id": row["id"], "shard": shard_file(out, k).name, "error": row["error"]})
            rows.append(row)
    atomic_write_text(out / MERGED_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    summary: dict = {"utterances": len(rows), "transcribed": len(rows) - len(skipped), "skipped": skipped,
                     "audio_seconds": round(sum(r.get("seconds", 0.0) for r in rows), 3),
                     "models": sorted({r["model"] for r in rows if r.get("model")})}
    scored = [r for r in rows if r.get("reference") is not None]
    if scored:
        rates = error_rates([r["reference"] for r in scored], [r.get("text", "") for r in scored])
        summary.update(wer=rates.wer, cer=rates.cer, word_errors=rates.word_errors, words=rates.words,
                       scored=len(scored))
    atomic_write_text(out / SUMMARY_FILE, json.dumps(summary, indent=1) + "\n")
    return summary


@dataclass(frozen=True)
class Confidence:
    """Which transcribed rows become pseudo-labels."""

    min_logprob: float = -0.5  # the decoded path's mean log-probability per frame (``avg_logprob``)
    max_no_speech: float = 0.9  # the mean probability of the CTC blank over the utterance
    min_words: int = 1
    min_word_confidence: float = 0.0  # every word's confidence at least this


def select(rows: list[dict], rules: Confidence = Confidence()) -> list[dict]:
    """The rows confident enough to train on."""
    keep = []
    for r in rows:
        if r.get("error") or len(r.get("text", "").split()) < rules.min_words:
            continue
        if r["avg_logprob"] < rules.min_logprob or r["no_speech_prob"] > rules.max_no_speech:
            continue
        if any(w["confidence"] < rules.min_word_confidence for w in r.get("words", [])):
            continue
        keep.append(r)
    return keep


def pseudo_manifest(out: Path, target: Path, rules: Confidence = Confidence()) -> tuple[int, int]:
    """``asr filter``: the merged rows that pass ``rules``, as a training manifest; returns (kept, all)."""
    merged = Path(out) / MERGED_FILE
    if not merged.is_file():
        merge(out)
    rows = [json.loads(line) for line in merged.read_text().splitlines()]
    keep = select(rows, rules)
    lines = []
    for r in keep:
        entry = {"audio_filepath": r["audio_filepath"], "duration": r["seconds"], "text": r["text"]}
        if r.get("offset"):
            entry["offset"] = r["offset"]
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    atomic_write_text(target, "".join(lines))
    return len(keep), len(rows)
