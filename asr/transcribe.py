"""Files -> transcripts: batched loading, features, network and decoding, one bad file never stopping the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch

from asr.align import align_words
from asr.audio import SAMPLE_RATE, load_audio
from asr.batching import pack_sorted, pad
from asr.checkpoint import Recognizer
from asr.decode import Decoder, GreedyDecoder, Hypothesis
from asr.errors import AsrError
from asr.manifest import Utterance


@dataclass
class Result:
    path: str
    hypothesis: Hypothesis | None = None  # None when the file failed
    error: str | None = None  # the one-line reason, naming the file
    duration: float = 0.0  # seconds of audio
    log_probs: torch.Tensor | None = None  # ``(frames, vocab)`` on the CPU, when the transcriber keeps them


@dataclass(frozen=True)
class Segment:
    """A file, or a span of it (seconds), to transcribe."""

    path: str
    offset: float = 0.0
    duration: float | None = None

    @classmethod
    def of(cls, utt: Utterance) -> "Segment":
        """The span of a manifest utterance."""
        return cls(utt.audio_filepath, *utt.span)


class Transcriber:
    """Transcribes files in batches of up to ``max_batch_seconds`` of padded audio, yielding in input order."""

    def __init__(self, recognizer: Recognizer, decoder: Decoder | None = None, max_batch_seconds: float = 200.0,
                 chunk_files: int = 64, timestamps: bool = False, keep_log_probs: bool = False):
        self.recognizer = recognizer
        self.decoder = decoder or GreedyDecoder(recognizer.vocab)
        self.max_batch_seconds = max_batch_seconds
        self.chunk_files = chunk_files  # files read ahead and sorted by length to keep padding low
        self.timestamps = timestamps  # align words (start, end, confidence) of the best hypothesis
        self.keep_log_probs = keep_log_probs  # return each file's log-probabilities (for LM tuning)

    def _run(self, segments: list[Segment], results: list[Result], waves: list[torch.Tensor]) -> None:
        batch, lengths = pad(waves)
        log_probs, out_lengths = self.recognizer.log_probs(batch, lengths)
        hyps = self.decoder.decode(log_probs, out_lengths)
        if not (self.timestamps or self.keep_log_probs):
            for r, hyp in zip(results, hyps):
                r.hypothesis = hyp
            return
        log_probs = log_probs.float().cpu()
        for b, (seg, r, hyp) in enumerate(zip(segments, results, hyps)):
            lp = log_probs[b, : int(out_lengths[b])]
            if self.timestamps:
                hyp.words = align_words(lp, hyp.tokens, self.recognizer.vocab, self.recognizer.frame_seconds,
                                        offset=seg.offset)
            if self.keep_log_probs:
                r.log_probs = lp.clone()
            r.hypothesis = hyp

    def _transcribe_chunk(self, segments: list[Segment]) -> list[Result]:
        results = [Result(str(s.path)) for s in segments]
        waves: dict[int, torch.Tensor] = {}
        for i, s in enumerate(segments):
            try:
                wave = load_audio(s.path, offset=s.offset, duration=s.duration)
            except AsrError as e:
                results[i].error = str(e)
                continue
            results[i].duration = wave.numel() / SAMPLE_RATE
            waves[i] = wave
        lengths = {i: wave.numel() for i, wave in waves.items()}
        order = sorted(lengths, key=lengths.__getitem__)
        for batch in pack_sorted(order, lengths, self.max_batch_seconds * SAMPLE_RATE):
            self._run([segments[i] for i in batch], [results[i] for i in batch], [waves[i] for i in batch])
        return results

    def transcribe(self, segments: Iterable[Segment | str | os.PathLike]) -> Iterator[Result]:
        """Yield one :class:`Result` per input, in input order."""
        chunk: list[Segment] = []
        for s in segments:
            chunk.append(s if isinstance(s, Segment) else Segment(str(s)))
            if len(chunk) == self.chunk_files:
                yield from self._transcribe_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._transcribe_chunk(chunk)
