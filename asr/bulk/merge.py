"""Joining a bulk transcription's part files (:mod:`asr.bulk`) into ``merged.jsonl`` and ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

from asr.bulk.plan import PLAN_FILE, part_file
from asr.errors import AsrError
from asr.fileio import atomic_write_text
from asr.metrics import error_rates

MERGED_FILE = "merged.jsonl"
SUMMARY_FILE = "summary.json"


def merge(out: Path) -> dict:
    """Join the parts in input order, each id once, into ``merged.jsonl``; score against the references when
    there are any; write and return the summary (counts, skipped utterances with their reasons, WER/CER)."""
    out = Path(out)
    marker = out / PLAN_FILE
    if not marker.is_file():
        raise AsrError(f"{out}: no transcribe-corpus output here ({PLAN_FILE} is missing)")
    expected = json.loads(marker.read_text())["parts"]
    missing = [k for k in range(expected) if not part_file(out, k).is_file()]
    if missing:
        raise AsrError(f"{out}: {len(missing)} of {expected} parts are not done (first: "
                       f"{part_file(out, missing[0]).name}); run the same transcribe-corpus command again")
    rows, seen, skipped = [], set(), []
    for k in range(expected):
        for line in part_file(out, k).read_text().splitlines():
            row = json.loads(line)
            if row["id"] in seen:
                continue
            seen.add(row["id"])
            if row.get("error"):
                skipped.append({"id": row["id"], "part": part_file(out, k).name, "error": row["error"]})
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
