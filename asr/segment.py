"""Cutting long recordings into pieces the network reads well: voice activity detection and window planning.

A file no longer than ``max_segment`` seconds is read whole, as in training. A longer one is cut at pauses into
segments of at most ``max_segment`` seconds; a stretch of speech with no pause that long (continuous speech,
music) falls back to overlapping windows of which only the centre frames are kept, as NeMo's buffered CTC
inference does, so no word is dropped or read twice at a boundary.

The voice activity detector is Silero VAD, whose wheel ships its ONNX models; its "sequence" export is run here
with onnxruntime directly (importing the ``silero_vad`` package would pull in torch, which the ONNX inference path
must not load). Chosen over webrtcvad by measurement on this 2-core machine: Silero costs 0.0021 x real time on
one thread (webrtcvad 0.0001 x) but tells speech from noise by a learned model rather than by energy and pitch;
both are far below the recogniser's own cost, and missed pauses only cost the window fallback.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.errors import AsrError

VAD_FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
VAD_CONTEXT = 64  # samples of the previous frame Silero prepends to each frame
VAD_MODEL = "silero_vad_16k_sequence.onnx"


@dataclass(frozen=True)
class SegmentOptions:
    """How long files are cut. Times in seconds."""

    max_segment: float = 12.0  # longest piece the network reads at once; files up to this are read whole
    threshold: float = 0.5  # speech probability that starts speech (Silero's default)
    min_pause: float = 0.25  # shorter dips below the threshold do not end speech
    pad: float = 0.2  # silence kept around each stretch of speech
    context: float = 2.0  # window fallback: audio read on each side of the kept centre
    merge: bool = False  # join neighbouring stretches of speech into segments of up to max_segment


@dataclass(frozen=True)
class Window:
    """A span of a file the network reads, the part of its output kept, and the segment it belongs to.

    Normally one window per segment, read and kept whole; in the fallback, consecutive windows of one segment
    overlap by ``2 * context`` and each keeps its centre.
    """

    segment: int  # index of the output segment
    start: float  # seconds of the file read: [start, end)
    end: float
    keep_start: float  # seconds whose output frames are kept: [keep_start, keep_end)
    keep_end: float


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

    spec = importlib.util.find_spec("silero_vad")  # locates the wheel without importing it (and torch)
    if spec is None or spec.origin is None:
        raise AsrError("voice activity detection needs the Python package silero-vad (pip install silero-vad)")
    path = Path(spec.origin).parent / "data" / VAD_MODEL
    if not path.is_file():
        raise AsrError(f"{path}: Silero VAD's sequence model is missing (silero-vad >= 6.2 ships it)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a small model: one thread, the other core stays for the recogniser
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def speech_regions(probs: np.ndarray, options: SegmentOptions = SegmentOptions()) -> list[tuple[float, float]]:
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


def plan_windows(regions: Iterable[tuple[float, float]], duration: float,
                 options: SegmentOptions = SegmentOptions(), frame_seconds: float = 0.04) -> list[Window]:
    """Group speech regions into segments of at most ``max_segment`` seconds, cutting in the pauses between
    them; a region longer than that becomes overlapping windows (keep ``max_segment - 2 context``, read
    ``context`` more on each side). Times are clipped to ``[0, duration]``.

    Fallback windows start on the grid of the network's output frames (``frame_seconds``), so the centres they
    keep tile the region frame for frame: no frame is read twice or skipped at a seam.
    """
    windows: list[Window] = []
    group: list[tuple[float, float]] = []
    segments = 0

    def close() -> None:
        nonlocal segments
        if group:
            a, b = group[0][0], min(group[-1][1], duration)
            windows.append(Window(segments, a, b, a, b))
            segments += 1
            group.clear()

    for a, b in regions:
        b = min(b, duration)
        if b <= a:
            continue
        if b - a > options.max_segment:
            close()
            windows.extend(_sliding(a, b, segments, duration, options, frame_seconds))
            segments += 1
        else:
            if group and (not options.merge or b - group[0][0] > options.max_segment):
                close()
            group.append((a, b))
    close()
    return windows


def _sliding(a: float, b: float, segment: int, duration: float, options: SegmentOptions,
             frame_seconds: float) -> list[Window]:
    """Windows over ``[a, b)`` whose kept centres tile it exactly, every time a multiple of ``frame_seconds``."""
    grid = lambda t: round(t / frame_seconds) * frame_seconds  # noqa: E731
    context = grid(min(options.context, options.max_segment / 4))
    hop = grid(options.max_segment) - 2 * context
    out, keep = [], grid(math.floor(a / frame_seconds) * frame_seconds)
    while keep < b:
        keep_end = min(keep + hop, b)
        out.append(Window(segment, max(keep - context, 0.0), min(keep_end + context, duration), keep, keep_end))
        keep = keep_end
    return out
