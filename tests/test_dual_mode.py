"""Dual-mode training: each batch read whole or in chunks drawn from the configured sets, and the training set's
feature statistics measured once, saved in the checkpoint and kept on resume and export."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from asr import checkpoint
from asr.audio import load_audio
from asr.features import FeatureConfig, LogMel
from asr.manifest import read_manifest
from asr.training.module import ASRModule, StreamingConfig
from asr.training.stats import drawn, feature_stats


def test_each_batch_is_read_whole_or_in_a_chunk_from_the_sets():
    torch.manual_seed(0)
    module = ASRModule(streaming=StreamingConfig(full_share=0.25, chunks=(0.32, 0.64), right=(0.0, 0.16)))
    draws = Counter(module._reading() for _ in range(2000))
    assert set(draws) == {(0, 0), (8, 0), (8, 4), (16, 0), (16, 4)}  # 40 ms output frames
    assert 0.2 < draws[(0, 0)] / 2000 < 0.3
    assert ASRModule()._reading() == (0, 0)  # no streaming config: always whole
    always = ASRModule(streaming=StreamingConfig(full_share=1.0))
    assert {always._reading() for _ in range(50)} == {(0, 0)}


def test_feature_statistics_are_every_frame_s_mean_and_deviation(speech_manifest):
    utts = read_manifest(speech_manifest)
    features = LogMel(FeatureConfig())
    mean, std, used = feature_stats(drawn(utts, count=100), features)
    assert used == len(utts)
    frames = torch.cat([features.log_mel(load_audio(u.audio_filepath)[None])[0] for u in utts])
    assert np.allclose(mean, frames.mean(0).numpy(), atol=1e-3)
    assert np.allclose(std, frames.std(0, unbiased=False).numpy(), atol=1e-3)
    assert feature_stats(drawn(utts, 3, seed=1), features) == feature_stats(drawn(utts, 3, seed=1), features)
    assert feature_stats(drawn(utts, 3, seed=1), features) != feature_stats(drawn(utts, 3, seed=2), features)


@pytest.mark.slow
def test_the_trained_model_carries_its_statistics(streaming_model):
    rec = checkpoint.load(streaming_model)
    config = rec.features.config
    assert config.normalize == "running" and len(config.stats_mean) == len(config.stats_std) == 80
    assert torch.equal(rec.features.stats_mean, torch.tensor(config.stats_mean))
    assert -15 < float(rec.features.stats_mean.mean()) < 5 and float(rec.features.stats_std.min()) > 0
