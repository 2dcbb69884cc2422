"""Training-time augmentation of waveforms: speed perturbation, additive noise, reverberation.

Applied by the training dataset (in the DataLoader workers) and never at evaluation or transcription.
SpecAugment, which works on features on the model's device, is in :mod:`asr.training.spec_augment`;
the signal processing itself is in :mod:`asr.dsp`.

Every random choice for an utterance comes from a generator seeded by ``(seed, epoch, index)``, not from the
worker's global RNG: the same epoch sees the same augmented audio whatever the number of workers, and a run
resumed mid-epoch sees exactly what the interrupted run would have seen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from asr.audio import AUDIO_SUFFIXES, SAMPLE_RATE, audio_duration, load_audio
from asr.dsp import add_noise, change_speed, coloured_noise, reverberate, synthetic_rir
from asr.errors import AsrError


@dataclass(frozen=True)
class WaveAugmentConfig:
    speeds: tuple[float, ...] = ()  # speed factors drawn uniformly per utterance, e.g. (0.9, 1.0, 1.1); () = off
    noise_prob: float = 0.0  # fraction of utterances that get additive noise
    noise_dir: str | None = None  # folder of noise recordings (searched recursively); None = generated noise
    snr_db: tuple[float, float] = (5.0, 30.0)  # signal-to-noise ratio range, dB, drawn uniformly
    reverb_prob: float = 0.0  # fraction of utterances convolved with a room impulse response
    rir_dir: str | None = None  # folder of impulse responses; None = synthetic exponentially decaying ones
    rt60: tuple[float, float] = (0.2, 0.8)  # reverberation time range of the synthetic responses, seconds

    @property
    def active(self) -> bool:
        return bool(self.speeds) or self.noise_prob > 0 or self.reverb_prob > 0


def item_rng(seed: int, epoch: int, index: int, stream: str) -> random.Random:
    """A generator for one utterance in one epoch; ``stream`` separates independent uses.

    String seeds are hashed with SHA-512 by :class:`random.Random`: the same in every process and run.
    """
    return random.Random(f"asr/{seed}/{epoch}/{index}/{stream}")


def speed_factor(speeds: tuple[float, ...], seed: int, epoch: int, index: int) -> float:
    """The speed factor of utterance ``index`` in ``epoch``: the sampler uses it to bucket by the perturbed
    duration (duration / factor), the dataset to resample, so both agree without talking to each other."""
    if not speeds:
        return 1.0
    return item_rng(seed, epoch, index, "speed").choice(speeds)


@lru_cache(maxsize=8)
def _audio_files(folder: str) -> tuple[tuple[str, float], ...]:
    root = Path(folder)
    if not root.is_dir():
        raise AsrError(f"{folder}: augmentation folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise AsrError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) for augmentation")
    return tuple((str(p), audio_duration(p)) for p in files)


class WaveAugment:
    """Applies a :class:`WaveAugmentConfig` to one utterance: speed, then reverberation, then noise."""

    def __init__(self, config: WaveAugmentConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        # Listing the folders now, in the main process, reports a wrong path before any worker starts.
        if config.noise_prob > 0 and config.noise_dir:
            _audio_files(config.noise_dir)
        if config.reverb_prob > 0 and config.rir_dir:
            _audio_files(config.rir_dir)

    def __call__(self, wave: torch.Tensor, epoch: int, index: int) -> torch.Tensor:
        """``(samples,)`` 16 kHz audio of utterance ``index`` -> its augmented version for ``epoch``."""
        cfg = self.config
        wave = change_speed(wave, speed_factor(cfg.speeds, self.seed, epoch, index))
        rng = item_rng(self.seed, epoch, index, "wave")
        generator = torch.Generator().manual_seed(rng.getrandbits(63))
        if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            if cfg.rir_dir:
                path, _ = rng.choice(_audio_files(cfg.rir_dir))
                rir = load_audio(path)
            else:
                rir = synthetic_rir(rng.uniform(*cfg.rt60), generator)
            wave = reverberate(wave, rir)
        if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
            wave = add_noise(wave, self._noise(wave.numel(), rng, generator), rng.uniform(*cfg.snr_db))
        return wave

    def _noise(self, samples: int, rng: random.Random, generator: torch.Generator) -> torch.Tensor:
        if not self.config.noise_dir:
            return coloured_noise(samples, rng.choice((0.0, 1.0, 2.0)), generator)
        path, duration = rng.choice(_audio_files(self.config.noise_dir))
        seconds = samples / SAMPLE_RATE
        offset = rng.uniform(0, max(duration - seconds, 0.0))
        noise = load_audio(path, offset=offset, duration=min(seconds, duration))
        if noise.numel() == 0:
            return coloured_noise(samples, 0.0, generator)
        repeats = -(-samples // noise.numel())  # loop a short recording
        return noise.repeat(repeats)[:samples]
