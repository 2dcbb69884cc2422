"""Voice activity detection: Silero VAD's per-frame speech probabilities, and stretches of speech from them.

Silero VAD's "sequence" export, bundled in ``asr/models`` (MIT; the ``silero-vad`` wheel, whose package requires
torch, ships the same file), is run here with onnxruntime directly, so the light install detects speech too.
Chosen over webrtcvad because it tells speech from noise by a learned model rather than by energy and pitch, at a cost far
below the recogniser's own (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.errors import AsrError

VAD_FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
VAD_CONTEXT = 64  # samples of the previous frame Silero prepends to each frame
VAD_MODEL = "silero_vad_16k_sequence.onnx"




@dataclass(frozen=True)
class VadOptions:
    """When speech starts and ends. Times in seconds."""

    threshold: float = 0.5  # speech probability that starts speech (Silero's default)
    min_pause: float = 0.25  # shorter dips below the threshold do not end speech
    pad: float = 0.2  # silence kept around each stretch of speech


class SileroVAD:
    """Per-frame speech probabilities, block by block, carrying the model's state across blocks."""

    def __init__(self):
        self.session = _session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)  # samples waiting for a whole frame

    def __call__(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        """Probabilities of the whole frames in ``audio`` (16 kHz) and what earlier calls left over; with
        ``last``, a partial final frame is zero-padded and scored too."""
        audio = np.concatenate([self._rest, audio.astype(np.float32, copy=False)])
        whole = audio.size // VAD_FRAME
        if last and audio.size % VAD_FRAME:
            audio = np.pad(audio, (0, VAD_FRAME - audio.size % VAD_FRAME))
            whole += 1
        frames = audio[: whole * VAD_FRAME].reshape(whole, VAD_FRAME)
        self._rest = audio[whole * VAD_FRAME:]
        if not whole:
            return np.zeros(0, dtype=np.float32)
        contexts = np.empty((whole, VAD_CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        contexts[1:] = frames[:-1, -VAD_CONTEXT:]
        self._context = frames[-1, -VAD_CONTEXT:].copy()
        probs, self._h, self._c = self.session.run(
            ["speech_probs", "hn", "cn"], {"input": np.concatenate([contexts, frames], axis=1), "h": self._h,
                                           "c": self._c})
        return np.asarray(probs, dtype=np.float32).reshape(-1)


@lru_cache(maxsize=1)
def _session():
    import onnxruntime as ort

    path = Path(__file__).resolve().parent / "models" / VAD_MODEL
    if not path.is_file():
        raise AsrError(f"{path}: Silero VAD's model is missing from this installation of asr")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a small model: one thread, the other core stays for the recogniser
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def speech_regions(probs: np.ndarray, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
    """``[(start, end)]`` seconds of speech from per-frame probabilities (32 ms frames), padded by
    ``options.pad`` and merged where the pads meet. Hysteresis: speech starts at ``threshold`` and ends only
    after ``min_pause`` seconds below ``threshold - 0.15`` (Silero's own rule)."""
    frame = VAD_FRAME / SAMPLE_RATE
    low = options.threshold - 0.15
    pause_frames = max(int(round(options.min_pause / frame)), 1)
    regions, start, quiet = [], None, 0
    for i, p in enumerate(probs):
        if start is None:
            if p >= options.threshold:
                start, quiet = i, 0
        elif p < low:
            quiet += 1
            if quiet >= pause_frames:
                regions.append((start, i - quiet + 1))
                start = None
        else:
            quiet = 0
    if start is not None:
        regions.append((start, len(probs) - quiet))
    padded: list[tuple[float, float]] = []
    for a, b in regions:
        a, b = max(a * frame - options.pad, 0.0), b * frame + options.pad
        if padded and a <= padded[-1][1]:
            padded[-1] = (padded[-1][0], b)
        else:
            padded.append((a, b))
    return padded
