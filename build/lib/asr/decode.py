"""CTC log-probabilities -> text, behind one small interface that every decoder implements.

Decoders take NumPy arrays or torch tensors; this module itself needs only NumPy, so the ONNX inference path
decodes greedily without importing torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from asr.text import BLANK, Vocabulary


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the file
    end: float  # seconds
    confidence: float  # mean posterior probability of the word's characters over their frames, 0..1


@dataclass
class Hypothesis:
    text: str  # the decoded transcript, normalised text
    tokens: list[int] = field(default_factory=list)  # token ids, blanks and repeats removed
    frames: list[int] = field(default_factory=list)  # output frame index at which each token was emitted
    score: float = 0.0  # log-probability of the path (greedy) or the decoder's score
    words: list[Word] = field(default_factory=list)  # filled by word alignment when asked
    alternatives: list["Hypothesis"] = field(default_factory=list)  # n-best list, best first (beam search)
    spans: list[tuple[int, int]] = field(default_factory=list)  # greedy: frames [start, end) each token's run holds


def as_numpy(array) -> np.ndarray:
    """A float32 NumPy view of a NumPy array or a torch tensor (on any device)."""
    if hasattr(array, "detach"):  # a torch tensor, without importing torch here
        array = array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


class Decoder(ABC):
    """Turns a batch of log-probabilities into one hypothesis per utterance."""

    @abstractmethod
    def decode(self, log_probs, lengths) -> list[Hypothesis]:
        """
        Args:
            log_probs: ``(batch, frames, vocab)`` log-probabilities (NumPy, or torch on any device).
            lengths: ``(batch,)`` valid frames per utterance.
        """

    def describe(self) -> str:
        """A short label for reports, e.g. ``greedy`` or ``beam 50 + lexicon + LM (weight 1.5, word score 3)``."""
        return "greedy"


class GreedyDecoder(Decoder):
    """Best token per frame, then collapse repeats and drop blanks."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    def decode(self, log_probs, lengths) -> list[Hypothesis]:
        log_probs, lengths = as_numpy(log_probs), np.asarray(as_numpy(lengths), dtype=np.int64)
        hyps = []
        for b in range(log_probs.shape[0]):
            n = int(lengths[b])
            if n == 0:
                hyps.append(Hypothesis(text=""))
                continue
            ids = log_probs[b, :n].argmax(axis=-1)
            best = np.take_along_axis(log_probs[b, :n], ids[:, None], axis=-1)[:, 0]
            starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))  # first frame of each run
            ends = np.append(starts[1:], n)
            keep = ids[starts] != BLANK
            tokens = ids[starts][keep].tolist()
            text = " ".join(self.vocab.decode(tokens).split())  # no leading/doubled spaces
            hyps.append(Hypothesis(text=text, tokens=tokens, frames=starts[keep].tolist(), score=float(best.sum()),
                                   spans=list(zip(starts[keep].tolist(), ends[keep].tolist()))))
        return hyps


def greedy_words(log_probs, hyp: Hypothesis, vocab: Vocabulary, frame_seconds: float,
                 offset: float = 0.0) -> list[Word]:
    """Word times and confidences from a greedy hypothesis' own path (no forced alignment needed).

    Each character owns the run of frames where it was the best token; a word spans its first to its last
    character, and its confidence is the mean posterior of its characters over those frames.

    Args:
        log_probs: ``(frames, vocab)`` log-probabilities of the utterance the hypothesis was decoded from.
        frame_seconds: seconds per output frame; offset: seconds added to every time.
    """
    probs = np.exp(as_numpy(log_probs))
    space = vocab.encode(" ")[0]
    words: list[Word] = []
    current: list[tuple[int, int, int]] = []  # (token, start frame, end frame) of the word being read

    def close() -> None:
        if current:
            frames = [(a, b) for _, a, b in current]
            conf = sum(float(probs[a:b, t].sum()) for t, a, b in current) / sum(b - a for a, b in frames)
            words.append(Word(word=vocab.decode([t for t, _, _ in current]),
                              start=round(offset + frames[0][0] * frame_seconds, 3),
                              end=round(offset + frames[-1][1] * frame_seconds, 3), confidence=round(conf, 4)))
            current.clear()

    for token, (a, b) in zip(hyp.tokens, hyp.spans):
        if token == space:
            close()
        else:
            current.append((token, a, b))
    close()
    return words
