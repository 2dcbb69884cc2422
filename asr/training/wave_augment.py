"""Training-time augmentation of waveforms: speed, reverberation, microphone EQ, telephone band, noise, lossy
codecs, level and clipping: the speakers and channels a model meets outside its training data.

Applied by the training dataset (in the DataLoader workers) and never at evaluation or transcription.
SpecAugment, which works on features on the model's device, is in :mod:`asr.training.spec_augment`;
the signal processing itself is in :mod:`asr.corpora.dsp`.

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
from asr.corpora.dsp import (
    CODECS, add_noise, change_speed, codec, coloured_noise, equalize, gain, narrowband, reverberate, synthetic_rir,
    telephone,
)
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
    eq_prob: float = 0.0  # fraction given a random microphone-like EQ (high-pass, low-pass, peaking bands)
    telephone_prob: float = 0.0  # fraction band-limited to a telephone channel (300-3400 Hz, 8 kHz mu-law)
    # Fraction resampled to one of narrowband_rates (Hz) and back, half of them stored as 8-bit PCM on the way:
    # recordings with nothing above 4-5.5 kHz (the games' clips) read as well as wideband ones (recipes/games/RESULTS.md).
    narrowband_prob: float = 0.0
    narrowband_rates: tuple[int, ...] = (8000, 11025)
    codec_prob: float = 0.0  # fraction encoded and decoded with a lossy codec at a random compression
    codecs: tuple[str, ...] = ("mp3", "vorbis", "opus")
    compression: tuple[float, float] = (0.5, 0.99)  # libsndfile compression levels (asr.corpora.dsp.codec)
    gain_db: tuple[float, float] = (0.0, 0.0)  # level change range, dB, drawn for every utterance
    clip_prob: float = 0.0  # fraction clipped at 30-90 % of its peak (an overdriven input)
    # Silence around the speech, as a recording or a segmenter's cut leaves it: this fraction of utterances
    # gets pad_seconds (drawn for each side) of the utterance's own noise floor, or of digital silence.
    pad_prob: float = 0.0
    pad_seconds: tuple[float, float] = (0.05, 0.8)

    @property
    def active(self) -> bool:
        return (bool(self.speeds) or self.noise_prob > 0 or self.reverb_prob > 0 or self.eq_prob > 0
                or self.telephone_prob > 0 or self.narrowband_prob > 0 or self.codec_prob > 0 or self.gain_db != (0.0, 0.0) or self.clip_prob > 0
                or self.pad_prob > 0)


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


def edge_pads(config: WaveAugmentConfig, seed: int, epoch: int, index: int) -> tuple[float, float]:
    """Seconds of silence added before and after utterance ``index`` in ``epoch`` ((0, 0) when not drawn)."""
    if config.pad_prob <= 0:
        return 0.0, 0.0
    rng = item_rng(seed, epoch, index, "pad")
    if rng.random() >= config.pad_prob:
        return 0.0, 0.0
    return round(rng.uniform(*config.pad_seconds), 3), round(rng.uniform(*config.pad_seconds), 3)


def perturbed_duration(config: WaveAugmentConfig, duration: float, seed: int, epoch: int, index: int) -> float:
    """Seconds of utterance ``index`` as the model hears it in ``epoch``: the sampler buckets by this, so padding
    and ``max_batch_seconds`` hold for the augmented audio."""
    return duration / speed_factor(config.speeds, seed, epoch, index) + sum(edge_pads(config, seed, epoch, index))


def pad_edges(wave: torch.Tensor, before: float, after: float, generator: torch.Generator, floor: bool) -> torch.Tensor:
    """``wave`` with ``before`` and ``after`` seconds of silence: its noise floor (the RMS of its quietest 20 ms,
    as white noise) when ``floor``, else digital zeros, as a file cut from a longer one has."""
    frames = wave[: wave.numel() // 320 * 320].reshape(-1, 320)
    level = float(frames.pow(2).mean(dim=1).min().sqrt()) if floor and frames.numel() else 0.0
    pads = [level * torch.randn(int(round(s * SAMPLE_RATE)), generator=generator) for s in (before, after)]
    return torch.cat([pads[0], wave, pads[1]])


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
    """Applies a :class:`WaveAugmentConfig` to one utterance: speed, silence at the edges, reverberation, EQ or
    telephone band, noise, codec, level and clipping."""

    def __init__(self, config: WaveAugmentConfig, seed: int = 0):
        unknown = sorted(set(config.codecs) - set(CODECS))
        if unknown:
            raise AsrError(f"data.augment.codecs: unknown codec(s) {', '.join(unknown)}; known: {', '.join(CODECS)}")
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
        before, after = edge_pads(cfg, self.seed, epoch, index)
        if before or after:
            wave = pad_edges(wave, before, after, generator, floor=item_rng(self.seed, epoch, index, "floor").random() < 0.5)
        if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            if cfg.rir_dir:
                path, _ = rng.choice(_audio_files(cfg.rir_dir))
                rir = load_audio(path)
            else:
                rir = synthetic_rir(rng.uniform(*cfg.rt60), generator)
            wave = reverberate(wave, rir)
        # Each effect draws only when it is on, so turning one on leaves the others' draws as they were.
        if cfg.eq_prob > 0 and rng.random() < cfg.eq_prob:
            wave = equalize(wave, highpass_hz=rng.uniform(50, 300) if rng.random() < 0.7 else None,
                            lowpass_hz=rng.uniform(3000, 7500) if rng.random() < 0.4 else None,
                            peaks=tuple((rng.uniform(150, 6000), rng.uniform(-10, 10), rng.uniform(0.5, 2.5))
                                        for _ in range(rng.randint(0, 3))))
        if cfg.telephone_prob > 0 and rng.random() < cfg.telephone_prob:
            wave = telephone(wave)
        if cfg.narrowband_prob > 0 and rng.random() < cfg.narrowband_prob:
            wave = narrowband(wave, rng.choice(cfg.narrowband_rates), eight_bit=rng.random() < 0.5)
        if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
            wave = add_noise(wave, self._noise(wave.numel(), rng, generator), rng.uniform(*cfg.snr_db))
        if cfg.codec_prob > 0 and rng.random() < cfg.codec_prob:
            wave = codec(wave, rng.choice(cfg.codecs), rng.uniform(*cfg.compression))
        if cfg.gain_db != (0.0, 0.0) or cfg.clip_prob > 0:
            db = rng.uniform(*cfg.gain_db)
            clipped = cfg.clip_prob > 0 and rng.random() < cfg.clip_prob
            peak = float(wave.abs().max()) * 10 ** (db / 20) if wave.numel() else 0.0
            wave = gain(wave, db, peak * rng.uniform(0.3, 0.9) if clipped else None)
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
