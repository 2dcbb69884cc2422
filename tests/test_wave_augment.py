"""Waveform augmentation: speed, noise at a known SNR, reverberation; reproducible per (seed, epoch, index)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE
from asr.manifest import read_manifest
from asr.training.dataset import UtteranceDataset
from asr.errors import AsrError
from asr.corpora.dsp import (
    add_noise, change_speed, codec, coloured_noise, equalize, narrowband, gain, reverberate, synthetic_rir, telephone,
)
from asr.training.wave_augment import WaveAugment, WaveAugmentConfig, speed_factor


def sine(seconds=1.0, freq=440.0):
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return 0.5 * torch.sin(2 * torch.pi * freq * t)


def dominant_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * SAMPLE_RATE / wave.numel()


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_length_and_pitch_by_the_factor(factor):
    out = change_speed(sine(), factor)
    assert abs(out.numel() - SAMPLE_RATE / factor) <= 2
    assert dominant_hz(out) == pytest.approx(440 * factor, rel=0.01)


def test_noise_is_mixed_at_the_requested_snr():
    g = torch.Generator().manual_seed(0)
    clean = sine()
    for exponent in (0.0, 1.0, 2.0):
        noise = coloured_noise(clean.numel(), exponent, g)
        noisy = add_noise(clean, noise, 10.0)
        snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
        assert float(snr) == pytest.approx(10.0, abs=0.01)
    assert torch.equal(add_noise(torch.zeros(100), torch.ones(100), 10.0), torch.zeros(100))


def test_pink_and_brown_noise_tilt_towards_low_frequencies():
    g = torch.Generator().manual_seed(0)
    power = []
    for exponent in (0.0, 1.0, 2.0):
        spectrum = torch.fft.rfft(coloured_noise(SAMPLE_RATE, exponent, g)).abs().pow(2)
        power.append(float(spectrum[:800].sum() / spectrum.sum()))  # share below 800 Hz
    assert power[0] < power[1] < power[2]


def test_reverberation_keeps_length_alignment_and_level():
    g = torch.Generator().manual_seed(0)
    click = torch.zeros(SAMPLE_RATE)
    click[1000] = 1.0
    rir = synthetic_rir(0.5, g)
    wet = reverberate(click, rir)
    assert wet.numel() == click.numel()
    assert int(wet.abs().argmax()) == 1000  # the direct path stays where the speech was
    assert wet[1100:].abs().sum() > 0  # and a tail follows
    speech_like = sine()
    assert float(reverberate(speech_like, rir).pow(2).mean()) == pytest.approx(float(speech_like.pow(2).mean()))


def test_augment_is_reproducible_per_epoch_and_index_and_differs_across_epochs():
    aug = WaveAugment(WaveAugmentConfig(speeds=(0.9, 1.0, 1.1), noise_prob=1.0, reverb_prob=0.5), seed=3)
    wave = sine()
    assert torch.equal(aug(wave, 1, 7), aug(wave, 1, 7))
    outs = {tuple(aug(wave, epoch, 7)[:50].tolist()) for epoch in range(6)}
    assert len(outs) > 1
    factors = {speed_factor((0.9, 1.0, 1.1), 3, e, i) for e in range(5) for i in range(20)}
    assert factors == {0.9, 1.0, 1.1}


def test_noise_and_rirs_from_folders(tmp_path):
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    sf.write(noise_dir / "hum.wav", (0.1 * np.random.default_rng(0).standard_normal(4000)).astype("float32"),
             SAMPLE_RATE)  # shorter than the speech: looped
    rir_dir = tmp_path / "rirs"
    rir_dir.mkdir()
    rir = np.zeros(800, dtype="float32")
    rir[0], rir[400] = 1.0, 0.5
    sf.write(rir_dir / "room.wav", rir, SAMPLE_RATE)
    aug = WaveAugment(WaveAugmentConfig(noise_prob=1.0, noise_dir=str(noise_dir), snr_db=(20.0, 20.0),
                                        reverb_prob=1.0, rir_dir=str(rir_dir)))
    out = aug(sine(), 0, 0)
    assert out.shape == sine().shape and not torch.equal(out, sine())
    with pytest.raises(AsrError, match="augmentation folder not found"):
        WaveAugment(WaveAugmentConfig(noise_prob=0.5, noise_dir=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not audio")
    with pytest.raises(AsrError, match="no audio files"):
        WaveAugment(WaveAugmentConfig(reverb_prob=0.5, rir_dir=str(tmp_path / "empty")))


def test_dataset_applies_augmentation_only_when_given(speech_manifest):
    utts = read_manifest(speech_manifest)
    plain = UtteranceDataset(utts)
    augmented = UtteranceDataset(utts, augment=WaveAugment(WaveAugmentConfig(speeds=(1.1,))))
    wave, tokens = plain[0]
    fast, same_tokens = augmented[0]
    assert torch.equal(tokens, same_tokens)
    assert abs(fast.numel() - wave.numel() / 1.1) <= 2


def band_power(wave: torch.Tensor, low: float, high: float) -> float:
    spectrum = torch.fft.rfft(wave).abs().pow(2)
    hz = torch.fft.rfftfreq(wave.numel(), 1 / SAMPLE_RATE)
    return float(spectrum[(hz >= low) & (hz < high)].sum() / spectrum.sum())


def test_telephone_removes_what_a_phone_line_cannot_carry():
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * coloured_noise(SAMPLE_RATE, 0.0, g)
    phoned = telephone(noise)
    assert phoned.numel() == noise.numel()
    assert band_power(noise, 4000, 8000) > 0.4 and band_power(phoned, 4000, 8000) < 0.01
    assert band_power(phoned, 300, 3400) > 0.9


def test_equalizer_cuts_and_boosts_where_asked():
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * coloured_noise(SAMPLE_RATE, 0.0, g)
    assert band_power(equalize(noise, highpass_hz=300.0), 0, 100) < 0.2 * band_power(noise, 0, 100)
    assert band_power(equalize(noise, lowpass_hz=3000.0), 6000, 8000) < 0.1 * band_power(noise, 6000, 8000)
    boosted = equalize(noise, peaks=((1000.0, 12.0, 2.0),))
    assert band_power(boosted, 900, 1100) > 3 * band_power(noise, 900, 1100)


@pytest.mark.parametrize("name", ["mp3", "vorbis", "opus"])
def test_codecs_keep_length_and_roughly_the_signal(name):
    clean = sine()
    coded = codec(clean, name, 0.9)
    assert coded.shape == clean.shape and not torch.equal(coded, clean)
    assert dominant_hz(coded) == pytest.approx(440, rel=0.02)


def test_gain_and_clipping():
    assert float(gain(sine(), 6.0).abs().max()) == pytest.approx(0.5 * 10 ** (6 / 20), rel=1e-3)
    assert float(gain(sine(), 0.0, clip=0.2).abs().max()) == pytest.approx(0.2)


def test_channel_effects_are_reproducible_and_each_draws_only_when_on():
    cfg = WaveAugmentConfig(noise_prob=1.0, reverb_prob=0.5)
    channel = WaveAugmentConfig(noise_prob=1.0, reverb_prob=0.5, eq_prob=1.0, telephone_prob=0.3, codec_prob=1.0,
                                gain_db=(-6.0, 6.0), clip_prob=0.5)
    wave = sine()
    full = WaveAugment(channel, seed=3)
    assert torch.equal(full(wave, 2, 5), full(wave, 2, 5))
    assert not torch.equal(full(wave, 2, 5), WaveAugment(cfg, seed=3)(wave, 2, 5))
    # With the new effects off, a config augments exactly as before they existed.
    off = WaveAugmentConfig(noise_prob=1.0, reverb_prob=0.5, codecs=("mp3",))
    assert torch.equal(WaveAugment(off, seed=3)(wave, 2, 5), WaveAugment(cfg, seed=3)(wave, 2, 5))
    with pytest.raises(AsrError, match="unknown codec"):
        WaveAugment(WaveAugmentConfig(codec_prob=0.5, codecs=("wma",)))


def test_edge_padding_adds_the_drawn_silence_and_the_sampler_knows_it():
    from asr.training.sampler import DurationBatchSampler
    from asr.training.wave_augment import edge_pads, perturbed_duration

    cfg = WaveAugmentConfig(pad_prob=1.0, pad_seconds=(0.2, 0.5))
    aug = WaveAugment(cfg, seed=3)
    wave = sine() + 0.01 * torch.randn(SAMPLE_RATE, generator=torch.Generator().manual_seed(0))
    before, after = edge_pads(cfg, 3, 2, 7)
    assert 0.2 <= before <= 0.5 and 0.2 <= after <= 0.5
    out = aug(wave, 2, 7)
    assert out.numel() == wave.numel() + round(before * SAMPLE_RATE) + round(after * SAMPLE_RATE)
    head = out[: round(before * SAMPLE_RATE)]
    assert float(head.abs().max()) < 0.1  # silence (or the file's own noise floor), not speech
    assert torch.equal(out, aug(wave, 2, 7))
    assert perturbed_duration(cfg, 1.0, 3, 2, 7) == pytest.approx(1.0 + before + after)
    durations = [1.0 + 0.1 * i for i in range(40)]
    sampler = DurationBatchSampler(durations, 10.0, seed=3, augment=cfg)
    sampler.set_epoch(2)
    heard = [perturbed_duration(cfg, d, 3, 2, i) for i, d in enumerate(durations)]
    assert all(max(heard[i] for i in b) * len(b) <= 10.0 or len(b) == 1 for b in sampler)
    assert edge_pads(WaveAugmentConfig(), 3, 2, 7) == (0.0, 0.0)


@pytest.mark.parametrize("rate", [8000, 11025])
def test_narrowband_keeps_nothing_above_half_its_rate_and_eight_bits_add_a_floor(rate):
    g = torch.Generator().manual_seed(0)
    noise = 0.1 * coloured_noise(SAMPLE_RATE, 0.0, g)
    narrow = narrowband(noise, rate)
    assert narrow.numel() == noise.numel()
    assert band_power(noise, rate / 2 + 200, 8000) > 0.1 and band_power(narrow, rate / 2 + 200, 8000) < 0.005
    silence = torch.zeros(SAMPLE_RATE)
    quiet = 1e-3 * torch.sin(torch.arange(SAMPLE_RATE) * 2 * torch.pi * 440 / SAMPLE_RATE)
    assert narrowband(silence, rate, eight_bit=True).abs().max() == 0  # no signal, no floor
    error = narrowband(quiet, rate, eight_bit=True) - narrowband(quiet, rate)
    assert error.abs().max() > 5e-4  # the 1/256 steps swallow a signal this quiet
