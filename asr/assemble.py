"""Window outputs -> transcripts: segments decoded in order as their windows come in, words and times in the file.

A *segment* is a piece of the output: one window read whole, or the kept centres of a run of fallback windows
(:mod:`asr.windows`). Its frames are decoded as soon as every one of its windows has been through the network,
its times are mapped back to the file, and the file's result joins its segments. Needs NumPy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from asr.decode import Decoder, Hypothesis, Word, greedy_words
from asr.text import BLANK, Vocabulary
from asr.windows import Window


@dataclass
class Segment:
    """A piece of a transcript, with times in the file."""

    id: int
    start: float  # seconds in the file
    end: float
    text: str
    words: list[Word] = field(default_factory=list)  # with times in the file, when timestamps were asked
    tokens: list[int] = field(default_factory=list)  # the model's character ids
    avg_logprob: float = 0.0  # the hypothesis' score per output frame (greedy: mean log-probability of its path)
    no_speech_prob: float = 0.0  # mean probability of the CTC blank over the segment's frames
    frames: int = 0  # output frames it holds (its share of ``Result.log_probs``, when kept)


@dataclass
class Result:
    """One input's transcript, or the reason it has none."""

    path: str
    hypothesis: Hypothesis | None = None  # the whole input's transcript; None when it failed
    error: str | None = None  # the one-line reason, naming the file
    duration: float = 0.0  # seconds of audio
    segments: list[Segment] = field(default_factory=list)
    log_probs: np.ndarray | None = None  # ``(frames, vocab)``, when kept (kept frames only)

    @property
    def text(self) -> str:
        return self.hypothesis.text if self.hypothesis else ""

    @property
    def words(self) -> list[Word]:
        return self.hypothesis.words if self.hypothesis else []


class Assembly:
    """One input being assembled: its windows, their outputs until decoded, its decoded segments."""

    def __init__(self, result: Result, windows: list[Window], offset: float = 0.0):
        self.result = result
        self.windows = windows
        self.offset = offset  # seconds of the span's start in the file
        self.outputs: dict[int, np.ndarray] = {}  # window index -> kept log-probs, until its segment is decoded
        self.hypotheses: list[Hypothesis] = []  # one per decoded segment, in order
        self.log_probs: list[np.ndarray] = []  # per decoded segment, when kept
        groups: dict[int, list[int]] = {}
        for index, w in enumerate(windows):
            groups.setdefault(w.segment, []).append(index)
        self.groups = list(groups.values())  # each segment's window indices, in order

    @property
    def complete(self) -> bool:
        return len(self.hypotheses) == len(self.groups)

    def ready(self) -> list[list[int]]:
        """The next segments, in order, whose windows have all been through the network."""
        ready = []
        for indices in self.groups[len(self.hypotheses):]:
            if not all(i in self.outputs for i in indices):
                break
            ready.append(indices)
        return ready


class Assembler:
    """Decodes segments and builds results, with one set of settings for every input."""

    def __init__(self, decoder: Decoder, vocab: Vocabulary, frame_seconds: float, timestamps: bool = False,
                 keep_log_probs: bool = False, on_segment: Callable[[Result, Segment], None] | None = None):
        self.decoder = decoder
        self.vocab = vocab
        self.frame_seconds = frame_seconds
        self.timestamps = timestamps  # word start, end and confidence of the best hypothesis
        self.keep_log_probs = keep_log_probs  # keep each input's log-probabilities (for LM tuning)
        self.on_segment = on_segment  # told of each segment as soon as it is decoded, in order (streaming)

    def add(self, assembly: Assembly, index: int, log_probs: np.ndarray) -> None:
        """Window ``index``'s ``(frames, vocab)`` output: the frames of its kept span are held for decoding."""
        w = assembly.windows[index]
        if w.keep_start <= w.start and w.keep_end >= w.end:
            assembly.outputs[index] = log_probs
            return
        fs = self.frame_seconds
        first = max(math.ceil((w.keep_start - w.start) / fs - 1e-6), 0)
        last = min(math.ceil((w.keep_end - w.start) / fs - 1e-6), log_probs.shape[0])
        assembly.outputs[index] = log_probs[first:last]

    def decode_ready(self, assembly: Assembly) -> None:
        """Decode, in order and in one batch, the segments whose windows are all in; tell ``on_segment``."""
        ready = assembly.ready()
        if not ready:
            return
        log_probs = [np.concatenate([assembly.outputs.pop(i) for i in indices]) for indices in ready]
        for indices, hyp, lp in zip(ready, self._decode(log_probs), log_probs):
            start = assembly.windows[indices[0]].keep_start + assembly.offset
            end = assembly.windows[indices[-1]].keep_end + assembly.offset
            segment = self._segment(len(assembly.hypotheses), start, end, hyp, lp)
            assembly.hypotheses.append(hyp)
            assembly.result.segments.append(segment)
            if self.keep_log_probs:
                assembly.log_probs.append(lp)
            if self.on_segment:
                self.on_segment(assembly.result, segment)

    def finish(self, assembly: Assembly) -> Result:
        """The input's transcript from its segments' (a single segment's hypothesis is kept whole: n-best...)."""
        hyps, result = assembly.hypotheses, assembly.result
        if len(hyps) == 1:
            result.hypothesis = hyps[0]
        else:
            result.hypothesis = Hypothesis(text=" ".join(h.text for h in hyps if h.text),
                                           words=[w for h in hyps for w in h.words], score=sum(h.score for h in hyps))
        if self.keep_log_probs:
            parts = assembly.log_probs
            result.log_probs = np.concatenate(parts) if parts else np.zeros((0, len(self.vocab)), np.float32)
            assembly.log_probs = []
        return result

    def _segment(self, index: int, start: float, end: float, hyp: Hypothesis, log_probs: np.ndarray) -> Segment:
        if self.timestamps:
            hyp.words = self.words(log_probs, hyp, start)
        frames = max(log_probs.shape[0], 1)
        blank = float(np.exp(log_probs[:, BLANK]).mean()) if log_probs.size else 1.0
        return Segment(index, round(start, 3), round(end, 3), hyp.text, hyp.words, hyp.tokens,
                       avg_logprob=round(hyp.score / frames, 4), no_speech_prob=round(blank, 4),
                       frames=log_probs.shape[0])

    def _decode(self, log_probs: list[np.ndarray]) -> list[Hypothesis]:
        lengths = np.array([lp.shape[0] for lp in log_probs], dtype=np.int64)
        padded = np.zeros((len(log_probs), int(lengths.max(initial=0)), len(self.vocab)), dtype=np.float32)
        for i, lp in enumerate(log_probs):
            padded[i, : lp.shape[0]] = lp
        return self.decoder.decode(padded, lengths)

    def words(self, log_probs: np.ndarray, hyp: Hypothesis, offset: float) -> list[Word]:
        """The hypothesis' words with times (seconds, ``offset`` added) and confidences."""
        if hyp.spans or not hyp.tokens:  # a greedy path already says which frames each character holds
            return greedy_words(log_probs, hyp, self.vocab, self.frame_seconds, offset)
        from asr.align import align_words  # beam hypotheses: CTC forced alignment (torchaudio)

        return align_words(log_probs, hyp.tokens, self.vocab, self.frame_seconds, offset=offset)
