"""Corpus-scale benchmarks (``make bench``, :mod:`benchmarks.run`): the training loader, and distributed
transcription.

- ``loader``: audio seconds per second that one DataLoader worker delivers (read, decode, resample, the demo's
  augmentation, collate), from one file per utterance and from Lhotse Shar shards of the same utterances, and how
  many such workers the GPU training figure of ``docs/training.md`` needs;
- ``transcribe_corpus``: ``asr transcribe-corpus`` over the same manifests with 1 and with 2 CPU processes
  (each with its share of the cores): audio seconds per second, their ratio, and whether the rows equal what
  ``asr evaluate`` gives on the same model and split.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GPU_AUDIO_SECONDS_PER_SECOND = 8700  # the 5 x 1024 model on an H200 (docs/training.md)


def _rate(dataset, sampler, batches: int) -> float:
    """Audio s/s of one loader worker over ``batches`` batches (after the worker's start-up and first batch)."""
    from torch.utils.data import DataLoader

    from asr.training.dataset import collate

    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=1,
                        multiprocessing_context="fork")
    it = iter(loader)
    next(it)
    audio, start = 0.0, time.perf_counter()
    for _, batch in zip(range(batches), it):
        audio += float(batch["wave_lengths"].sum()) / 16000
    return audio / (time.perf_counter() - start)


def loader(data: Path, config: Path, batches: int = 60) -> dict:
    """Files against shards, one worker each, with the demo's batch size and augmentation."""
    from asr.corpora import shar
    from asr.manifest import read_manifest
    from asr.text import Vocabulary
    from asr.training.dataset import UtteranceDataset
    from asr.training.sampler import DurationBatchSampler
    from asr.training.shards import ShardBatchSampler, ShardDataset, ShardIndex
    from asr.training.wave_augment import WaveAugment, WaveAugmentConfig

    demo = yaml.safe_load(config.read_text())["data"]
    augment = WaveAugmentConfig(**demo.get("augment", {}))
    seconds = demo["max_batch_seconds"]
    utts = read_manifest(data / "train.jsonl")
    files = UtteranceDataset(utts, Vocabulary(), WaveAugment(augment, 0))
    file_rate = _rate(files, DurationBatchSampler([u.duration for u in utts], seconds, augment=augment), batches)
    folder = Path(tempfile.mkdtemp(prefix="bench-shar-"))  # written afresh each run: the write is measured too
    try:
        start = time.perf_counter()
        summary = shar.write(data / "train.jsonl", folder)
        write_seconds = time.perf_counter() - start
        index = ShardIndex(folder, Vocabulary())
        shards = ShardDataset(index, Vocabulary(), WaveAugment(augment, 0))
        shard_rate = _rate(shards, ShardBatchSampler(index, seconds, augment=augment), batches)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"files_audio_seconds_per_second_per_worker": round(file_rate, 1),
            "shards_audio_seconds_per_second_per_worker": round(shard_rate, 1),
            "shards": summary["shards"], "shard_write_seconds": round(write_seconds, 1),
            "workers_for_gpu_figure": {"files": round(GPU_AUDIO_SECONDS_PER_SECOND / file_rate, 1),
                                       "shards": round(GPU_AUDIO_SECONDS_PER_SECOND / shard_rate, 1)},
            "gpu_audio_seconds_per_second": GPU_AUDIO_SECONDS_PER_SECOND}


def _transcribe(model: Path, manifests: list[Path], out: Path, processes: int) -> float:
    command = [sys.executable, "-m", "asr", "transcribe-corpus", "--model", str(model), "--out", str(out),
               "--part-hours", str(60 / 3600), "--trainer.accelerator", "cpu", "--trainer.devices", str(processes),
               *map(str, manifests)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return time.perf_counter() - start


def transcribe_corpus(model: Path, manifests: list[Path]) -> dict:
    """1 process against 2 on the same manifests, and the rows against ``asr evaluate``'s hypotheses."""
    from asr.cli import main

    work = Path(tempfile.mkdtemp(prefix="bench-corpus-"))
    try:
        times = {n: _transcribe(model, manifests, work / f"p{n}", n) for n in (1, 2)}
        rows = {n: [json.loads(line) for line in (work / f"p{n}" / "merged.jsonl").read_text().splitlines()]
                for n in (1, 2)}
        audio = sum(r["seconds"] for r in rows[1])
        evaluated = []
        for m in manifests:
            report = work / f"{m.stem}.json"
            main(["evaluate", "--model", str(model), "--manifest", str(m), "--report", str(report)])
            evaluated += [u["hypothesis"] for u in json.loads(report.read_text())["utterances"]]
        summary = json.loads((work / "p1" / "summary.json").read_text())
        return {"utterances": len(rows[1]), "audio_seconds": round(audio, 1), "cpus": os.cpu_count(),
                "audio_seconds_per_second": {str(n): round(audio / t, 1) for n, t in times.items()},
                "two_vs_one": round(times[1] / times[2], 3),
                "same_rows_1_and_2": [r["text"] for r in rows[1]] == [r["text"] for r in rows[2]],
                "same_as_evaluate": [r["text"] for r in rows[1]] == evaluated,
                "wer": round(summary.get("wer", float("nan")), 4)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_corpus(figures: dict) -> None:
    for key, value in figures.items():
        print(f"corpus {key:34} {json.dumps(value)}")
