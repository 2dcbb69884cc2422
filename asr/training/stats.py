"""The training set's log-mel statistics, for feature normalisations a stream can compute (running, global)."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from asr.audio import load_audio
from asr.features import LogMel
from asr.manifest import Utterance

STATS_UTTERANCES = 500  # enough for a mean and deviation per bin; a few seconds of work


def drawn(utterances: list[Utterance], count: int = STATS_UTTERANCES, seed: int = 0) -> Iterator[torch.Tensor]:
    """The audio of ``count`` utterances drawn with ``seed`` (the same on every DDP rank, and again on resume)."""
    for i in sorted(np.random.default_rng(seed).permutation(len(utterances))[:count].tolist()):
        yield load_audio(utterances[i].audio_filepath, *utterances[i].span)


@torch.no_grad()
def feature_stats(waves: Iterable[torch.Tensor],
                  features: LogMel) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """Mean and standard deviation of each mel bin over every frame of ``waves`` (16 kHz ``(samples,)``), and
    how many waves they came from."""
    total = torch.zeros(features.config.n_mels, dtype=torch.float64)
    squares = torch.zeros_like(total)
    frames = used = 0
    for wave in waves:
        if wave.numel() < features.config.n_fft:
            continue
        feats = features.log_mel(wave[None])[0].double()  # (frames, n_mels)
        total += feats.sum(0)
        squares += (feats * feats).sum(0)
        frames += feats.shape[0]
        used += 1
    if frames == 0:
        raise ValueError("no training utterance long enough to measure feature statistics")
    mean = total / frames
    std = (squares / frames - mean * mean).clamp(min=1e-8).sqrt()
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std), used
