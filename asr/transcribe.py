"""Files -> transcripts: long files cut into segments, windows batched by length across files, decoding, word times.

Every input is a file or a span of one. A span no longer than ``max_segment`` seconds is read whole, as in
training; a longer one is cut by :mod:`asr.segment` (voice activity, then windows) and read block by block,
so memory stays bounded whatever the file's length. Windows from several inputs share padded batches of at most
``max_batch_seconds``; each segment's kept frames are decoded together and its times mapped back to the file.
One bad file never stops the rest: its result carries a one-line error instead. Needs NumPy only: the network
runs behind ``recognizer.run`` (PyTorch or ONNX Runtime).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol

import numpy as np

from asr.audio import SAMPLE_RATE, AudioFile
from asr.batching import pack_sorted
from asr.decode import Decoder, GreedyDecoder, Hypothesis, Word, greedy_words
from asr.errors import AsrError
from asr.segment import SegmentOptions, SileroVAD, Window, plan_windows, speech_regions
from asr.text import BLANK, Vocabulary

if TYPE_CHECKING:
    from asr.manifest import Utterance


class Cancelled(Exception):
    """The work was cancelled from outside (a server's client went away, or its time ran out)."""


class Network(Protocol):
    """What the transcriber needs of a model (PyTorch :class:`asr.checkpoint.Recognizer`, or ONNX)."""

    vocab: Vocabulary
    frame_seconds: float

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities."""


@dataclass
class SegmentResult:
    id: int
    start: float  # seconds in the file
    end: float
    text: str
    words: list[Word] = field(default_factory=list)  # with times in the file, when timestamps were asked
    tokens: list[int] = field(default_factory=list)  # the model's character ids
    avg_logprob: float = 0.0  # the hypothesis' score per output frame (greedy: mean log-probability of its path)
    no_speech_prob: float = 0.0  # mean probability of the CTC blank over the segment's frames


@dataclass
class Result:
    path: str
    hypothesis: Hypothesis | None = None  # the whole file's transcript; None when the file failed
    error: str | None = None  # the one-line reason, naming the file
    duration: float = 0.0  # seconds of audio
    segments: list[SegmentResult] = field(default_factory=list)
    log_probs: np.ndarray | None = None  # ``(frames, vocab)``, when the transcriber keeps them (kept frames only)

    @property
    def text(self) -> str:
        return self.hypothesis.text if self.hypothesis else ""

    @property
    def words(self) -> list[Word]:
        return self.hypothesis.words if self.hypothesis else []


@dataclass(frozen=True)
class Segment:
    """A file, or a span of it (seconds), to transcribe."""

    path: str
    offset: float = 0.0
    duration: float | None = None

    @classmethod
    def of(cls, utt: "Utterance") -> "Segment":
        """The span of a manifest utterance."""
        return cls(utt.audio_filepath, *utt.span)


class _Input:
    """One input in flight: its windows, their outputs as they arrive, its segments as they are decoded."""

    def __init__(self, segment: Segment):
        self.segment = segment
        self.result = Result(str(segment.path))
        self.windows: list[Window] | None = None  # None until planned
        self.outputs: dict[int, np.ndarray] = {}  # window index -> kept log-probs, until its segment is decoded
        self.hypotheses: list[Hypothesis] = []  # one per decoded segment, in order
        self.log_probs: list[np.ndarray] = []  # per decoded segment, when kept

    def segment_windows(self) -> list[list[int]]:
        by_segment: dict[int, list[int]] = {}
        for index, w in enumerate(self.windows or []):
            by_segment.setdefault(w.segment, []).append(index)
        return list(by_segment.values())

    @property
    def complete(self) -> bool:
        return self.result.error is not None or (
            self.windows is not None and len(self.hypotheses) == len(self.segment_windows()))


class Transcriber:
    """Transcribes inputs in padded batches of up to ``max_batch_seconds``, yielding results in input order."""

    def __init__(self, recognizer: Network, decoder: Decoder | None = None, max_batch_seconds: float = 200.0,
                 chunk_files: int = 64, timestamps: bool = False, keep_log_probs: bool = False,
                 segmenting: SegmentOptions = SegmentOptions(), progress: bool = False,
                 on_segment: Callable[[Result, SegmentResult], None] | None = None,
                 cancelled: threading.Event | None = None):
        self.recognizer = recognizer
        self.decoder = decoder or GreedyDecoder(recognizer.vocab)
        self.max_batch_seconds = max_batch_seconds
        self.chunk_files = chunk_files  # short inputs read ahead and sorted by length to keep padding low
        self.timestamps = timestamps  # word start, end and confidence of the best hypothesis
        self.keep_log_probs = keep_log_probs  # return each input's log-probabilities (for LM tuning)
        self.segmenting = segmenting
        self.progress = progress  # a progress bar per long file on standard error
        self.on_segment = on_segment  # told of each segment as soon as it is decoded, in order (streaming)
        self.cancelled = cancelled  # when set, the next block read raises Cancelled
        # Audio read ahead before the network runs: enough for full batches, small next to any memory budget.
        self.read_ahead = max(4 * max_batch_seconds, 2 * segmenting.max_segment)

    # -- the pipeline ----------------------------------------------------------------------------------------

    def transcribe(self, inputs: Iterable[Segment | str | os.PathLike]) -> Iterator[Result]:
        """Yield one :class:`Result` per input, in input order."""
        in_flight: list[_Input] = []
        queue: list[tuple[_Input, int, np.ndarray]] = []  # windows read, waiting for the network
        for item in inputs:
            current = _Input(item if isinstance(item, Segment) else Segment(str(item)))
            in_flight.append(current)
            try:
                for index, wave in self._read(current):
                    queue.append((current, index, wave))
                    if sum(w.size for _, _, w in queue) >= self.read_ahead * SAMPLE_RATE:
                        self._run(queue, in_flight)
            except AsrError as e:
                current.result.error = str(e)
                queue[:] = [q for q in queue if q[0] is not current]
            if len(in_flight) >= self.chunk_files:
                self._run(queue, in_flight)
            yield from self._finished(in_flight)
        self._run(queue, in_flight)
        yield from self._finished(in_flight)

    def _read(self, inp: _Input) -> Iterator[tuple[int, np.ndarray]]:
        """Plan ``inp``'s windows and yield ``(window index, audio)`` for each, reading the file block by block."""
        seg = inp.segment
        with AudioFile(seg.path) as f:
            total = f.duration - seg.offset if f.duration is not None else None
            if seg.duration is not None:
                total = seg.duration if total is None else min(seg.duration, total)
            if total is not None and total <= self.segmenting.max_segment:
                wave = f.read(seg.offset, seg.duration)
                inp.result.duration = wave.size / SAMPLE_RATE
                inp.windows = [Window(0, 0.0, inp.result.duration, 0.0, inp.result.duration)]
                yield 0, wave
                return
            inp.windows, inp.result.duration = self._plan(f, seg)
            yield from self._window_audio(f, seg, inp.windows, inp.result.duration)

    def _plan(self, f: AudioFile, seg: Segment) -> tuple[list[Window], float]:
        """First pass over a long span: voice activity, then windows. Returns them and the span's seconds."""
        vad, probs, samples = SileroVAD(), [], 0
        bar = self._bar(seg, "detecting speech")
        for block in f.blocks(seg.offset, seg.duration):
            self._check()
            probs.append(vad(block))
            samples += block.size
            if bar:
                bar.update(block.size / SAMPLE_RATE)
        probs.append(vad(np.zeros(0, dtype=np.float32), last=True))
        if bar:
            bar.close()
        duration = samples / SAMPLE_RATE
        if duration <= self.segmenting.max_segment:  # the header did not tell; short after all
            return [Window(0, 0.0, duration, 0.0, duration)], duration
        regions = speech_regions(np.concatenate(probs), self.segmenting)
        return plan_windows(regions, duration, self.segmenting, self.recognizer.frame_seconds), duration

    def _window_audio(self, f: AudioFile, seg: Segment, windows: list[Window],
                      duration: float) -> Iterator[tuple[int, np.ndarray]]:
        """Second pass: cut the windows (sorted by start, possibly overlapping) out of the block stream."""
        buffer, first = np.zeros(0, dtype=np.float32), 0  # samples held, and the index of buffer[0] in the span
        blocks = f.blocks(seg.offset, seg.duration)
        bar = self._bar(seg, "transcribing")
        for index, w in enumerate(windows):
            a, b = int(round(w.start * SAMPLE_RATE)), int(round(w.end * SAMPLE_RATE))
            while first + buffer.size < b:
                self._check()
                block = next(blocks, None)
                if block is None:
                    break
                buffer = np.concatenate([buffer, block])
            yield index, buffer[a - first: b - first].copy()
            if bar:
                bar.update(w.keep_end - w.keep_start)
            if index + 1 < len(windows):  # drop what no later window reads
                # at most what is held: the next window may start in a block not read yet
                drop = min(int(round(windows[index + 1].start * SAMPLE_RATE)) - first, buffer.size)
                if drop > 0:
                    buffer, first = buffer[drop:], first + drop
        if bar:
            bar.close()

    def _check(self) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise Cancelled("cancelled")

    def _bar(self, seg: Segment, what: str):
        if not (self.progress and sys.stderr.isatty()):
            return None
        from tqdm import tqdm

        return tqdm(desc=f"{os.path.basename(str(seg.path))}: {what}", unit="s", unit_scale=True, leave=False)

    def _run(self, queue: list[tuple[_Input, int, np.ndarray]], in_flight: list[_Input]) -> None:
        """Run the network on every queued window, in length-sorted padded batches, empty the queue, and decode
        the segments that are now complete."""
        lengths = [wave.size for _, _, wave in queue]
        order = sorted(range(len(queue)), key=lengths.__getitem__)
        for batch in pack_sorted(order, lengths, self.max_batch_seconds * SAMPLE_RATE):
            outputs = self.recognizer.run([queue[i][2] for i in batch])
            for i, lp in zip(batch, outputs):
                inp, index, _ = queue[i]
                inp.outputs[index] = self._kept(inp.windows[index], lp)
        queue.clear()
        for inp in in_flight:
            if inp.result.error is None:
                self._decode_ready(inp)

    def _kept(self, w: Window, log_probs: np.ndarray) -> np.ndarray:
        """The frames of a window's output that fall in its kept span (all of them for a whole segment)."""
        fs = self.recognizer.frame_seconds
        first = max(math.ceil((w.keep_start - w.start) / fs - 1e-6), 0)
        last = min(math.ceil((w.keep_end - w.start) / fs - 1e-6), log_probs.shape[0])
        if w.keep_start <= w.start and w.keep_end >= w.end:
            first, last = 0, log_probs.shape[0]
        return log_probs[first:last]

    # -- results ---------------------------------------------------------------------------------------------

    def _finished(self, in_flight: list[_Input]) -> Iterator[Result]:
        """Yield the inputs at the front of ``in_flight`` that are complete, their transcripts joined."""
        while in_flight:
            if in_flight[0].result.error is None:
                self._decode_ready(in_flight[0])  # an input with no speech has nothing to wait for
            if not in_flight[0].complete:
                return
            inp = in_flight.pop(0)
            if inp.result.error is None:
                self._join(inp)
            yield inp.result

    def _decode_ready(self, inp: _Input) -> None:
        """Decode, in order, the segments whose windows have all been through the network; tell ``on_segment``."""
        if inp.windows is None:
            return
        pending = inp.segment_windows()[len(inp.hypotheses):]
        ready = []
        for indices in pending:
            if not all(i in inp.outputs for i in indices):
                break
            ready.append(indices)
        if not ready:
            return
        log_probs = [np.concatenate([inp.outputs.pop(i) for i in indices]) for indices in ready]
        offset = inp.segment.offset
        for indices, hyp, lp in zip(ready, self._decode_batch(log_probs), log_probs):
            start, end = inp.windows[indices[0]].keep_start + offset, inp.windows[indices[-1]].keep_end + offset
            if self.timestamps:
                hyp.words = self._words(lp, hyp, start)
            frames = max(lp.shape[0], 1)
            segment = SegmentResult(len(inp.hypotheses), round(start, 3), round(end, 3), hyp.text, hyp.words,
                                    hyp.tokens, round(hyp.score / frames, 4),
                                    round(float(np.exp(lp[:, BLANK]).mean()) if lp.size else 1.0, 4))
            inp.hypotheses.append(hyp)
            inp.result.segments.append(segment)
            if self.keep_log_probs:
                inp.log_probs.append(lp)
            if self.on_segment:
                self.on_segment(inp.result, segment)

    def _join(self, inp: _Input) -> None:
        """The file's transcript from its segments' (a single segment's hypothesis is kept whole: n-best...)."""
        hyps = inp.hypotheses
        if len(hyps) == 1:
            inp.result.hypothesis = hyps[0]
        else:
            inp.result.hypothesis = Hypothesis(text=" ".join(h.text for h in hyps if h.text),
                                               words=[w for h in hyps for w in h.words], score=sum(h.score for h in hyps))
        if self.keep_log_probs:
            vocab = len(self.recognizer.vocab)
            inp.result.log_probs = np.concatenate(inp.log_probs) if inp.log_probs else np.zeros((0, vocab), np.float32)
            inp.log_probs = []

    def _decode_batch(self, log_probs: list[np.ndarray]) -> list[Hypothesis]:
        lengths = np.array([lp.shape[0] for lp in log_probs], dtype=np.int64)
        padded = np.zeros((len(log_probs), int(lengths.max(initial=0)), len(self.recognizer.vocab)), dtype=np.float32)
        for i, lp in enumerate(log_probs):
            padded[i, : lp.shape[0]] = lp
        return self.decoder.decode(padded, lengths)

    def _words(self, log_probs: np.ndarray, hyp: Hypothesis, offset: float) -> list[Word]:
        vocab, fs = self.recognizer.vocab, self.recognizer.frame_seconds
        if hyp.spans or not hyp.tokens:  # a greedy path already says which frames each character holds
            return greedy_words(log_probs, hyp, vocab, fs, offset)
        from asr.align import align_words  # beam hypotheses: CTC forced alignment (torchaudio)

        return align_words(log_probs, hyp.tokens, vocab, fs, offset=offset)
