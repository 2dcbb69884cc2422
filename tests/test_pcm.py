"""Raw 16-bit PCM in pieces of any size (asr.pcm): the same samples as in one piece, at any rate."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from asr.pcm import PcmDecoder, pcm16_samples


def test_pieces_of_any_size_join_without_a_seam_and_odd_bytes_wait_for_the_next():
    samples = (np.random.default_rng(0).uniform(-0.9, 0.9, 1001) * 32767).astype("<i2")
    data = samples.tobytes()
    decode = PcmDecoder()
    out = [decode(data[i:i + 7]) for i in range(0, len(data), 7)]  # 7-byte pieces: every other one splits a sample
    assert not decode.half_sample
    assert np.array_equal(np.concatenate(out), samples / np.float32(32768.0))
    assert decode(b"\x01").size == 0 and decode.half_sample


@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_other_rates_are_resampled_as_one_piece_would_be(rate):
    wave = (0.5 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate) * 32767).astype("<i2")
    data = wave.tobytes()
    decode = PcmDecoder(rate)
    pieces = [decode(data[i:i + 1001]) for i in range(0, len(data), 1001)] + [decode(b"", last=True)]
    whole = soxr.resample(pcm16_samples(data), rate, 16000)
    got = np.concatenate(pieces)
    assert abs(got.size - whole.size) <= 1 and np.abs(got[:1000] - whole[:1000]).max() < 1e-3
