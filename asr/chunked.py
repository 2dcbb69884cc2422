"""The network read as a stream: 16 kHz samples in, log-probabilities out chunk by chunk, with bounded delay.

:class:`ChunkedReader` runs a PyTorch model incrementally in its chunked mode (:class:`asr.model.BiLSTM`):
features as their windows complete (:class:`asr.features.LogMelStream`), the convolutional front as its
receptive field completes, then the BiLSTM one chunk of ``chunk`` output frames at a time once ``right`` more
frames have arrived. Those frames are *committed*: exactly the chunked mode's output for the whole stream, never
revised. For a quick partial result it can also read the frames past the last chunk *provisionally* (no right
context, the state left as it was); those are replaced once their chunk is read.

:class:`RereadReader` serves models that cannot stream (per-utterance feature normalisation, ONNX): it rereads
the whole utterance so far in full mode, commits nothing, and leaves stability to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch only for PyTorch models: rereading an ONNX model needs none
    import torch

    from asr.model import ConvCache, LSTMState


@dataclass(frozen=True)
class ChunkSettings:
    """How a stream is read. Times in seconds, rounded to whole output frames."""

    chunk: float = 0.64  # audio the BiLSTM reads at once
    right: float = 0.32  # look-ahead each chunk is read with

    def frames(self, frame_seconds: float) -> tuple[int, int]:
        return max(int(round(self.chunk / frame_seconds)), 1), max(int(round(self.right / frame_seconds)), 0)


def can_chunk(network) -> bool:
    """Whether ``network`` (a :class:`asr.checkpoint.Recognizer`, or anything else) can be read chunk by chunk."""
    features = getattr(network, "features", None)
    if features is None or not hasattr(network, "model"):
        return False
    from asr.features import STREAMABLE

    config = features.config
    return config.kind == "log_mel" and config.normalization(chunked=True) in STREAMABLE


def why_not_chunked(recognizer) -> str:
    """Why :func:`can_chunk` refuses ``recognizer``, in one line."""
    config = recognizer.features.config
    if config.kind != "log_mel":
        return (f"this model's front-end is an encoder ({config.kind}: {config.encoder}) that reads whole windows: "
                f"it cannot be read in chunks (live recognition rereads the utterance instead; docs/encoders.md)")
    return "this model normalises features per utterance: it cannot be read in chunks"


class ChunkedReader:
    """One stream through a PyTorch recogniser in chunked mode; feed it samples, collect committed frames."""

    def __init__(self, recognizer, settings: ChunkSettings = ChunkSettings()):
        import torch

        from asr.features import LogMelStream

        if not can_chunk(recognizer):
            raise ValueError(why_not_chunked(recognizer))
        self.recognizer = recognizer
        self.model = recognizer.model
        self.chunk, self.right = settings.frames(recognizer.frame_seconds)
        self.features = LogMelStream(recognizer.features)
        self._conv: "ConvCache | None" = None
        self._pending = torch.zeros(0, self.model.subsample.output_dim)  # conv frames not yet read as a chunk
        self._states: "list[LSTMState | None]" = [None] * len(self.model.lstm.forward_layers)
        self.samples = 0  # samples accepted

    @property
    def delay(self) -> float:
        """Seconds of audio past a frame that its committed reading waits for at most: the chunk, the right
        context, and the front's look-ahead (the convolutions' receptive field and the analysis window)."""
        config = self.recognizer.features.config
        front = (self.model.subsample.factor - 1) * config.hop_ms / 1000 + (config.win_ms - config.hop_ms) / 1000
        return (self.chunk + self.right) * self.recognizer.frame_seconds + front

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """``(samples,)`` float32 at 16 kHz -> the ``(frames, vocab)`` log-probabilities committed by them."""
        self.samples += samples.size
        import torch

        with torch.inference_mode():
            feats = self.features.accept(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
            return self._read(feats, final=False)

    def finish(self) -> np.ndarray:
        """The stream has ended: the rest of its frames (the last chunks read with what right context is left)."""
        import torch

        with torch.inference_mode():
            return self._read(self.features.finish(), final=True)

    def provisional(self) -> np.ndarray:
        """A quick reading of the frames past the committed ones (no right context), state untouched."""
        if not self._pending.shape[0]:
            return np.zeros((0, len(self.recognizer.vocab)), np.float32)
        import torch

        device = self.recognizer.device
        with torch.inference_mode():
            out, _ = self.model.lstm.forward_chunk(self._pending[None].to(device),
                                                   self._pending[None, :0].to(device), self._states)
            return self.model.log_probs(out)[0].float().cpu().numpy()

    def _read(self, feats: "torch.Tensor", final: bool) -> np.ndarray:
        import torch

        device = self.recognizer.device
        conv, self._conv = self.model.subsample.forward_chunk(feats.to(device), self._conv, final)
        self._pending = torch.cat([self._pending.to(conv.device), conv])
        outputs = []
        need = self.chunk + self.right
        while self._pending.shape[0] >= (1 if final else need):
            x = self._pending[None, : self.chunk]
            context = self._pending[None, self.chunk: need]
            out, self._states = self.model.lstm.forward_chunk(x, context, self._states)
            outputs.append(self.model.log_probs(out)[0])
            self._pending = self._pending[self.chunk:]
        if not outputs:
            return np.zeros((0, len(self.recognizer.vocab)), np.float32)
        return torch.cat(outputs).float().cpu().numpy()


class RereadReader:
    """A stream through any network (ONNX too) by rereading the utterance so far, whole, in full mode."""

    def __init__(self, network):
        self.network = network
        self._audio: list[np.ndarray] = []
        self.samples = 0
        self.delay = 0.0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        self._audio.append(np.asarray(samples, dtype=np.float32))
        self.samples += samples.size
        return np.zeros((0, len(self.network.vocab)), np.float32)  # nothing is ever committed

    def finish(self) -> np.ndarray:
        return np.zeros((0, len(self.network.vocab)), np.float32)

    def provisional(self) -> np.ndarray:
        if not self.samples:
            return np.zeros((0, len(self.network.vocab)), np.float32)
        self._audio = [np.concatenate(self._audio)]
        return self.network.run(self._audio)[0]


class ChunkedNetwork:
    """A PyTorch recogniser read in its chunked mode, in batch: what a stream commits, for whole files
    (``asr evaluate --chunked``: the accuracy of live reading, measured as offline reading is)."""

    def __init__(self, recognizer, settings: ChunkSettings = ChunkSettings()):
        if not can_chunk(recognizer):
            raise ValueError(why_not_chunked(recognizer))
        self.recognizer = recognizer
        self.settings = settings
        self.vocab = recognizer.vocab
        self.frame_seconds = recognizer.frame_seconds
        self.chunk, self.right = settings.frames(recognizer.frame_seconds)

    def describe(self) -> str:
        return f"chunks of {self.settings.chunk:g} s + {self.settings.right:g} s"

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        from asr.batching import pad

        rec = self.recognizer
        with torch.inference_mode():
            batch, lengths = pad([torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in waves])
            feats, frames = rec.feats(batch, lengths, chunked=True)
            log_probs, out = rec.model(feats, frames, self.chunk, self.right)
            log_probs = log_probs.float().cpu().numpy()
        return [log_probs[i, : int(n)] for i, n in enumerate(out.cpu())]
