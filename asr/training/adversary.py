"""Speaker-adversarial training: a classifier guesses each frame's speaker from a hidden layer, and the gradient
it sends into the network is reversed, so the layers below learn to carry less of who speaks (domain-adversarial
training, Ganin & Lempitsky 2015; for speakers in ASR, Meng et al., "Speaker-invariant training via adversarial
learning", ICASSP 2018).

Why: the synthetic corpus's model learns voices rather than speech (a new voice costs 25+ WER points), and
test-time adaptation of its lowest layers alone recovers much of that; this asks those layers to be
speaker-independent while they learn. Training only: the classifier lives in the LightningModule, never in the
exported model. Written here because no library we use has it (a gradient-reversal layer is ten lines).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AdversaryConfig:
    weight: float = 0.0  # the reversed gradient's scale at the end of its ramp; 0 = off
    layer: int = 1  # the hidden state it reads: 0 = the convolutional front's output, k = the k-th BiLSTM layer's
    hidden: int = 256  # units of the classifier's one hidden layer


def reversal_scale(config: AdversaryConfig, progress: float) -> float:
    """The reversed gradient's scale at ``progress`` (0..1) through training: Ganin & Lempitsky's ramp
    ``weight * (2 / (1 + exp(-10 p)) - 1)``, so the classifier learns speakers before the network is pushed."""
    return config.weight * (2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0)


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.scale * grad, None


class SpeakerAdversary(nn.Module):
    """Per-frame speaker classifier behind a gradient-reversal layer."""

    def __init__(self, input_size: int, hidden: int, speakers: int):
        super().__init__()
        self.classify = nn.Sequential(nn.Linear(input_size, hidden), nn.ReLU(), nn.Linear(hidden, speakers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: ``(batch, frames, input_size)`` hidden states; lengths: ``(batch,)`` valid frames.
            speakers: ``(batch,)`` speaker indices, -1 where unknown (those utterances are left out).
            scale: the reversed gradient's scale (:func:`reversal_scale`).
        Returns:
            the mean cross-entropy over valid frames of known speakers (nats; 0 when there are none) and the
            fraction of those frames whose speaker it guessed.
        """
        logits = self.classify(_Reverse.apply(x, scale)).float()  # (batch, frames, speakers)
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        valid &= (speakers >= 0).to(x.device)[:, None]
        if not valid.any():
            zero = logits.sum() * 0.0  # keeps the graph, so every parameter still gets a (zero) gradient
            return zero, zero.detach()
        target = speakers.to(x.device)[:, None].expand(-1, x.shape[1])[valid]
        picked = logits[valid]
        loss = F.cross_entropy(picked, target)
        accuracy = (picked.argmax(-1) == target).float().mean()
        return loss, accuracy
