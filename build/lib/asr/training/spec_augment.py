"""Training-time augmentation of features: SpecAugment and the VTLP warp factors. Never applied at evaluation or
transcription."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2  # number of frequency masks per utterance
    freq_width: int = 15  # maximum width of each, in mel bins
    time_masks: int = 2  # number of time masks per utterance
    time_width: float = 0.05  # maximum width of each, as a fraction of the utterance's frames
    # VTLP: each utterance's frequency axis is warped by a factor drawn from this range before the mel
    # filterbank (new vocal tract lengths from the same voices); (1.0, 1.0) = off.
    vtlp: tuple[float, float] = (1.0, 1.0)


def vtlp_factors(batch: int, config: SpecAugmentConfig, device: torch.device | str) -> torch.Tensor | None:
    """``(batch,)`` warp factors drawn uniformly from ``config.vtlp`` (torch's generator), or None when off."""
    low, high = config.vtlp
    if low == high == 1.0:
        return None
    return low + (high - low) * torch.rand(batch, device=device)


class SpecAugment(nn.Module):
    """Masks random mel bands and time spans of each utterance with zeros (the normalised mean).

    Works on ``(batch, frames, n_mels)`` features with ``(batch,)`` frame counts; each utterance gets its own
    masks, and time masks scale with its own length so short utterances are not wiped out.
    """

    def __init__(self, config: SpecAugmentConfig = SpecAugmentConfig()):
        super().__init__()
        self.config = config

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return feats
        cfg = self.config
        batch, frames, bins = feats.shape
        device = feats.device
        keep = torch.ones(batch, frames, bins, dtype=torch.bool, device=device)
        freq = torch.arange(bins, device=device)[None, :]
        for _ in range(cfg.freq_masks):
            width = torch.randint(0, cfg.freq_width + 1, (batch, 1), device=device)
            start = (torch.rand(batch, 1, device=device) * (bins - width).clamp(min=1)).long()
            keep &= ~((freq >= start) & (freq < start + width))[:, None, :]
        time = torch.arange(frames, device=device)[None, :]
        max_width = (lengths.to(device).float() * cfg.time_width).long().clamp(min=0)[:, None]
        for _ in range(cfg.time_masks):
            width = (torch.rand(batch, 1, device=device) * (max_width + 1)).long()
            start = (torch.rand(batch, 1, device=device) * (lengths.to(device)[:, None] - width).clamp(min=1)).long()
            keep &= ~((time >= start) & (time < start + width))[:, :, None]
        return feats * keep
