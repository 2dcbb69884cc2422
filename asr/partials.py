"""Reading one utterance while it is spoken: what it says so far, as a stable prefix and a tail that may change.

An :class:`UtteranceReader` is given the utterance's audio as it comes (by :class:`asr.stream.Stream`, which
learns where utterances start and end from :mod:`asr.endpoint`). The network reads it chunk by chunk
(:class:`asr.chunked.ChunkedReader`): words decoded from committed chunks and closed by a space never change again
(*stable*); the last word and a quick provisional reading of the audio past the last chunk are the *tail*. Models
that cannot stream (per-utterance feature normalisation, an encoder front-end, ONNX) reread the utterance so far
(:class:`asr.chunked.RereadReader`); their words become stable once they end ``stable_lag`` seconds before the audio
does. Partial readings are greedy; the utterance's :meth:`UtteranceReader.final` reading is its audio read again
whole, with the model's decoder: what ``asr transcribe`` gives for the same audio.
"""

from __future__ import annotations

import numpy as np

from asr.chunked import ChunkedReader, ChunkSettings, RereadReader
from asr.decode import Word
from asr.text import BLANK, Vocabulary
from asr.windows import Span


class UtteranceReader:
    """One utterance of a live stream, read as it grows; not thread-safe."""

    def __init__(self, network, vocab: Vocabulary, chunked: bool, chunking: ChunkSettings, stable_lag: float):
        """``network``: a recognizer with ``frame_seconds``; ``chunked``: read in chunks (else reread)."""
        self.vocab, self.chunked, self.stable_lag = vocab, chunked, stable_lag
        self.space = vocab.encode(" ")[0]
        self.frame_seconds = network.frame_seconds
        self.reader = ChunkedReader(network, chunking) if chunked else RereadReader(network)
        self.audio: list[np.ndarray] = []
        self.samples = 0
        self.committed: list[np.ndarray] = []  # (frames, vocab) log-probabilities that never change
        self.stable: list[str] = []
        self.stable_end = 0  # frame where decoding of the unstable part starts
        self.last_partial = ("", "")  # (stable, tail) last told

    def add(self, samples: np.ndarray) -> None:
        """The next ``(samples,)`` float32 of the utterance, at 16 kHz."""
        self.audio.append(samples)
        self.samples += samples.size
        self._commit(self.reader.accept(samples))

    def partial(self) -> tuple[str, str] | None:
        """``(stable, tail)`` as the audio so far reads, or None when that is what was said last time."""
        committed = self._committed()
        if self.chunked:
            self._settle(committed, committed.shape[0])
            tail = np.concatenate([committed[self.stable_end:], self.reader.provisional()])
        else:
            reading = self.reader.provisional()
            self._settle(reading, reading.shape[0] - int(self.stable_lag / self.frame_seconds))
            tail = reading[self.stable_end:]
        partial = (" ".join(self.stable), " ".join(w for w, _, _ in self.words(tail)))
        if partial == self.last_partial:
            return None
        self.last_partial = partial
        return partial

    def final(self, transcriber, samples: int, offset: float) -> tuple[str, list[Word], str]:
        """The first ``samples`` of the utterance read whole by ``transcriber`` (:meth:`asr.api.Model.transcriber`):
        its text, its words (times in seconds plus ``offset``), and what the live reading said of it."""
        audio = self._audio()[:max(samples, 0)]
        if not audio.size:
            return "", [], ""
        result = next(transcriber.transcribe([Span("<stream>", samples=audio)]))
        words = [Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence)
                 for w in result.words]
        return result.text, words, self._streamed()

    def _streamed(self) -> str:
        """The live reading's text of the whole utterance: every chunk committed (chunked), or the last reread."""
        if self.chunked:
            self._commit(self.reader.finish())
            log_probs = self._committed()
        else:
            log_probs = self.reader.provisional()
        return " ".join(w for w, _, _ in self.words(log_probs))

    def _commit(self, log_probs: np.ndarray) -> None:
        if log_probs.shape[0]:
            self.committed.append(log_probs)

    def _committed(self) -> np.ndarray:
        committed = np.concatenate(self.committed) if self.committed else np.zeros((0, len(self.vocab)), np.float32)
        self.committed = [committed] if committed.shape[0] else []
        return committed

    def _audio(self) -> np.ndarray:
        self.audio = [np.concatenate(self.audio)] if self.audio else []
        return self.audio[0] if self.audio else np.zeros(0, np.float32)

    def _settle(self, log_probs: np.ndarray, limit: int) -> None:
        """Words of ``log_probs[stable_end:]`` closed by a space that starts before frame ``limit`` become stable."""
        for word, closed, space in self.words(log_probs[self.stable_end:]):
            if not closed or self.stable_end + space >= limit:
                break
            self.stable.append(word)
            self.stable_end += space

    def words(self, log_probs: np.ndarray) -> list[tuple[str, bool, int]]:
        """The greedy path's words of ``(frames, vocab)`` log-probabilities: ``(word, closed by a space, frame
        where that space's run starts)``."""
        ids = log_probs.argmax(axis=-1) if log_probs.shape[0] else np.zeros(0, np.int64)
        words, current, previous = [], [], BLANK
        for frame, token in enumerate(ids.tolist()):
            if token != previous:
                if token == self.space:
                    if current:
                        words.append((self.vocab.decode(current), True, frame))
                        current = []
                elif token != BLANK:
                    current.append(token)
            previous = token
        if current:
            words.append((self.vocab.decode(current), False, ids.size))
        return words

