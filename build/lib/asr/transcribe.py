"""Spans of audio -> results, in input order: the scheduler that batches windows across files.

Each input span is opened by :class:`asr.windows.WindowReader` (whole, or cut at pauses into windows, read block
by block); windows from several inputs share padded batches of at most ``max_batch_seconds`` for the network;
:class:`asr.assemble.Assembler` decodes each segment as soon as its windows are through and joins the results.
One bad file never stops the rest: its result carries a one-line error instead. Needs NumPy only: the network
runs behind ``recognizer.run`` (PyTorch or ONNX Runtime).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Iterable, Iterator, Protocol

import numpy as np

from asr.assemble import Assembler, Assembly, Result, Segment
from asr.audio import SAMPLE_RATE
from asr.batching import pack_sorted
from asr.decode import Decoder, GreedyDecoder
from asr.errors import AsrError, Cancelled
from asr.text import Vocabulary
from asr.windows import SegmentOptions, Span, WindowReader


class Network(Protocol):
    """What the transcriber needs of a model (PyTorch :class:`asr.checkpoint.Recognizer`, or ONNX)."""

    vocab: Vocabulary
    frame_seconds: float

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities."""


class _Input:
    """One input in flight: its result, and its assembly once its windows are planned."""

    def __init__(self, span: Span):
        self.span = span
        self.result = Result(str(span.path))
        self.assembly: Assembly | None = None

    @property
    def complete(self) -> bool:
        return self.result.error is not None or (self.assembly is not None and self.assembly.complete)


Queued = tuple[_Input, int, np.ndarray]  # an input, a window index, the window's audio


class Transcriber:
    """Transcribes inputs in padded batches of up to ``max_batch_seconds``, yielding results in input order."""

    def __init__(self, recognizer: Network, decoder: Decoder | None = None, *, max_batch_seconds: float = 200.0,
                 chunk_files: int = 64, timestamps: bool = False, keep_log_probs: bool = False,
                 segmenting: SegmentOptions = SegmentOptions(), progress: bool = False,
                 on_segment: Callable[[Result, Segment], None] | None = None,
                 cancelled: threading.Event | None = None):
        """
        Args:
            recognizer: the network (:class:`Network`); decoder: greedy when None.
            max_batch_seconds: padded audio per forward pass.
            chunk_files: short inputs read ahead and sorted by length to keep padding low.
            timestamps: word start, end and confidence of the best hypothesis.
            keep_log_probs: return each input's log-probabilities (for LM tuning).
            segmenting: how long inputs are cut; progress: a bar per long file on a terminal.
            on_segment: told of each segment as soon as it is decoded, in order (streaming responses).
            cancelled: when set, the next block read raises :class:`asr.errors.Cancelled`.
        """
        self.recognizer = recognizer
        self.decoder = decoder or GreedyDecoder(recognizer.vocab)
        self.max_batch_seconds = max_batch_seconds
        self.chunk_files = chunk_files
        self.cancelled = cancelled
        self.reader = WindowReader(segmenting, recognizer.frame_seconds, self._check, progress)
        self.assembler = Assembler(self.decoder, recognizer.vocab, recognizer.frame_seconds, timestamps,
                                   keep_log_probs, on_segment)
        # Audio read ahead before the network runs: enough for full batches, small next to any memory budget.
        self.read_ahead = max(4 * max_batch_seconds, 2 * segmenting.max_segment) * SAMPLE_RATE

    def transcribe(self, inputs: Iterable[Span | str | os.PathLike]) -> Iterator[Result]:
        """Yield one :class:`asr.assemble.Result` per input, in input order."""
        in_flight: list[_Input] = []
        queue: list[Queued] = []  # windows read, waiting for the network
        for item in inputs:
            current = _Input(item if isinstance(item, Span) else Span(str(item)))
            in_flight.append(current)
            try:
                self._read(current, queue, in_flight)
            except AsrError as e:
                current.result.error = str(e)
                queue[:] = [q for q in queue if q[0] is not current]
            if len(in_flight) >= self.chunk_files:
                self._run(queue, in_flight)
            yield from self._finished(in_flight)
        self._run(queue, in_flight)
        yield from self._finished(in_flight)

    def _read(self, current: _Input, queue: list[Queued], in_flight: list[_Input]) -> None:
        """Queue ``current``'s windows, running the network whenever enough audio is waiting."""
        with self.reader.open(current.span) as planned:
            current.result.duration = planned.duration
            current.assembly = Assembly(current.result, planned.windows, current.span.offset)
            for index, wave in planned.audio:
                queue.append((current, index, wave))
                if sum(w.size for _, _, w in queue) >= self.read_ahead:
                    self._run(queue, in_flight)

    def _check(self) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise Cancelled("cancelled")

    def _run(self, queue: list[Queued], in_flight: list[_Input]) -> None:
        """Run the network on every queued window, in length-sorted padded batches, empty the queue, and decode
        the segments that are now complete."""
        lengths = [wave.size for _, _, wave in queue]
        order = sorted(range(len(queue)), key=lengths.__getitem__)
        for batch in pack_sorted(order, lengths, self.max_batch_seconds * SAMPLE_RATE):
            outputs = self.recognizer.run([queue[i][2] for i in batch])
            for i, log_probs in zip(batch, outputs):
                inp, index, _ = queue[i]
                self.assembler.add(inp.assembly, index, log_probs)
        queue.clear()
        for inp in in_flight:
            if inp.result.error is None and inp.assembly is not None:
                self.assembler.decode_ready(inp.assembly)

    def _finished(self, in_flight: list[_Input]) -> Iterator[Result]:
        """Yield the inputs at the front of ``in_flight`` that are complete, their transcripts joined."""
        while in_flight:
            front = in_flight[0]
            if front.result.error is None and front.assembly is not None:
                self.assembler.decode_ready(front.assembly)  # an input with no speech has nothing to wait for
            if not front.complete:
                return
            in_flight.pop(0)
            yield front.result if front.result.error else self.assembler.finish(front.assembly)
