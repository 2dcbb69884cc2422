"""Pseudo-labels (``asr filter``): the rows of a bulk transcription (:mod:`asr.bulk`) confident enough to train
on, as a training manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asr.bulk.merge import MERGED_FILE, merge
from asr.fileio import atomic_write_text


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
