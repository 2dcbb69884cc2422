"""Waveforms -> normalised log-mel features, in batch on whatever device the module lives on.

The extractor is an ``nn.Module`` so that training on a GPU computes features there too, and so that the
same code serves training and transcription.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio
from torch import nn

from asr.audio import SAMPLE_RATE


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE  # Hz of the input waveforms
    n_mels: int = 80  # mel bins
    win_ms: float = 25.0  # analysis window, milliseconds
    hop_ms: float = 10.0  # frame shift, milliseconds
    # FFT size in samples (>= window). 400 = the 25 ms window itself, as Whisper: torchaudio's mel spectrogram
    # of a 16 x 2.5 s batch takes 4.4 ms at 400 against 8.2 ms at 512 on this CPU (measured).
    n_fft: int = 400
    normalize: str = "per_feature"  # "per_feature" (mean/std of each bin per utterance) or "none"

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames for waveforms of ``num_samples`` samples: whole FFT frames only, and at least one."""
        return torch.div((num_samples - self.n_fft).clamp(min=0), self.hop_length, rounding_mode="floor") + 1


class LogMel(nn.Module):
    """``(batch, samples)`` waveforms -> ``(batch, frames, n_mels)`` log-mel features."""

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        if config.normalize not in ("per_feature", "none"):
            raise ValueError(f"features.normalize must be 'per_feature' or 'none', not {config.normalize!r}")
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            power=2.0,
            # Frames lie wholly inside the signal (no centring pad), so zero-padding a waveform in a batch
            # never changes its features: training batches and single-file transcription see the same input.
            center=False,
        )

    @torch.no_grad()
    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                warp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            waves: ``(batch, samples)`` float waveforms, zero-padded.
            lengths: ``(batch,)`` valid samples per waveform.
            warp: ``(batch,)`` VTLP factors (training only): each utterance's frequency axis is warped by its
                factor before the mel filterbank (see :func:`warped_filterbanks`); None = no warp.
        Returns:
            features ``(batch, frames, n_mels)`` with padding frames set to 0, and ``(batch,)`` frame counts.
        """
        # Features stay in fp32 even under autocast: log of small powers underflows in half precision.
        if waves.shape[-1] < self.config.n_fft:  # shorter than one frame: pad so it still gives one
            waves = torch.nn.functional.pad(waves, (0, self.config.n_fft - waves.shape[-1]))
        with torch.autocast(device_type=waves.device.type, enabled=False):
            if warp is None:
                spec = self.mel(waves.float())  # (batch, n_mels, frames)
            else:
                power = self.mel.spectrogram(waves.float())  # (batch, n_freq, frames)
                banks = warped_filterbanks(self.mel.mel_scale.fb, warp.to(power.device, power.dtype))
                spec = torch.einsum("bft,bfm->bmt", power, banks)
            feats = torch.log(spec + 1e-6).transpose(1, 2)  # (batch, frames, n_mels)
        frames = self.config.num_frames(lengths).clamp(max=feats.shape[1])
        return normalize(feats, frames, self.config.normalize), frames


def normalize(feats: torch.Tensor, frames: torch.Tensor, mode: str) -> torch.Tensor:
    """Normalise log-mel features and zero their padding (the same arithmetic in training, transcription and the
    exported ONNX graph).

    Args:
        feats: ``(batch, frames, n_mels)`` log-mel features; frames: ``(batch,)`` valid frames of each.
        mode: ``per_feature`` (each mel bin to zero mean, unit variance over the utterance's valid frames) or
            ``none``.
    Returns:
        ``(batch, frames, n_mels)``, zero past each utterance's end.
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]).unsqueeze(-1)
    mask = mask.to(feats.dtype)
    if mode == "per_feature":
        count = frames.clamp(min=1).to(feats.dtype)[:, None, None]
        mean = (feats * mask).sum(1, keepdim=True) / count
        var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
        feats = (feats - mean) / (var.sqrt() + 1e-5)
    return feats * mask


def warped_filterbanks(fb: torch.Tensor, alpha: torch.Tensor, boundary: float = 0.8) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly & Hinton, 2013): one mel filterbank per utterance, reading the
    spectrum with its frequency axis warped by ``alpha`` (> 1 stretches it, as a shorter vocal tract does).

    The warp is piecewise linear: ``f -> alpha * f`` up to ``boundary`` of the Nyquist frequency (scaled by
    ``min(alpha, 1)``), then a straight line that keeps Nyquist in place, so no band falls off the end.

    Args:
        fb: ``(n_freq, n_mels)`` filterbank (torchaudio's ``MelScale.fb``).
        alpha: ``(batch,)`` warp factors, e.g. drawn from [0.9, 1.1].
    Returns:
        ``(batch, n_freq, n_mels)`` filterbanks to apply to the unwarped power spectrum.
    """
    n = fb.shape[0]
    nyquist = float(n - 1)
    k = torch.arange(n, device=fb.device, dtype=fb.dtype)[None, :]  # warped-spectrum bins
    a = alpha[:, None]
    cut = boundary * nyquist * a.clamp(max=1.0)  # the kink, in warped bins
    # Which source bin each warped bin reads: the inverse of the warp.
    source = torch.where(k <= cut, k / a, nyquist - (nyquist - k) * (nyquist - cut / a) / (nyquist - cut))
    source = source.clamp(0, nyquist)
    low = source.floor().long()
    frac = source - low
    high = (low + 1).clamp(max=n - 1)
    one_hot = torch.nn.functional.one_hot
    interp = one_hot(low, n) * (1 - frac)[..., None] + one_hot(high, n) * frac[..., None]  # (batch, warped, source)
    return interp.to(fb.dtype).transpose(1, 2) @ fb
