"""The training set's log-mel statistics, for feature normalisations a stream can compute (running, global)."""

from __future__ import annotations

import numpy as np
import torch

from asr.audio import load_audio
from asr.features import LogMel
from asr.manifest import Utterance

STATS_UTTERANCES = 500  # enough for a mean and deviation per bin; a few seconds of work


@torch.no_grad()
def feature_stats(utterances: list[Utterance], features: LogMel, count: int = STATS_UTTERANCES,
                  seed: int = 0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation of each mel bin over every frame of ``count`` utterances drawn with ``seed``
    (the same on every DDP rank, and again on resume)."""
    order = np.random.default_rng(seed).permutation(len(utterances))[:count]
    total = torch.zeros(features.config.n_mels, dtype=torch.float64)
    squares = torch.zeros_like(total)
    frames = 0
    for i in sorted(order.tolist()):
        utt = utterances[i]
        wave = load_audio(utt.audio_filepath, *utt.span)
        if wave.numel() < features.config.n_fft:
            continue
        feats = features.log_mel(wave[None])[0].double()  # (frames, n_mels)
        total += feats.sum(0)
        squares += (feats * feats).sum(0)
        frames += feats.shape[0]
    if frames == 0:
        raise ValueError("no training utterance long enough to measure feature statistics")
    mean = total / frames
    std = (squares / frames - mean * mean).clamp(min=1e-8).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
