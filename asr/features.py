"""Waveforms -> normalised log-mel features, in batch on whatever device the module lives on, or frame by frame
as a stream's samples arrive.

The extractor is an ``nn.Module`` so that training on a GPU computes features there too, and so that the
same code serves training and transcription. Normalisation is per utterance (each mel bin's mean and deviation
over the whole utterance: not streamable), running (over the frames so far, starting from the training set's
statistics: what a stream can have) or global (the training set's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio
from torch import nn

from asr.audio import SAMPLE_RATE


KINDS = ("log_mel", "whisper", "moonshine")
ENCODER_FRAME_MS = {"whisper": 20.0, "moonshine": 24.0}  # the encoders' output frame shift


@dataclass(frozen=True)
class FeatureConfig:
    # "log_mel" (computed here), or a frozen pretrained encoder's hidden states: "whisper" or "moonshine"
    # (asr.pretrained; docs/encoders.md). The settings below up to `layers` concern the encoders only.
    kind: str = "log_mel"
    # The encoder's weights: a name (whisper-tiny.en, moonshine-tiny), a hub repository or a local path.
    encoder: str = ""
    # Which hidden states feed the network (0 = the convolutional stem, -1 = the last block), mixed by learned
    # weights (SUPERB's weighted sum); Moonshine gives its last only.
    layers: tuple[int, ...] = (-1,)
    # Whisper: its last n blocks (and final layer norm) are trained with the network under CTC, from the
    # pretrained weights (asr.whisper_encoder.WhisperTop); the frozen encoder stops below them, so `layers` counts
    # its states up to there and the cache keeps the state they read. 0: the whole encoder frozen.
    tuned_blocks: int = 0
    # Whisper's frozen blocks in "fp32", or "auto": bf16 where the machine multiplies bf16 natively (a CPU with
    # AMX units, a CUDA GPU that has bf16), fp32 elsewhere; the features' cache keeps each apart. "auto" fills the
    # demo's cache faster for features 1 % apart, the same WER (docs/encoders.md, "Training from the cache").
    encoder_precision: str = "fp32"
    sample_rate: int = SAMPLE_RATE  # Hz of the input waveforms
    n_mels: int = 80  # mel bins
    win_ms: float = 25.0  # analysis window, milliseconds
    hop_ms: float = 10.0  # frame shift, milliseconds
    # FFT size in samples (>= window). 400 = the 25 ms window itself, as Whisper: torchaudio's mel spectrogram
    # of a 16 x 2.5 s batch takes 4.4 ms at 400 against 8.2 ms at 512 on this CPU (measured).
    n_fft: int = 400
    # "per_feature": each bin to zero mean and unit deviation over the utterance; "running": over the frames up to
    # each one, the training set's statistics counted as prior_frames frames before the first (streamable);
    # "global": by the training set's statistics; "none".
    normalize: str = "per_feature"
    # The normalisation of chunked (live) reading, when it differs from normalize: "running", "global" or "none".
    chunked_normalize: str | None = None
    stats_mean: tuple[float, ...] = ()  # the training set's mean log-mel of each bin (measured by asr train)
    stats_std: tuple[float, ...] = ()  # and its standard deviation
    prior_frames: float = 100.0  # running: weight of the training set's statistics, in frames (100 = 1 s)

    @property
    def frame_ms(self) -> float:
        """The features' frame shift in milliseconds."""
        return ENCODER_FRAME_MS.get(self.kind, self.hop_ms)

    @property
    def groups(self) -> int:
        """How many encoder layers the features hold side by side (1 for log-mel)."""
        return 1 if self.kind == "log_mel" else len(self.layers)

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    def normalization(self, chunked: bool = False) -> str:
        """The normalisation of whole (``chunked`` False) or chunked reading."""
        return self.chunked_normalize if chunked and self.chunked_normalize else self.normalize

    @property
    def needs_stats(self) -> bool:
        return self.kind == "log_mel" and bool({self.normalize, self.normalization(True)} & {"running", "global"})

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Frames for waveforms of ``num_samples`` samples: whole FFT frames only, and at least one."""
        return torch.div((num_samples - self.n_fft).clamp(min=0), self.hop_length, rounding_mode="floor") + 1


def build_features(config: FeatureConfig) -> nn.Module:
    """The front-end ``config`` describes: :class:`LogMel`, or :class:`asr.pretrained.EncoderFeatures` (which
    loads its encoder's weights). Both take ``(waves, lengths, warp, chunked)`` and give ``(feats, frames)``, and
    both have ``dim``, the features' width, and ``top()``, the encoder blocks the network tunes (None for log-mel)."""
    if config.kind not in KINDS:
        raise ValueError(f"features.kind must be one of {', '.join(KINDS)}, not {config.kind!r}")
    if config.kind == "log_mel":
        return LogMel(config)
    from asr.pretrained import EncoderFeatures  # imported here: log-mel models never load an encoder's code

    return EncoderFeatures(config)


class LogMel(nn.Module):
    """``(batch, samples)`` waveforms -> ``(batch, frames, n_mels)`` log-mel features."""

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        if config.normalize not in NORMALIZE:
            raise ValueError(f"features.normalize must be one of {', '.join(NORMALIZE)}, not {config.normalize!r}")
        if config.chunked_normalize not in (None, *STREAMABLE):
            raise ValueError(f"features.chunked_normalize must be one of {', '.join(STREAMABLE)}, not "
                             f"{config.chunked_normalize!r}")
        if len(config.stats_mean) not in (0, config.n_mels) or len(config.stats_std) != len(config.stats_mean):
            raise ValueError(f"features.stats_mean and stats_std need {config.n_mels} values each")
        self.config = config
        self.dim = config.n_mels
        # Non-persistent: the statistics travel in the config (checkpoint["asr"]), the weights stay as they were.
        self.register_buffer("stats_mean", torch.tensor(config.stats_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("stats_std", torch.tensor(config.stats_std, dtype=torch.float32), persistent=False)
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

    def top(self) -> None:
        """No encoder blocks to tune over log-mel (:meth:`asr.pretrained.EncoderFeatures.top`)."""
        return None

    @torch.no_grad()
    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None,
                chunked: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            waves: ``(batch, samples)`` float waveforms, zero-padded.
            lengths: ``(batch,)`` valid samples per waveform.
            warp: ``(batch,)`` VTLP factors (training only): each utterance's frequency axis is warped by its
                factor before the mel filterbank (see :func:`warped_filterbanks`); None = no warp.
            chunked: normalise as chunked (live) reading does (``config.chunked_normalize``, when set).
        Returns:
            features ``(batch, frames, n_mels)`` with padding frames set to 0, and ``(batch,)`` frame counts.
        """
        # Features stay in fp32 even under autocast: log of small powers underflows in half precision.
        if waves.shape[-1] < self.config.n_fft:  # shorter than one frame: pad so it still gives one
            waves = torch.nn.functional.pad(waves, (0, self.config.n_fft - waves.shape[-1]))
        with torch.autocast(device_type=waves.device.type, enabled=False):
            if warp is None:
                feats = self.log_mel(waves)  # (batch, frames, n_mels)
            else:
                power = self.mel.spectrogram(waves.float())  # (batch, n_freq, frames)
                banks = warped_filterbanks(self.mel.mel_scale.fb, warp.to(power.device, power.dtype))
                feats = torch.log(torch.einsum("bft,bfm->bmt", power, banks) + 1e-6).transpose(1, 2)
            frames = self.config.num_frames(lengths).clamp(max=feats.shape[1])
            mode = self.config.normalization(chunked)
            return normalize(feats, frames, mode, self.config.prior_frames, self.stats_mean, self.stats_std), frames

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> unnormalised ``(batch, frames, n_mels)`` log-mel, every whole frame."""
        with torch.autocast(device_type=waves.device.type, enabled=False):
            return torch.log(self.mel(waves.float()) + 1e-6).transpose(1, 2)


NORMALIZE = ("per_feature", "running", "global", "none")
STREAMABLE = ("running", "global", "none")  # the normalisations a stream can compute as it goes


def normalize(feats: torch.Tensor, frames: torch.Tensor, mode: str, prior: float, mean: torch.Tensor,
              std: torch.Tensor) -> torch.Tensor:
    """Normalise log-mel features by ``mode`` (:attr:`FeatureConfig.normalize`) and zero their padding (the same
    arithmetic in training, transcription and the exported ONNX graph).

    Args:
        feats: ``(batch, frames, n_mels)`` log-mel features; frames: ``(batch,)`` valid frames of each.
        prior: ``running``: frames' worth of weight of the training set's statistics.
        mean, std: ``(n_mels,)`` the training set's statistics (for ``running`` and ``global``).
    Returns:
        ``(batch, frames, n_mels)``, zero past each utterance's end.
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]).unsqueeze(-1)
    mask = mask.to(feats.dtype)
    if mode in ("running", "global") and mean.numel() == 0:
        raise ValueError(f"features.normalize {mode!r} needs the training set's statistics (stats_mean, stats_std)")
    if mode == "per_feature":
        count = frames.clamp(min=1).to(feats.dtype)[:, None, None]
        mean = (feats * mask).sum(1, keepdim=True) / count
        var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
        feats = (feats - mean) / (var.sqrt() + 1e-5)
    elif mode == "global":
        feats = (feats - mean) / (std + 1e-5)
    elif mode == "running":
        feats, _ = running_normalize(feats, mean, std, prior)
    return feats * mask


RunningState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # frames seen, sums, sums of squares (per bin)


def running_normalize(feats: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, prior: float,
                      state: RunningState | None = None) -> tuple[torch.Tensor, RunningState]:
    """Each frame normalised by the mean and deviation of the frames up to it, the training set's statistics
    counted as ``prior`` frames before the first (causal: a stream computes the same).

    Args:
        feats: ``(batch, frames, n_mels)``; state: what earlier frames of the same stream left (None: none).
    Returns:
        the normalised features, and the state after the last frame (for the next block of a stream).
    """
    if state is None:
        zeros = torch.zeros(feats.shape[0], 1, feats.shape[2], dtype=feats.dtype, device=feats.device)
        state = (torch.zeros((), dtype=feats.dtype, device=feats.device), zeros, zeros)
    seen, sums, squares = state
    count = seen + prior + torch.arange(1, feats.shape[1] + 1, dtype=feats.dtype, device=feats.device)[None, :, None]
    total = sums + torch.cumsum(feats, 1)
    total_sq = squares + torch.cumsum(feats * feats, 1)
    running_mean = (prior * mean + total) / count
    running_var = (prior * (std * std + mean * mean) + total_sq) / count - running_mean * running_mean
    out = (feats - running_mean) / (running_var.clamp(min=0).sqrt() + 1e-5)
    return out, (seen + feats.shape[1], total[:, -1:], total_sq[:, -1:])


class LogMelStream:
    """The features of one stream, frame by frame as its samples arrive: the frames :class:`LogMel` gives for
    the whole signal (for a streamable normalisation), in order, as soon as each one's window is complete."""

    def __init__(self, features: LogMel):
        self.mode = features.config.normalization(chunked=True)
        if self.mode not in STREAMABLE:
            raise ValueError(f"features.normalize {self.mode!r} needs the whole utterance: a stream needs one of "
                             f"{', '.join(STREAMABLE)} (features.normalize or features.chunked_normalize)")
        self.features = features
        self.config = features.config
        self._samples = torch.zeros(0)  # samples from the next frame's start on
        self._state: RunningState | None = None
        self.frames = 0  # frames given so far

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """``(samples,)`` more audio at 16 kHz -> ``(frames, n_mels)`` the features now complete (maybe none)."""
        self._samples = torch.cat([self._samples, samples.float().cpu()])
        n_fft, hop = self.config.n_fft, self.config.hop_length
        count = (self._samples.numel() - n_fft) // hop + 1 if self._samples.numel() >= n_fft else 0
        if count == 0:
            return torch.zeros(0, self.config.n_mels)
        out = self._frames(self._samples[: (count - 1) * hop + n_fft])
        self._samples = self._samples[count * hop:]
        return out

    def finish(self) -> torch.Tensor:
        """The last frames: one from the zero-padded audio when the stream was shorter than a frame (as
        :class:`LogMel` pads it), none otherwise."""
        if self.frames or self._samples.numel() == 0:
            return torch.zeros(0, self.config.n_mels)
        return self._frames(nn.functional.pad(self._samples, (0, self.config.n_fft - self._samples.numel())))

    def _frames(self, samples: torch.Tensor) -> torch.Tensor:
        device = self.features.stats_mean.device
        feats = self.features.log_mel(samples[None].to(device))
        mean, std = self.features.stats_mean, self.features.stats_std
        if self.mode == "running":
            feats, self._state = running_normalize(feats, mean, std, self.config.prior_frames, self._state)
        elif self.mode == "global":
            feats = (feats - mean) / (std + 1e-5)
        self.frames += feats.shape[1]
        return feats[0]


def dft_basis(n_fft: int, win_length: int) -> torch.Tensor:
    """``(n_fft, 2 * bins)`` the Hann-windowed DFT basis (real parts, then imaginary) that :func:`power_spectrum`
    multiplies frames by; the window centred in ``n_fft`` as ``torch.stft`` places it."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    window = nn.functional.pad(window, ((n_fft - win_length) // 2,) * 2)
    angle = 2 * math.pi * k * n / n_fft
    return torch.cat([window * torch.cos(angle), -window * torch.sin(angle)]).float().T.contiguous()


def power_spectrum(waves: torch.Tensor, basis: torch.Tensor, hop: int, count: torch.Tensor | int) -> torch.Tensor:
    """``(batch, samples)`` -> ``(batch, count, bins)`` power spectra of frames starting every ``hop`` samples.

    The STFT as matrix products: the signal cut into rows of one hop, and frame t = rows t, t+1, ... (n_fft / hop
    of them), so each frame's DFT is a sum of row x basis-slice products. The same sums as a strided convolution
    with the basis, but ONNX Runtime runs them as plain GEMMs with no im2col copy (measured: the convolution was a
    quarter of the int8 model's time), and every ONNX opset exports them (``torch.stft`` does not export).
    """
    n_fft = basis.shape[0]
    waves = nn.functional.pad(waves, (0, n_fft + hop))
    rows = torch.div(waves.shape[1], hop, rounding_mode="floor")
    blocks = waves[:, : rows * hop].reshape(waves.shape[0], rows, hop)  # (batch, rows, hop)
    spec = 0
    for j in range(-(-n_fft // hop)):
        width = min(hop, n_fft - j * hop)
        spec = spec + torch.matmul(blocks[:, j: j + count, :width], basis[j * hop: j * hop + width])
    bins = basis.shape[1] // 2  # spec: (batch, frames, 2 bins), real parts then imaginary
    return spec[..., :bins] ** 2 + spec[..., bins:] ** 2


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
