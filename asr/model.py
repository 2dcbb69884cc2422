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
    # The front before the BiLSTM: "conv" (2-D convolutions over log-mel) or "stack" (consecutive frames side by
    # side, for an encoder's features, which have been through convolutions of their own).
    front: str = "conv"
    subsampling: int = 4  # time reduction of the front: conv 2 or 4 (10 ms frames -> 20/40 ms), stack 1 to 4
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

    @property
    def factor(self) -> int:
        return 2 ** self.layers

    def forward_chunk(self, feats: torch.Tensor, cache: ConvCache | None,
                      final: bool = False) -> tuple[torch.Tensor, ConvCache]:
        """A stream's next features ``(frames, n_mels)`` -> the output frames now computable ``(frames', dim)``
        (eval mode): those whose receptive field (``factor - 1`` input frames each side) is complete, or, with
        ``final``, all the rest, the stream's end zero-padded as :meth:`forward` pads an utterance's. The same
        frames as :meth:`forward` over the whole stream."""
        factor = self.factor
        if cache is None:
            cache = ConvCache(feats.new_zeros(0, feats.shape[1]))
        cache.feats = torch.cat([cache.feats, feats])
        total = cache.start + cache.feats.shape[0]  # feature frames so far
        end = total
        for _ in range(self.layers):  # output frames of the whole stream, were it to end here
            end = (end - 1) // 2 + 1
        end = end if final else total // factor
        if end <= cache.done:
            return cache.feats.new_zeros(0, self.output_dim), cache
        # Read from one output frame before the first wanted (a multiple of factor, so the strides line up):
        # that frame alone sees the zero padding at the segment's start.
        first = max(cache.done - 1, 0)
        segment = cache.feats[first * factor - cache.start:]
        out, _ = self(segment[None], torch.tensor([segment.shape[0]]))
        out = out[0, cache.done - first: end - first]
        keep = max(end - 1, 0) * factor  # what the next call reads from
        cache.feats, cache.start, cache.done = cache.feats[keep - cache.start:], keep, end
        return out, cache

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


class FrameStack(nn.Module):
    """An encoder's features ``(batch, frames, groups * width)`` -> ``(batch, frames / factor, factor * width)``:
    each group (one hidden state of the encoder) layer-normalised, the groups mixed by softmax weights learned
    with the network (SUPERB's weighted sum of layers), then ``factor`` consecutive frames side by side."""

    def __init__(self, input_dim: int, groups: int, factor: int):
        super().__init__()
        if not 1 <= factor <= 4:
            raise ValueError(f"model.subsampling must be 1 to 4 with front 'stack', not {factor}")
        if input_dim % groups:
            raise ValueError(f"features of width {input_dim} do not split into {groups} layers")
        self.groups, self.width, self._factor = groups, input_dim // groups, factor
        self.mix = nn.Parameter(torch.zeros(groups))  # softmax(0) = the mean of the layers to begin with
        self.output_dim = factor * self.width

    @property
    def factor(self) -> int:
        return self._factor

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = feats.shape[0], feats.shape[1]
        x = nn.functional.layer_norm(feats.reshape(b, t, self.groups, self.width), (self.width,))
        x = (x * self.mix.softmax(0)[:, None]).sum(2)  # (batch, frames, width); zero frames stay zero
        # Shape arithmetic in tensor ops, so an exported graph takes any length.
        out = torch.div(t + self._factor - 1, self._factor, rounding_mode="floor")
        x = nn.functional.pad(x, (0, 0, 0, self._factor - 1))[:, : out * self._factor]
        return x.reshape(b, out, self.output_dim), torch.div(lengths + self._factor - 1, self._factor,
                                                             rounding_mode="floor")

    def forward_chunk(self, feats: torch.Tensor, cache: ConvCache | None,
                      final: bool = False) -> tuple[torch.Tensor, ConvCache]:
        """A stream's next features ``(frames, dim)`` -> the stacked frames now complete (all, with ``final``)."""
        if cache is None:
            cache = ConvCache(feats.new_zeros(0, feats.shape[1]))
        cache.feats = torch.cat([cache.feats, feats])
        ready = cache.feats.shape[0] if final else cache.feats.shape[0] // self._factor * self._factor
        out, _ = self(cache.feats[None, :ready], torch.tensor([ready]))
        cache.feats = cache.feats[ready:]
        cache.done += out.shape[1]
        return out[0], cache


@dataclass
class ConvCache:
    """What :meth:`ConvSubsampling.forward_chunk` keeps between calls of one stream."""

    feats: torch.Tensor  # (frames, n_mels): the stream's features from frame ``start`` on
    start: int = 0  # index of feats[0] among the stream's feature frames
    done: int = 0  # output frames given so far


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


LSTMState = tuple[torch.Tensor, torch.Tensor]  # an LSTM's (h, c), each ``(1, batch, hidden)``


class BiLSTM(nn.Module):
    """A stack of bidirectional LSTM layers that is exact for zero-padded batches without packing, read whole
    (full mode) or in chunks with a bounded look-ahead (chunked mode, for streaming).

    Packed sequences would also keep the padding out of the backward direction, but on CPU they fall off
    oneDNN's fused kernels (measured: 104 vs 169 audio seconds per second for the demo model on 2 cores).
    Instead each layer runs a forward LSTM on the batch as it is (outputs at valid frames never see later
    padding) and a backward LSTM on each sequence reversed within its own length, so it starts at the last
    valid frame. Outputs at padding frames are meaningless and are masked by the lengths downstream.

    Chunked mode is the latency-controlled BLSTM (Zhang et al. 2016): the sequence is cut into chunks of ``C``
    frames, each read with ``R`` frames of right context. In every layer the forward LSTM carries its state from
    chunk to chunk and goes on, from the state at the chunk's end, over the right context without keeping that
    state; the backward LSTM reads each chunk plus its right context from a zero state. The right context's
    outputs feed only the next layer's reading of the same chunk, so the look-ahead stays ``R`` frames however
    deep the stack. Batched here (chunks side by side in the batch) and frame by frame in :meth:`forward_chunk`,
    which gives the same outputs incrementally.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int = 0, right: int = 0) -> torch.Tensor:
        """``(batch, frames, input_size)`` -> ``(batch, frames, 2 * hidden_size)``; ``chunk`` > 0 reads it in
        chunks of that many frames with ``right`` frames of right context (0: the whole sequence at once)."""
        if chunk > 0:
            return self._chunked(x, lengths, chunk, right)
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
            ahead, _ = fwd(x)
            behind, _ = bwd(reverse_padded(x, lengths))
            x = torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)
        return x

    def _chunked(self, x: torch.Tensor, lengths: torch.Tensor, chunk: int, right: int) -> torch.Tensor:
        batch, frames, _ = x.shape
        count = -(-frames // chunk)  # chunks per sequence
        x = nn.functional.pad(x, (0, 0, 0, count * chunk + right - frames))
        starts = torch.arange(count, device=x.device) * chunk
        # Each chunk's right context, (batch, count, right, dim); in the first layer, the next frames themselves.
        context = torch.stack([x[:, s + chunk: s + chunk + right] for s in starts.tolist()], 1) if right else None
        x = x[:, : count * chunk]
        # Valid frames of each chunk + right context window, (batch * count,).
        window = (lengths.to(x.device)[:, None] - starts[None, :]).clamp(0, chunk + right).reshape(-1)
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.dropout(x)
                context = self.dropout(context) if context is not None else None
            dim = x.shape[-1]
            chunks = x.reshape(batch, count, chunk, dim)
            if right:
                # The forward state at every chunk's end is needed to read its right context: chunk by chunk.
                ahead, state, ends = [], None, []
                for k in range(count):
                    out, state = fwd(chunks[:, k], state)
                    ahead.append(out)
                    ends.append(state)
                ahead = torch.cat(ahead, 1)
                h = torch.stack([e[0] for e in ends], 2).reshape(1, batch * count, -1)
                c = torch.stack([e[1] for e in ends], 2).reshape(1, batch * count, -1)
                context_ahead, _ = fwd(context.reshape(batch * count, right, dim), (h, c))
                windows = torch.cat([chunks, context], 2).reshape(batch * count, chunk + right, dim)
            else:
                ahead, _ = fwd(x)
                windows = chunks.reshape(batch * count, chunk, dim)
            behind, _ = bwd(reverse_padded(windows, window))
            behind = reverse_padded(behind, window).reshape(batch, count, chunk + right, -1)
            x = torch.cat([ahead, behind[:, :, :chunk].reshape(batch, count * chunk, -1)], dim=-1)
            if right:
                context = torch.cat([context_ahead.reshape(batch, count, right, -1), behind[:, :, chunk:]], -1)
        return x[:, :frames]

    def forward_chunk(self, x: torch.Tensor, context: torch.Tensor,
                      states: list[LSTMState | None]) -> tuple[torch.Tensor, list[LSTMState]]:
        """One chunk of a stream, in eval mode: ``x (batch, C, input_size)`` and its right context
        ``(batch, R, input_size)`` (``R`` may be 0, and ``C`` shorter at the stream's end) -> the chunk's
        ``(batch, C, 2 * hidden_size)`` outputs and each layer's forward state after it (``states``: the
        previous chunk's, None at the start). Equal to the chunk's frames of chunked mode."""
        new_states = []
        for fwd, bwd, state in zip(self.forward_layers, self.backward_layers, states):
            ahead, state = fwd(x, state)
            new_states.append(state)
            window = torch.cat([x, context], 1)
            behind, _ = bwd(window.flip(1))
            behind = behind.flip(1)
            context_ahead = fwd(context, state)[0] if context.shape[1] else ahead[:, :0]
            context = torch.cat([context_ahead, behind[:, x.shape[1]:]], -1)
            x = torch.cat([ahead, behind[:, : x.shape[1]]], -1)
        return x, new_states


class BiLSTMCTC(nn.Module):
    """Log-mel features -> per-frame log-probabilities over the vocabulary (blank = 0)."""

    def __init__(self, config: ModelConfig, feature_dim: int, vocab_size: int, groups: int = 1,
                 top: nn.Module | None = None):
        """``feature_dim``: the features' width (n_mels, or an encoder's layers side by side); ``groups``: how
        many encoder layers those are (front "stack"); ``top``: an encoder's blocks tuned with the network, run
        first (``features.tuned_blocks``, :class:`asr.whisper_encoder.WhisperTop`)."""
        super().__init__()
        self.config = config
        self.top = top
        if config.front == "conv":
            self.subsample = ConvSubsampling(feature_dim, config.conv_channels, config.subsampling)
        elif config.front == "stack":
            self.subsample = FrameStack(feature_dim, groups, config.subsampling)
        else:
            raise ValueError(f"model.front must be conv or stack, not {config.front!r}")
        self.lstm = BiLSTM(self.subsample.output_dim, config.hidden_size, config.num_layers, config.dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, vocab_size)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, chunk: int = 0,
                right: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            feats: ``(batch, frames, n_mels)`` features; lengths: ``(batch,)`` valid frames.
            chunk, right: read the BiLSTM in chunks of ``chunk`` output frames with ``right`` frames of right
                context (:class:`BiLSTM`); 0: the whole utterance at once (full mode).
        Returns:
            log-probabilities ``(batch, frames / subsampling, vocab)`` and ``(batch,)`` output frame counts.
        """
        if self.top is not None:
            feats = self.top(feats, lengths)
        x, lengths = self.subsample(feats, lengths)
        lengths = lengths.clamp(max=x.shape[1])
        out = self.lstm(x, lengths, chunk, right)
        return self.log_probs(out), lengths

    def log_probs(self, out: torch.Tensor) -> torch.Tensor:
        """The BiLSTM's ``(batch, frames, 2 * hidden)`` outputs -> ``(batch, frames, vocab)`` log-probabilities."""
        logits = self.output(self.dropout(out))
        return logits.float().log_softmax(dim=-1)
