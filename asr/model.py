"""The acoustic model: convolutional subsampling + bidirectional LSTM stack + linear layer to characters.

A plain ``nn.Module``: it knows nothing of Lightning, decoding or the CLI, so a checkpoint can be used for
transcription without the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    subsampling: int = 4  # time reduction of the convolutional front: 2 or 4 (10 ms frames -> 20/40 ms)
    conv_channels: int = 32  # channels of each 3x3 convolution
    hidden_size: int = 256  # LSTM units per direction
    num_layers: int = 3  # bidirectional LSTM layers
    dropout: float = 0.1  # between LSTM layers and before the output layer


def _conv_out(lengths: torch.Tensor) -> torch.Tensor:
    # kernel 3, stride 2, padding 1: ceil(L / 2), and never below 1 so very short inputs still decode.
    return torch.div(lengths - 1, 2, rounding_mode="floor").clamp(min=0) + 1


class ConvSubsampling(nn.Module):
    """``(batch, frames, n_mels)`` -> ``(batch, frames / factor, conv_channels * n_mels / factor)``."""

    def __init__(self, n_mels: int, channels: int, factor: int):
        super().__init__()
        if factor not in (2, 4):
            raise ValueError(f"model.subsampling must be 2 or 4, not {factor}")
        self.layers = 1 if factor == 2 else 2
        convs: list[nn.Module] = []
        in_ch = 1
        for _ in range(self.layers):
            # BatchNorm after each convolution (as in DeepSpeech2): CTC leaves its all-blank plateau much sooner.
            convs += [nn.Conv2d(in_ch, channels, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
            in_ch = channels
        self.conv = nn.Sequential(*convs)
        freq = n_mels
        for _ in range(self.layers):
            freq = (freq - 1) // 2 + 1
        self.output_dim = channels * freq

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = feats.unsqueeze(1)  # (batch, 1, frames, mels)
        for i in range(self.layers):
            conv, norm, relu = self.conv[3 * i: 3 * i + 3]
            x = relu(norm(conv(x)))  # (batch, channels, frames', mels')
            lengths = _conv_out(lengths)
            # Zero the frames past each utterance's end: after bias and BatchNorm they are not zero, and the
            # next layer's kernel would read them; masked, an utterance gives the same output alone or padded.
            valid = torch.arange(x.shape[2], device=x.device)[None, :] < lengths.to(x.device)[:, None]
            x = x * valid[:, None, :, None].to(x.dtype)
        x = x.permute(0, 2, 1, 3).flatten(2)  # (batch, frames', channels * mels')
        return x, lengths


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` ``(batch, frames, dim)`` within its own length; padding stays at the end."""
    if torch.onnx.is_in_onnx_export():
        return _ReverseSequence.apply(x, lengths)
    return _reverse_padded(x, lengths)


def _reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(t < lengths, lengths - 1 - t, t)
    return x.gather(1, index[:, :, None].expand_as(x))


class _ReverseSequence(torch.autograd.Function):
    """:func:`reverse_padded` as ONNX's ``ReverseSequence`` in an exported graph: one op, where the traced index
    arithmetic, expand and gather cost 8 % of the int8 model's time (measured on 2 cores)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return _reverse_padded(x, lengths)

    @staticmethod
    def symbolic(g, x, lengths):
        lengths = g.op("Cast", lengths, to_i=7)  # int64, as ReverseSequence requires
        return g.op("ReverseSequence", x, lengths, batch_axis_i=0, time_axis_i=1)


class BiLSTM(nn.Module):
    """A stack of bidirectional LSTM layers that is exact for zero-padded batches without packing.

    Packed sequences would also keep the padding out of the backward direction, but on CPU they fall off
    oneDNN's fused kernels (measured: 104 vs 169 audio seconds per second for the demo model on 2 cores).
    Instead each layer runs a forward LSTM on the batch as it is (outputs at valid frames never see later
    padding) and a backward LSTM on each sequence reversed within its own length, so it starts at the last
    valid frame. Outputs at padding frames are meaningless and are masked by the lengths downstream.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, input_size)`` -> ``(batch, frames, 2 * hidden_size)``."""
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
            ahead, _ = fwd(x)
            behind, _ = bwd(reverse_padded(x, lengths))
            x = torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)
        return x


class BiLSTMCTC(nn.Module):
    """Log-mel features -> per-frame log-probabilities over the vocabulary (blank = 0)."""

    def __init__(self, config: ModelConfig, n_mels: int, vocab_size: int):
        super().__init__()
        self.config = config
        self.subsample = ConvSubsampling(n_mels, config.conv_channels, config.subsampling)
        self.lstm = BiLSTM(self.subsample.output_dim, config.hidden_size, config.num_layers, config.dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, vocab_size)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            feats: ``(batch, frames, n_mels)`` features; lengths: ``(batch,)`` valid frames.
        Returns:
            log-probabilities ``(batch, frames / subsampling, vocab)`` and ``(batch,)`` output frame counts.
        """
        x, lengths = self.subsample(feats, lengths)
        lengths = lengths.clamp(max=x.shape[1])
        out = self.lstm(x, lengths)
        logits = self.output(self.dropout(out))
        return logits.float().log_softmax(dim=-1), lengths
