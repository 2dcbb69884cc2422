"""The plan of a bulk transcription (:mod:`asr.bulk`): its items cut into parts, the folder that holds one plan's
part files, and which parts are still to do."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from asr.audio import AUDIO_SUFFIXES, audio_duration
from asr.errors import AsrError, listed
from asr.fileio import atomic_write_text
from asr.manifest import lines, read_entries
from asr.text import normalize

PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Item:
    """One utterance (or whole file) to transcribe."""

    id: str  # unique in the plan: the path, and the offset when it is a span
    audio_filepath: str
    offset: float = 0.0
    duration: float | None = None  # seconds to read; None: the whole file
    text: str | None = None  # the reference, when the input had one
    seconds: float = 0.0  # its length for planning (0 when it could not be read: reported by the part)
    error: str | None = None  # why it cannot be planned (read), if so


@dataclass
class Plan:
    parts: list[list[Item]] = field(default_factory=list)
    fingerprint: str = ""  # of the inputs and the part size: a folder holds one plan's parts only

    @property
    def items(self) -> int:
        return sum(len(s) for s in self.parts)


def part_file(out: Path, index: int) -> Path:
    return Path(out) / f"part-{index:05d}.jsonl"


def _items_of_manifest(path: Path) -> list[Item]:
    entries, problems = read_entries(path)
    if problems:
        raise AsrError(listed(f"{path}: {len(problems)} bad line(s)", lines(problems)))
    items = []
    for e in entries:
        ident = e.id or (e.audio_filepath if not e.offset else f"{e.audio_filepath}#{e.offset:.3f}")
        items.append(Item(ident, e.audio_filepath, e.offset, e.duration if (e.duration and e.offset) else None,
                          normalize(e.text) if e.text is not None else None, e.duration or 0.0))
    return items


def _items_of_folder(path: Path) -> list[Item]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [Item(str(p), str(p)) for p in files]


def plan(inputs: list[str], part_hours: float = 1.0) -> Plan:
    """Every input's items in order, cut into parts of about ``part_hours`` of audio (never splitting an
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
    budget = part_hours * 3600
    parts: list[list[Item]] = []
    held = budget
    for it in measured:
        if held + it.seconds > budget and (not parts or parts[-1]):
            parts.append([])
            held = 0.0
        parts[-1].append(it)
        held += it.seconds
    digest = hashlib.sha256(json.dumps(["parts", part_hours, [[asdict(i) for i in s] for s in parts]]).encode())
    return Plan(parts, digest.hexdigest()[:16])


def check_folder(out: Path, plan: Plan) -> None:
    """Keep one plan's parts per folder: a rerun with other inputs or another part size is refused."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / PLAN_FILE
    if marker.is_file():
        saved = json.loads(marker.read_text()).get("fingerprint")
        if saved != plan.fingerprint:
            raise AsrError(f"{out}: holds the parts of other inputs or another --part-hours ({saved}); use "
                           f"another --out, or empty this one")
        return
    atomic_write_text(marker, json.dumps({"fingerprint": plan.fingerprint, "parts": len(plan.parts),
                                          "items": plan.items}) + "\n")


def pending(out: Path, plan: Plan) -> list[int]:
    """The parts still to do: those without a complete file."""
    return [k for k in range(len(plan.parts)) if not part_file(out, k).is_file()]


def write_part(out: Path, index: int, rows: list[dict]) -> Path:
    """A part's rows, to a temporary name, then renamed: the file exists only when complete."""
    path = part_file(out, index)
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def model_identity(path: str | os.PathLike) -> str:
    """``NAME@SHA256[:12]`` of a model file: which model wrote a row."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{Path(path).name}@{h.hexdigest()[:12]}"
