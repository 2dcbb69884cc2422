"""Signal processing shared by training augmentation and corpus synthesis: speed, noise, reverberation.

Plain functions on ``(samples,)`` float tensors at 16 kHz; randomness comes from the generator passed in, so
callers decide how draws are seeded (per utterance and epoch in training, per item in the synthetic corpus).
"""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

from asr.audio import SAMPLE_RATE


def change_speed(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``(samples,)`` audio ``factor`` times faster (tempo and pitch, as Kaldi's and sox's ``speed``).

    Resampling from ``factor * 16 kHz`` to 16 kHz: 0.9 and 1.1 give the small ratios 9:10 and 11:10.
    """
    if factor == 1.0:
        return wave
    orig = int(round(SAMPLE_RATE * factor))
    g = math.gcd(orig, SAMPLE_RATE)
    return AF.resample(wave, orig // g, SAMPLE_RATE // g)


def coloured_noise(samples: int, exponent: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS, ``(samples,)``."""
    white = torch.randn(samples, generator=generator)
    if exponent == 0 or samples < 2:
        return white / white.std().clamp(min=1e-8)
    spectrum = torch.fft.rfft(white)
    f = torch.arange(spectrum.numel(), dtype=torch.float32)
    f[0] = 1.0
    noise = torch.fft.irfft(spectrum / f ** (exponent / 2), n=samples)
    noise = noise - noise.mean()
    return noise / noise.std().clamp(min=1e-8)


def add_noise(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """Mix ``noise`` (same length) into ``wave`` so that signal power / noise power = ``snr_db``."""
    signal_power = wave.pow(2).mean()
    noise_power = noise.pow(2).mean().clamp(min=1e-12)
    if signal_power <= 0:  # silence: keep it silent rather than inventing a level
        return wave
    scale = torch.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return wave + scale * noise


def synthetic_rir(rt60: float, generator: torch.Generator, seconds: float | None = None) -> torch.Tensor:
    """A room impulse response: a direct path, then noise decaying by 60 dB in ``rt60`` seconds, ``(samples,)``."""
    n = int(SAMPLE_RATE * (seconds or min(rt60, 1.0)))
    t = torch.arange(n, dtype=torch.float32) / SAMPLE_RATE
    tail = torch.randn(n, generator=generator) * torch.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: -60 dB
    tail[0] = 0.0
    rir = tail * 0.3
    rir[0] = 1.0  # direct sound first, so the reverberant speech stays aligned with the transcript
    return rir


def reverberate(wave: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve ``(samples,)`` audio with an impulse response, aligned on its strongest tap, same length and RMS."""
    peak = int(rir.abs().argmax())
    rir = rir[peak:] / rir[peak].abs().clamp(min=1e-8)
    wet = AF.fftconvolve(wave, rir)[: wave.numel()]
    rms_in, rms_out = wave.pow(2).mean().sqrt(), wet.pow(2).mean().sqrt()
    return wet * (rms_in / rms_out) if rms_out > 0 else wet


def equalize(wave: torch.Tensor, highpass_hz: float | None = None, lowpass_hz: float | None = None,
             peaks: tuple[tuple[float, float, float], ...] = ()) -> torch.Tensor:
    """A microphone's or a room's colouring of ``(samples,)`` audio: an optional high-pass (small membranes,
    rumble filters) and low-pass (cheap capsules) at the given corner frequencies (Hz), and peaking bands
    ``(centre Hz, gain dB, Q)``. Biquad filters, as in sox and torchaudio."""
    if highpass_hz:
        wave = AF.highpass_biquad(wave, SAMPLE_RATE, highpass_hz)
    if lowpass_hz:
        wave = AF.lowpass_biquad(wave, SAMPLE_RATE, lowpass_hz)
    for centre, gain, q in peaks:
        wave = AF.equalizer_biquad(wave, SAMPLE_RATE, centre, gain, q)
    return wave


def telephone(wave: torch.Tensor) -> torch.Tensor:
    """A narrow-band telephone channel: 300-3400 Hz through 8 kHz sampling and 8-bit mu-law (G.711)."""
    narrow = AF.resample(AF.highpass_biquad(wave, SAMPLE_RATE, 300.0), SAMPLE_RATE, 8000)
    narrow = AF.mu_law_decoding(AF.mu_law_encoding(narrow.clamp(-1, 1), 256), 256)
    return AF.resample(narrow, 8000, SAMPLE_RATE)[: wave.numel()]


def narrowband(wave: torch.Tensor, rate: int, eight_bit: bool = False) -> torch.Tensor:
    """``(samples,)`` 16 kHz audio as an older recording carries it: sampled at ``rate`` Hz (8000 or 11025: no
    sound above ``rate / 2``) and, when ``eight_bit``, stored as unsigned 8-bit linear PCM (a 48 dB noise floor
    that follows no signal: the games' clips, recipes/games/RESULTS.md), then back at 16 kHz, same length."""
    g = math.gcd(rate, SAMPLE_RATE)
    narrow = AF.resample(wave, SAMPLE_RATE // g, rate // g)
    if eight_bit:
        narrow = torch.round(narrow.clamp(-1, 127 / 128) * 128) / 128
    out = AF.resample(narrow, rate // g, SAMPLE_RATE // g)
    if out.numel() < wave.numel():
        out = torch.nn.functional.pad(out, (0, wave.numel() - out.numel()))
    return out[: wave.numel()]


CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "vorbis": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS")}


def codec(wave: torch.Tensor, name: str, compression: float) -> torch.Tensor:
    """``(samples,)`` audio encoded with a lossy codec and decoded again, in memory, through libsndfile.

    ``compression`` is libsndfile's level in [0, 1), 1 the strongest: at 16 kHz about 50 -> 20 kbit/s for mp3,
    80 -> 40 for vorbis, 260 -> 10 for opus (measured on noise; speech needs fewer bits).
    """
    import io

    import soundfile as sf

    fmt, subtype = CODECS[name]
    buffer = io.BytesIO()
    sf.write(buffer, wave.clamp(-1, 1).numpy(), SAMPLE_RATE, format=fmt, subtype=subtype,
             compression_level=min(max(compression, 0.0), 0.99))
    buffer.seek(0)
    decoded = torch.from_numpy(sf.read(buffer, dtype="float32")[0])
    if decoded.numel() < wave.numel():  # codecs work in frames: keep the length exactly
        decoded = torch.nn.functional.pad(decoded, (0, wave.numel() - decoded.numel()))
    return decoded[: wave.numel()]


def gain(wave: torch.Tensor, db: float, clip: float | None = None) -> torch.Tensor:
    """Scale by ``db`` decibels, then (when ``clip`` is given) clip at +-``clip``, as an overdriven input does."""
    wave = wave * 10 ** (db / 20)
    return wave.clamp(-clip, clip) if clip is not None else wave
