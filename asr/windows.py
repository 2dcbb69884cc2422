"""Reading a span of audio as the windows the network reads: whole when short, cut at pauses when long.

A span no longer than ``max_segment`` seconds is read whole, as in training. A longer one is read twice, block by
block, so memory stays bounded whatever its length: first through the voice activity detector (:mod:`asr.vad`),
whose pauses cut it into segments of at most ``max_segment`` seconds, then window by window. A stretch of speech
with no pause that long (continuous speech, music) falls back to overlapping windows of which only the centre
frames are kept, as NeMo's buffered CTC inference does, so no word is dropped or read twice at a seam.

Words used apart: a *span* is what the caller asks for (a file, or a part of one), a *window* is audio the
network reads, a *segment* is a piece of the output (one or more windows; :mod:`asr.assemble`).
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from asr.audio import SAMPLE_RATE, ArrayAudio, AudioFile
from asr.progress import Progress, is_terminal
from asr.vad import SileroVAD, VadOptions, speech_regions

if TYPE_CHECKING:
    from asr.manifest import Utterance


@dataclass(frozen=True)
class SegmentOptions(VadOptions):
    """How long spans are cut (and, inherited, how the VAD finds speech). Times in seconds."""

    max_segment: float = 12.0  # longest piece the network reads at once; spans up to this are read whole
    context: float = 2.0  # window fallback: audio read on each side of the kept centre
    merge: bool = False  # join neighbouring stretches of speech into segments of up to max_segment


@dataclass(frozen=True)
class Span:
    """A file, or a part of it (seconds), to transcribe; or samples in memory (``path`` then only names them)."""

    path: str
    offset: float = 0.0
    duration: float | None = None  # None: to the end of the file
    samples: np.ndarray | None = field(default=None, compare=False, repr=False)  # (samples,) at 16 kHz

    @classmethod
    def of(cls, utt: "Utterance") -> "Span":
        """The span of a manifest utterance."""
        return cls(utt.audio_filepath, *utt.span)


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


@dataclass
class PlannedSpan:
    """A span opened for reading: its windows, its length, and the windows' audio in order."""

    windows: list[Window]
    duration: float  # seconds of audio in the span
    audio: Iterator[tuple[int, np.ndarray]]  # (window index, 16 kHz samples), read as it is consumed


class WindowReader:
    """Opens spans as windows, reading each file block by block.

    ``check`` is called before each block is read (it raises to cancel the work); ``progress`` draws a bar
    per long span on a terminal.
    """

    def __init__(self, options: SegmentOptions = SegmentOptions(), frame_seconds: float = 0.04,
                 check: Callable[[], None] | None = None, progress: bool = False):
        self.options = options
        self.frame_seconds = frame_seconds  # fallback windows start on the network's output frame grid
        self.check = check  # None: never cancelled (and the reader stays picklable, for loader workers)
        self.progress = progress

    @contextmanager
    def open(self, span: Span) -> Iterator[PlannedSpan]:
        """Plan ``span`` (a VAD pass over a long one) and hand out its windows' audio; raises
        :class:`asr.errors.AsrError` for a file that cannot be read."""
        with (AudioFile(span.path) if span.samples is None else ArrayAudio(span.samples)) as f:
            total = f.duration - span.offset if f.duration is not None else None
            if span.duration is not None:
                total = span.duration if total is None else min(span.duration, total)
            if total is not None and total <= self.options.max_segment:
                wave = f.read(span.offset, span.duration)
                duration = wave.size / SAMPLE_RATE
                yield PlannedSpan([whole(duration)], duration, iter([(0, wave)]))
                return
            windows, duration = self._plan(f, span)
            yield PlannedSpan(windows, duration, self._window_audio(f, span, windows))

    def _plan(self, f: AudioFile, span: Span) -> tuple[list[Window], float]:
        """First pass over a long span: voice activity, then windows. Returns them and the span's seconds."""
        vad, probs, samples = SileroVAD(), [], 0
        with self._bar(span, "detecting speech") as bar:
            for block in f.blocks(span.offset, span.duration):
                self._check()
                probs.append(vad(block))
                samples += block.size
                bar.update(block.size / SAMPLE_RATE)
        probs.append(vad(np.zeros(0, dtype=np.float32), last=True))
        duration = samples / SAMPLE_RATE
        if duration <= self.options.max_segment:  # the header did not tell; short after all
            return [whole(duration)], duration
        regions = speech_regions(np.concatenate(probs), self.options)
        return plan_windows(regions, duration, self.options, self.frame_seconds), duration

    def _window_audio(self, f: AudioFile, span: Span, windows: list[Window]) -> Iterator[tuple[int, np.ndarray]]:
        """Second pass: cut the windows (sorted by start, possibly overlapping) out of the block stream."""
        buffer, first = np.zeros(0, dtype=np.float32), 0  # samples held, and the index of buffer[0] in the span
        blocks = f.blocks(span.offset, span.duration)
        with self._bar(span, "transcribing") as bar:
            for index, w in enumerate(windows):
                a, b = int(round(w.start * SAMPLE_RATE)), int(round(w.end * SAMPLE_RATE))
                while first + buffer.size < b:
                    self._check()
                    block = next(blocks, None)
                    if block is None:
                        break
                    buffer = np.concatenate([buffer, block])
                yield index, buffer[a - first: b - first].copy()
                bar.update(w.keep_end - w.keep_start)
                if index + 1 < len(windows):  # drop what no later window reads
                    # at most what is held: the next window may start in a block not read yet
                    drop = min(int(round(windows[index + 1].start * SAMPLE_RATE)) - first, buffer.size)
                    if drop > 0:
                        buffer, first = buffer[drop:], first + drop

    def _check(self) -> None:
        if self.check is not None:
            self.check()

    def _bar(self, span: Span, what: str) -> Progress:
        # Per-file bars on a terminal only: in a log, one line per long file would be noise.
        return Progress(desc=f"{os.path.basename(str(span.path))}: {what}", unit="s", unit_scale=True, leave=False,
                        enabled=self.progress and is_terminal())


def whole(duration: float) -> Window:
    """The one window of a span read whole."""
    return Window(0, 0.0, duration, 0.0, duration)
