"""``make bench``: speed and padding of the demo-sized pipeline on this machine, written to ``exp/bench.json``.

Measured in one run:

- ``raw_step_audio_seconds_per_second``: the bare network's forward + CTC + backward + AdamW step on random
  features of one fixed batch shape (the ceiling the training loop can approach);
- ``train_audio_seconds_per_second``: ``asr train`` itself on the synthetic corpus (files, loading, features,
  SpecAugment, bucketing, Lightning), timed over steps after a warm-up;
- ``padding_fraction``: padded-but-empty audio in an epoch of the duration-bucketed batches;
- ``transcribe_rtf``: wall time / audio time of transcribing the synthetic test split (model already loaded);
- ``beam_lm_frames_per_second``: beam 50 with the demo's word LM and lexicon on one thread (when built).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from asr.features import FeatureConfig
from asr.manifest import read_manifest
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import Vocabulary
from asr.training.sampler import DurationBatchSampler

DEMO_CONFIG = Path("recipes/synthetic/config.yaml")


def demo_model_config() -> ModelConfig:
    cfg = yaml.safe_load(DEMO_CONFIG.read_text())["model"]["network"]
    return ModelConfig(**cfg)


def raw_step(cfg: ModelConfig, batch: int, seconds: float, steps: int, device: str = "cpu",
             dtype: torch.dtype | None = None) -> float:
    """Audio seconds per second of forward + CTC + backward + optimizer step on random ``(batch, frames, 80)``."""
    feats_cfg = FeatureConfig()
    model = BiLSTMCTC(cfg, feats_cfg.n_mels, len(Vocabulary())).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames = int(seconds * 1000 / feats_cfg.hop_ms)
    feats = torch.randn(batch, frames, feats_cfg.n_mels, device=device)
    lengths = torch.full((batch,), frames, dtype=torch.long, device=device)
    n_chars = int(seconds * 14)  # about the characters per second of the corpus' speech
    targets = torch.randint(1, len(Vocabulary()), (batch, n_chars), device=device)
    target_lengths = torch.full((batch,), n_chars, dtype=torch.long, device=device)

    def step():
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            log_probs, out_lengths = model(feats, lengths)
        loss = F.ctc_loss(log_probs.float().transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * seconds * steps / (time.perf_counter() - start)


# Dense bf16 tensor-core peak, TFLOP/s, from the vendors' data sheets (SXM parts); the fraction reached is
# reported only for GPUs listed here.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


def train_flops_per_audio_second(cfg: ModelConfig, n_mels: int = 80, vocab: int = 29) -> float:
    """Multiply-adds x 2 of one training step (forward + backward = 3 x forward) per second of audio.

    Counted by hand: the cuDNN LSTM kernels are invisible to torch's FLOP counter.
    """
    frames_in = 100.0  # 10 ms hop
    flops = 0.0
    freq, t, ch_in = n_mels, frames_in, 1
    for _ in range(1 if cfg.subsampling == 2 else 2):
        freq, t = (freq + 1) // 2, t / 2
        flops += 2 * 9 * ch_in * cfg.conv_channels * freq * t
        ch_in = cfg.conv_channels
    h = cfg.hidden_size
    inp = cfg.conv_channels * freq
    for _ in range(cfg.num_layers):
        flops += 2 * 2 * 4 * h * (inp + h) * t  # two directions, four gates
        inp = 2 * h
    flops += 2 * 2 * h * vocab * t
    return 3 * flops


def gpu_figures(steps: int = 20) -> dict:
    """fp32 and bf16 raw-step throughput of the demo, GPU-profile and LibriSpeech-GPU models on ``cuda:0``."""
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    out: dict = {"name": name, "peak_bf16_tflops": peak, "models": {}}
    # The GPU profile's model, and LibriSpeech's gpu.yaml stacked on it (as `make train PROFILE=gpu` does).
    profile = yaml.safe_load(Path("recipes/gpu.yaml").read_text())["model"]["network"]
    librispeech = yaml.safe_load(Path("recipes/librispeech/gpu.yaml").read_text())["model"]["network"]
    configs = {"demo": demo_model_config(), "gpu_profile": ModelConfig(**profile),
               "librispeech_gpu": ModelConfig(**{**profile, **librispeech})}
    for label, cfg in configs.items():
        row: dict = {"config": cfg.__dict__}
        for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            # 64 utterances of 15 s: a realistic GPU batch (960 padded seconds).
            audio_per_s = raw_step(cfg, 64, 15.0, steps, "cuda", dtype)
            tflops = audio_per_s * train_flops_per_audio_second(cfg) / 1e12
            row[precision] = {"audio_seconds_per_second": round(audio_per_s, 1), "tflops": round(tflops, 1),
                              "fraction_of_bf16_peak": round(tflops / peak, 4) if peak else None}
        out["models"][label] = row
    return out


def padding_fraction(manifest: Path, max_seconds: float, max_duration: float) -> float:
    durations = [u.duration for u in read_manifest(manifest, check_files=False) if u.duration <= max_duration]
    sampler = DurationBatchSampler(durations, max_seconds, shuffle=True, seed=0)
    real = padded = 0.0
    for batch in sampler:
        ds = [durations[i] for i in batch]
        real += sum(ds)
        padded += max(ds) * len(ds)
    return 1 - real / padded


def train_throughput(steps: int, warmup: int) -> tuple[float, float]:
    """``asr train`` with the demo config for ``warmup + steps`` steps; audio s/s over the last ``steps``, and
    the padding fraction of the batches it actually ran."""
    import pytorch_lightning as pl

    class Clock(pl.Callback):
        def __init__(self):
            self.audio = self.padded = 0.0
            self.start = None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx >= warmup:
                lengths = batch["wave_lengths"]
                self.audio += float(lengths.sum()) / 16000
                self.padded += float(lengths.max()) * len(lengths) / 16000
                self.end = time.perf_counter()

    clock = Clock()
    from asr.training.cli import train

    # Exactly what `asr train` runs, with its own root folder so the demo's model and checkpoints stay untouched.
    train(["--config", str(DEMO_CONFIG), "--trainer.max_steps", str(steps + warmup),
           "--trainer.limit_val_batches", "0", "--trainer.logger", "false", "--checkpoint.every_n_train_steps",
           str(10 * (steps + warmup)), "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir",
           "exp/bench"], callbacks=[clock])
    return clock.audio / (clock.end - clock.start), 1 - clock.audio / clock.padded


def transcribe_rtf(model_path: Path | None, manifest: Path) -> tuple[float, float]:
    from asr import checkpoint
    from asr.transcribe import Segment, Transcriber

    if model_path is not None and model_path.is_file():
        recognizer = checkpoint.load(model_path, "cpu")
    else:  # speed does not depend on the weights
        recognizer = checkpoint.build(checkpoint.asr_section(demo_model_config(), FeatureConfig(), Vocabulary()))
    utts = read_manifest(manifest)
    transcriber = Transcriber(recognizer)
    list(transcriber.transcribe([Segment(u.audio_filepath) for u in utts[:8]]))  # warm-up
    start = time.perf_counter()
    results = list(transcriber.transcribe([Segment(u.audio_filepath) for u in utts]))
    elapsed = time.perf_counter() - start
    audio = sum(r.duration for r in results)
    return elapsed / audio, audio


def beam_speed(model_path: Path, manifest: Path, decode_config: Path) -> float | None:
    if not (model_path.is_file() and decode_config.is_file()):
        return None
    from asr import checkpoint
    from asr.beam import BeamSearchDecoder, DecodeConfig
    from asr.tune import decode_all, dev_log_probs

    recognizer = checkpoint.load(model_path, "cpu")
    _, log_probs = dev_log_probs(recognizer, str(model_path), str(manifest))
    config = DecodeConfig.load(decode_config)
    decoder = BeamSearchDecoder(recognizer.vocab, config.lm, config.lexicon, config.beam)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # flashlight's decoder is single-threaded; keep torch from competing
    try:
        start = time.perf_counter()
        decode_all(decoder, log_probs)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return sum(lp.shape[0] for lp in log_probs) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.training.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/synthetic")
    parser.add_argument("--exp", default="exp/synthetic")
    parser.add_argument("--out", default="exp/bench.json")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU figures (no corpus needed)")
    parser.add_argument("--no-inference", action="store_true",
                        help="skip long recordings, ONNX and the server (asr.bench_inference)")
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
    cfg = demo_model_config()
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    max_seconds = demo["data"]["max_batch_seconds"]
    results: dict = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
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
        from asr import bench_inference

        results["inference"] = bench_inference.run_all(exp / "model.pt", data / "test.jsonl", exp)
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
        print_inference(results["inference"])
    if "gpu" in results:
        print_gpu(results["gpu"])
    print(f"written to {out}")
    return 0


def print_inference(inf: dict) -> None:
    for name, r in inf["long_audio"].items():
        whole = f", {100 * r['wer_pieces_read_whole']:.2f} % in <= 12 s pieces" if "wer_pieces_read_whole" in r else ""
        print(f"{name:38} {r['audio_seconds'] / 60:.0f} min in {r['wall_seconds']:.1f} s: RTF {r['rtf']:.4f} "
              f"(<= 0.01), peak {r['peak_rss_mb']} MB (<= 1500), {r['segments']} segments, WER "
              f"{100 * r['wer']:.2f} % vs {100 * r['wer_one_by_one']:.2f} % one by one{whole}")
    o = inf["onnx"]
    print(f"{'onnx':38} WER pytorch {100 * o['pytorch']['wer']:.2f} %, fp32 {100 * o['onnx_fp32']['wer']:.2f} %, "
          f"int8 {100 * o['onnx_int8']['wer']:.2f} %; RTF {o['pytorch']['rtf']:.4f} / {o['onnx_fp32']['rtf']:.4f} / "
          f"{o['onnx_int8']['rtf']:.4f}: int8 {o['int8_speedup_vs_pytorch']:.2f} x PyTorch (>= 1.5); network alone "
          f"{o['pytorch']['network_rtf']:.4f} / {o['onnx_fp32']['network_rtf']:.4f} / {o['onnx_int8']['network_rtf']:.4f}: "
          f"int8 {o['int8_network_speedup_vs_pytorch']:.2f} x")
    s = inf["server"]
    load = s["load"]
    print(f"{'server, 8 clients x 25 requests':38} {load['errors']} errors, {load['throughput_audio_seconds_per_second']} "
          f"audio s/s = {load['speedup']} x one at a time (>= 3), p50 {load['p50_latency_s']} s, "
          f"p95 {load['p95_latency_s']} s")
    sd = s["short_during_long"]
    print(f"{'server, 3 s during a 10-minute file':38} {sd['latency_s']} s (< 2 s)")
    ov = s["overload"]
    print(f"{'server, 64 clients, queue 16':38} {ov['ok']} ok, {ov['rejected_429']} x 429 (Retry-After: "
          f"{ov['retry_after_on_every_429']}), {ov['server_errors_5xx']} x 5xx; peak {s['server_peak_rss_mb']} MB")


def print_gpu(gpu: dict) -> None:
    print(f"{gpu['name']} (bf16 peak {gpu['peak_bf16_tflops']} TFLOP/s): raw training step, batch 64 x 15 s")
    print(f"{'model':16} {'precision':9} {'audio s/s':>10} {'TFLOP/s':>8} {'of peak':>8}")
    for label, row in gpu["models"].items():
        for precision in ("fp32", "bf16"):
            r = row[precision]
            frac = f"{100 * r['fraction_of_bf16_peak']:.1f} %" if r["fraction_of_bf16_peak"] is not None else "n/a"
            print(f"{label:16} {precision:9} {r['audio_seconds_per_second']:10.0f} {r['tflops']:8.1f} {frac:>8}")


if __name__ == "__main__":
    raise SystemExit(main())
