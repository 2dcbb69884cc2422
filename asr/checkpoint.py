"""Self-describing checkpoints: weights plus everything needed to rebuild the model and its features.

Both Lightning's training checkpoints (``*.ckpt``) and the exported inference files (``model.pt``) carry an
``"asr"`` section with the model config, the feature config and the vocabulary, so either can be given to
``asr transcribe --model``. Loading needs only torch, never Lightning.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from asr import __version__
from asr.batching import pad
from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.features import FeatureConfig, LogMel, build_features
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import Vocabulary

FORMAT = 1  # bump when the "asr" section changes incompatibly


class CheckpointError(AsrError):
    """A file that is not a usable asr checkpoint."""


@dataclass
class Recognizer:
    """What a checkpoint rebuilds: the feature extractor, the network and the vocabulary, in eval mode."""

    features: LogMel  # or asr.pretrained.EncoderFeatures: the same call
    model: BiLSTMCTC
    vocab: Vocabulary

    def to(self, device: torch.device | str) -> "Recognizer":
        self.features.to(device)
        self.model.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def log_probs(self, waves: torch.Tensor, lengths: torch.Tensor,
                  warp: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` 16 kHz waveforms -> ``(batch, frames, vocab)`` log-probs and frame counts.
        ``warp``: read the spectrum through a filterbank warped by this factor (:mod:`asr.vtln`); 1 = as trained."""
        return self.model(*self.feats(waves, lengths, warp))

    def feats(self, waves: torch.Tensor, lengths: torch.Tensor, warp: float = 1.0,
              chunked: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, samples)`` 16 kHz waveforms -> the network's ``(batch, frames, n_mels)`` input and frame
        counts, on the model's device, through a filterbank warped by ``warp`` (1 = as trained), normalised as
        ``chunked`` reading does when asked."""
        warps = None if warp == 1.0 else torch.full((waves.shape[0],), float(warp))
        return self.features(waves.to(self.device), lengths.to(self.device), warps, chunked)

    def run(self, waves: list[np.ndarray], warp: float = 1.0) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities, as NumPy arrays,
        from one padded batch (what :class:`asr.transcribe.Transcriber` needs of a model)."""
        batch, lengths = pad([torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in waves])
        log_probs, frames = self.log_probs(batch, lengths, warp)
        log_probs = log_probs.float().cpu().numpy()
        return [log_probs[i, : int(n)] for i, n in enumerate(frames.cpu())]

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame in seconds."""
        return self.features.config.frame_ms / 1000 * self.model.config.subsampling


def asr_section(model_config: ModelConfig, feature_config: FeatureConfig, vocab: Vocabulary) -> dict:
    """The metadata stored under ``checkpoint["asr"]``: plain types only, so ``weights_only`` loading works."""
    return {
        "format": FORMAT,
        "asr_version": __version__,
        "model_config": asdict(model_config),
        "feature_config": asdict(feature_config),
        "vocabulary": vocab.characters,
    }


def save(path: str | os.PathLike, recognizer: Recognizer) -> None:
    """Write an inference checkpoint atomically (write to a temporary file, then rename)."""
    payload = {
        "asr": asr_section(recognizer.model.config, recognizer.features.config, recognizer.vocab),
        "state_dict": {k: v.detach().cpu() for k, v in recognizer.model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def build(section: dict, state_dict: dict | None = None) -> Recognizer:
    """Rebuild a :class:`Recognizer` from an ``"asr"`` section (and weights, when given)."""
    config = dict(section["feature_config"])
    config["layers"] = tuple(config.get("layers", (-1,)))
    features = build_features(FeatureConfig(**config))
    vocab = Vocabulary(section["vocabulary"])
    model = BiLSTMCTC(ModelConfig(**section["model_config"]), features.dim, len(vocab), features.config.groups,
                      features.top())
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return Recognizer(features.eval(), model.eval(), vocab)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Recognizer:
    """Load an exported ``model.pt`` or a Lightning ``.ckpt`` written by ``asr train``.

    Raises :class:`CheckpointError` naming the file for a missing, corrupt or foreign file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such model file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a model file")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (corrupt, truncated or another kind of file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{path}: checkpoint holds objects other than plain weights and configs; "
                              f"not written by asr") from None
    except (RuntimeError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        reason = str(e).strip().split("\n")[0][:120]
        raise CheckpointError(f"{path}: corrupt checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("asr"), dict):
        raise CheckpointError(f"{path}: not an asr checkpoint (no 'asr' section; was it written by asr train?)")
    section = ckpt["asr"]
    if section.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {section.get('format')!r}, this asr reads {FORMAT}")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint has no weights")
    # Lightning prefixes the network's weights with the LightningModule attribute name.
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    try:
        return build(section, state).to(device)
    except AsrError as e:  # the front-end's encoder weights (named by the checkpoint) are missing or unreadable
        raise CheckpointError(f"{path}: {e}") from None
    except (RuntimeError, TypeError, KeyError, ValueError) as e:
        reason = str(e).strip().split("\n")[0][:160]
        raise CheckpointError(f"{path}: weights do not match the model config ({reason})") from None


def average(paths: list[str | os.PathLike]) -> Recognizer:
    """The element-wise mean of the weights of several checkpoints of one model (e.g. the last N of a run).

    Averaging the final checkpoints smooths the noise of the last updates and usually lowers WER a little
    (as in ESPnet and icefall). All must share the architecture, the features and the vocabulary. Integer
    buffers (BatchNorm's batch counter) are taken from the last checkpoint.
    """
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = load(paths[0])
    reference = asr_section(first.model.config, first.features.config, first.vocab)
    sums = {k: v.double().clone() if v.is_floating_point() else v for k, v in first.model.state_dict().items()}
    for path in paths[1:]:
        other = load(path)
        section = asr_section(other.model.config, other.features.config, other.vocab)
        for key in ("model_config", "feature_config", "vocabulary"):
            if section[key] != reference[key]:
                raise CheckpointError(f"{path}: {key.replace('_', ' ')} differs from {paths[0]}; "
                                      f"only checkpoints of one model can be averaged")
        for k, v in other.model.state_dict().items():
            sums[k] = sums[k] + v.double() if v.is_floating_point() else v
    dtypes = {k: v.dtype for k, v in first.model.state_dict().items()}
    state = {k: (v / len(paths)).to(dtypes[k]) if v.is_floating_point() else v for k, v in sums.items()}
    first.model.load_state_dict(state)
    return first


def newest(folder: str | os.PathLike, n: int) -> list[Path]:
    """The ``n`` checkpoints of ``folder`` with the highest training step (``*step=N*.ckpt``; ``last.ckpt``
    is skipped, being a copy of one of them)."""
    found = []
    for p in Path(folder).glob("*.ckpt"):
        m = re.search(r"step=(\d+)", p.name)
        if m:
            found.append((int(m.group(1)), p))
    if not found:
        raise CheckpointError(f"{folder}: no step checkpoints (*step=N*.ckpt)")
    return [p for _, p in sorted(found)[-n:]]
