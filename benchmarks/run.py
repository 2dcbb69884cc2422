"""``make bench``: speed, padding and serving figures of the demo-sized pipeline on this machine -> ``exp/bench.json``.

Run from the repository's root: ``python -m benchmarks.run`` (``--gpu-only`` for the GPU figures alone,
``--no-inference`` to skip long recordings, ONNX and the server). The measures are those of
:mod:`benchmarks.training` and :mod:`benchmarks.inference`; ``docs/benchmarks.md`` gives the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import torch
import yaml

from benchmarks import corpus, inference, streaming
from benchmarks.training import (DEMO_CONFIG, beam_speed, demo_model_config, gpu_figures, padding_fraction, print_gpu,
                                 raw_step, train_throughput, transcribe_rtf)


def streaming_figures(model: Path, data: Path) -> dict:
    """Live sessions' memory; latency and capacity when the model was trained to read in chunks (else why not)."""
    from asr import checkpoint
    from asr.chunked import can_chunk, why_not_chunked

    recognizer = checkpoint.load(model, "cpu")
    memory = streaming.session_memory(model, data)  # any model: live sessions reread what cannot be chunked
    if not can_chunk(recognizer):
        return {"skipped": f"{model}: {why_not_chunked(recognizer)}", "memory": memory}
    return {"accuracy": streaming.accuracy(model, data), "live": streaming.live(model, data), "memory": memory}


def corpus_figures(model: Path, data: Path) -> dict:
    """The loader from files and shards; distributed transcription of the test splits (with the demo model)."""
    figures = {"loader": corpus.loader(data, DEMO_CONFIG)}
    if model.is_file():
        figures["transcribe_corpus"] = corpus.transcribe_corpus(model, [data / "test.jsonl", data / "test_long.jsonl"])
    return figures


def merge(out: Path, figures: dict) -> None:
    """Update ``out`` (JSON) with ``figures``, keeping the other measures it holds."""
    old = json.loads(out.read_text()) if out.is_file() else {}
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {f"machine_{key}": {"processor": cpu_name()} for key in figures}
    out.write_text(json.dumps({**old, **figures, **machine}, indent=1) + "\n")


def cpu_name() -> str:
    """The processor's model name (as ``lscpu`` prints it): figures differ several-fold between machines."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synthetic")
    parser.add_argument("--exp", default="exp/synthetic")
    parser.add_argument("--out", default="exp/bench.json")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU figures (no corpus needed)")
    parser.add_argument("--no-inference", action="store_true",
                        help="skip long recordings, ONNX and the server (benchmarks/inference.py)")
    parser.add_argument("--no-streaming", action="store_true", help="skip live recognition (benchmarks/streaming.py)")
    parser.add_argument("--streaming-only", action="store_true", help="only live recognition")
    parser.add_argument("--corpus-only", action="store_true",
                        help="only the loader (files, shards) and distributed transcription (benchmarks/corpus.py)")
    args = parser.parse_args(argv)
    if args.gpu_only:
        if not torch.cuda.is_available():
            print("no GPU visible")
            return 1
        gpu = gpu_figures()
        print_gpu(gpu)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"gpu": gpu}, indent=1) + "\n")
        return 0
    data, exp = Path(args.data), Path(args.exp)
    if args.streaming_only:
        figures = streaming_figures(exp / "model.pt", data)
        streaming.print_streaming(figures)
        merge(Path(args.out), {"streaming": figures})
        return 0
    if args.corpus_only:
        figures = corpus_figures(exp / "model.pt", data)
        corpus.print_corpus(figures)
        merge(Path(args.out), {"corpus": figures})
        return 0
    cfg = demo_model_config()
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    max_seconds = demo["data"]["max_batch_seconds"]
    results: dict = {"machine": {"cpus": os.cpu_count(), "processor": cpu_name(),
                                 "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
                     "model": cfg.__dict__}
    # The raw step's batch: the demo's padded-seconds budget as 16 utterances of 2.5 s (its typical shape).
    # The bare step is timed before and after the training run and averaged: this machine's speed drifts
    # by 10 % between minutes (measured), and the ratio must compare like with like.
    before = raw_step(cfg, 16, max_seconds / 16, args.steps // 3)
    results["train_audio_seconds_per_second"], results["train_padding_fraction"] = train_throughput(args.steps, 10)
    after = raw_step(cfg, 16, max_seconds / 16, args.steps // 3)
    results["raw_step_audio_seconds_per_second"] = (before + after) / 2
    results["raw_step_before_after"] = [before, after]
    results["train_vs_raw"] = results["train_audio_seconds_per_second"] / results["raw_step_audio_seconds_per_second"]
    results["padding_fraction"] = padding_fraction(data / "train.jsonl", max_seconds, 30.0)
    results["transcribe_rtf"], audio = transcribe_rtf(exp / "model.pt", data / "test.jsonl")
    results["transcribe_audio_seconds"] = audio
    results["beam_lm_frames_per_second"] = beam_speed(exp / "model.pt", data / "test.jsonl", exp / "decode.yaml")
    if torch.cuda.is_available():
        results["gpu"] = gpu_figures()
    if not args.no_inference and (exp / "model.pt").is_file():
        results["inference"] = inference.run_all(exp / "model.pt", data / "test.jsonl", exp)
    if not args.no_streaming and (exp / "model.pt").is_file():
        results["streaming"] = streaming_figures(exp / "model.pt", data)
    results["corpus"] = corpus_figures(exp / "model.pt", data)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    targets = {"train_vs_raw": (">=", 0.8), "padding_fraction": ("<=", 0.10), "transcribe_rtf": ("<=", 0.02),
               "beam_lm_frames_per_second": (">=", 20000)}
    print(f"{'measure':38} {'value':>12}  target")
    for key in ("raw_step_audio_seconds_per_second", "train_audio_seconds_per_second", "train_vs_raw",
                "padding_fraction", "train_padding_fraction", "transcribe_rtf", "beam_lm_frames_per_second"):
        v = results[key]
        target = ""
        if key in targets and v is not None:
            op, t = targets[key]
            ok = v >= t if op == ">=" else v <= t
            target = f"{op} {t:g}  {'ok' if ok else 'MISSED'}"
        print(f"{key:38} {('%.4g' % v) if v is not None else 'n/a':>12}  {target}")
    if "inference" in results:
        inference.print_inference(results["inference"])
    if "streaming" in results:
        streaming.print_streaming(results["streaming"])
    corpus.print_corpus(results["corpus"])
    if "gpu" in results:
        print_gpu(results["gpu"])
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
