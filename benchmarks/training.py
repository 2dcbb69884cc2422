"""Training benchmarks (``make bench``, :mod:`benchmarks.run`): speed and padding of the demo-sized pipeline.


- ``raw_step_audio_seconds_per_second``: the bare network's forward + CTC + backward + AdamW step on random
  features of one fixed batch shape (the ceiling the training loop can approach);
- ``train_audio_seconds_per_second``: ``asr train`` itself on the synthetic corpus (files, loading, features,
  SpecAugment, bucketing, Lightning), timed over steps after a warm-up;
- ``padding_fraction``: padded-but-empty audio in an epoch of the duration-bucketed batches;
- ``transcribe_rtf``: wall time / audio time of transcribing the synthetic test split (model already loaded);
- ``beam_lm_frames_per_second``: beam 50 with the demo's word LM and lexicon on one thread (when built).
"""

from __future__ import annotations

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
    from asr.transcribe import Transcriber
    from asr.windows import Span

    if model_path is not None and model_path.is_file():
        recognizer = checkpoint.load(model_path, "cpu")
    else:  # speed does not depend on the weights
        recognizer = checkpoint.build(checkpoint.asr_section(demo_model_config(), FeatureConfig(), Vocabulary()))
    utts = read_manifest(manifest)
    transcriber = Transcriber(recognizer)
    list(transcriber.transcribe([Span(u.audio_filepath) for u in utts[:8]]))  # warm-up
    start = time.perf_counter()
    results = list(transcriber.transcribe([Span(u.audio_filepath) for u in utts]))
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


def print_gpu(gpu: dict) -> None:
    print(f"{gpu['name']} (bf16 peak {gpu['peak_bf16_tflops']} TFLOP/s): raw training step, batch 64 x 15 s")
    print(f"{'model':16} {'precision':9} {'audio s/s':>10} {'TFLOP/s':>8} {'of peak':>8}")
    for label, row in gpu["models"].items():
        for precision in ("fp32", "bf16"):
            r = row[precision]
            frac = f"{100 * r['fraction_of_bf16_peak']:.1f} %" if r["fraction_of_bf16_peak"] is not None else "n/a"
            print(f"{label:16} {precision:9} {r['audio_seconds_per_second']:10.0f} {r['tflops']:8.1f} {frac:>8}")
