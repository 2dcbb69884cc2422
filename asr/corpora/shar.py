"""``asr shard``: a training manifest's audio and transcripts written into Lhotse Shar shards, resumably.

Millions of small files are what shared filesystems serve worst; a shard is one tar of audio read from start to
end. We write Lhotse's Shar format (the k2/icefall and NeMo convention) with Lhotse's own writer, so the shards
also open with ``CutSet.from_shar``. Per shard ``k``: ``recording.{k:06d}.tar`` (each utterance as 16 kHz mono
16-bit FLAC, whatever the source's format, rate and channels) and ``cuts.{k:06d}.jsonl.gz`` (id, duration,
transcript, the source's path and offset). :mod:`asr.training.shards` reads them in training.

The utterances are shuffled once from ``seed`` before they are cut into shards (as Lhotse advises), so that every
shard mixes speakers and lengths. A shard is written to a temporary folder and moved into place, the tar first and
the cuts file last: a shard with its cuts file is complete. A rerun of the same command writes only the shards that
are missing; an unreadable utterance is left out with a one-line error, and ``shar.json`` lists it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from asr.audio import SAMPLE_RATE, read_audio
from asr.errors import AsrError
from asr.fileio import atomic_write_text
from asr.manifest import Utterance, read_manifest
from asr.progress import tracked

SUMMARY_FILE = "shar.json"


def cuts_file(out: Path, index: int) -> Path:
    return Path(out) / f"cuts.{index:06d}.jsonl.gz"


def recording_file(out: Path, index: int) -> Path:
    return Path(out) / f"recording.{index:06d}.tar"


@dataclass(frozen=True)
class ShardPlan:
    shards: list[list[tuple[int, Utterance]]]  # (manifest line order, utterance) per shard
    fingerprint: str  # of the manifest, the shard size and the seed: a folder holds one plan's shards


def plan(manifest: str | os.PathLike, shard_size: int = 1000, seed: int = 0) -> ShardPlan:
    utts = read_manifest(manifest, vocab=None, check_files=False)
    order = list(range(len(utts)))
    random.Random(seed).shuffle(order)
    shards = [[(i, utts[i]) for i in order[k:k + shard_size]] for k in range(0, len(order), shard_size)]
    digest = hashlib.sha256(json.dumps([shard_size, seed, [u.__dict__ for u in utts]]).encode()).hexdigest()
    return ShardPlan(shards, digest[:16])


def _cut(index: int, utt: Utterance):
    """The utterance as a Lhotse cut holding its audio in memory (16 kHz mono FLAC bytes)."""
    import soundfile as sf
    from lhotse import Recording, SupervisionSegment

    offset, duration = utt.span
    wave = read_audio(utt.audio_filepath, offset=offset, duration=duration)
    if wave.size == 0:
        raise AsrError(f"{utt.audio_filepath}: no audio in [{offset}, {offset + (duration or 0)}) s")
    buffer = io.BytesIO()
    sf.write(buffer, wave, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    ident = f"{index:09d}"  # the manifest line: unique, and stable across reruns
    recording = Recording.from_bytes(buffer.getvalue(), recording_id=ident)
    cut = recording.to_cut()
    cut.supervisions = [SupervisionSegment(id=ident, recording_id=ident, start=0.0, duration=recording.duration,
                                           text=utt.text, speaker=utt.speaker or None)]
    cut.custom = {"audio_filepath": utt.audio_filepath, "offset": utt.offset}
    return cut


def _write_shard(out: Path, index: int, items: list[tuple[int, Utterance]]) -> list[dict]:
    """Write shard ``index`` of ``items``; returns the utterances it left out, with the reason."""
    from lhotse.shar import SharWriter

    staging = out / f".shard-{index:06d}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    skipped = []
    with SharWriter(str(staging), fields={"recording": "flac"}, shard_size=len(items) + 1,
                    shard_offset=index) as writer:
        for line, utt in items:
            try:
                writer.write(_cut(line, utt))
            except AsrError as e:
                skipped.append({"line": line + 1, "shard": index, "audio_filepath": utt.audio_filepath,
                                "error": str(e)})
                print(f"asr: error: {e} (skipped)", file=sys.stderr)
    os.replace(recording_file(staging, index), recording_file(out, index))
    os.replace(cuts_file(staging, index), cuts_file(out, index))  # last: the shard is complete
    shutil.rmtree(staging)
    return skipped


def write(manifest: str | os.PathLike, out: str | os.PathLike, shard_size: int = 1000, seed: int = 0) -> dict:
    """Write the manifest's shards that are not in ``out`` yet; returns (and writes) the summary."""
    out = Path(out)
    shards = plan(manifest, shard_size, seed)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if summary and summary.get("fingerprint") != shards.fingerprint:
        raise AsrError(f"{out}: holds the shards of another manifest, --shard-size or --seed; use another --out")
    skipped = summary.get("skipped", [])
    todo = [k for k in range(len(shards.shards)) if not cuts_file(out, k).is_file()]
    for k in tracked(todo, len(todo), "shards", unit="shard"):
        # A shard written again lists its own skipped utterances afresh.
        skipped = sorted([s for s in skipped if s.get("shard") != k] + _write_shard(out, k, shards.shards[k]),
                         key=lambda s: s["line"])
        summary = {"fingerprint": shards.fingerprint, "manifest": str(manifest), "shards": len(shards.shards),
                   "shard_size": shard_size, "seed": seed,
                   "utterances": sum(map(len, shards.shards)) - len(skipped), "skipped": skipped}
        atomic_write_text(summary_path, json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="asr shard", description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", help="a training manifest (.jsonl)")
    p.add_argument("--out", required=True, help="folder for the shards (train with --data.train_shards DIR)")
    p.add_argument("--shard-size", type=int, default=1000, help="utterances per shard (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seeds the one shuffle before sharding")
    args = p.parse_args(argv)
    if args.shard_size < 1:
        raise AsrError("--shard-size must be at least 1")
    summary = write(args.manifest, args.out, args.shard_size, args.seed)
    print(f"{summary.get('utterances', 0)} utterances in {summary.get('shards', 0)} shards -> {args.out}"
          + (f"; {len(summary['skipped'])} skipped (listed in {Path(args.out) / SUMMARY_FILE})"
             if summary.get("skipped") else ""))
    return 1 if summary.get("skipped") else 0
