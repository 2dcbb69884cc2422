"""Word timestamps and confidences: CTC forced alignment of a hypothesis against its own log-probabilities.

Whichever decoder produced the text, the Viterbi algorithm finds the single best frame path for its tokens (the
same path as ``torchaudio.functional.forced_align``, in NumPy, so beam search gives word times without torch);
each character then owns a span of frames, and a word spans its first to its last character. A word's
confidence is the mean posterior probability of its characters over the frames they own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.decode import Word, as_numpy
from asr.text import BLANK, Vocabulary


@dataclass(frozen=True)
class TokenSpan:
    token: int
    start: int  # frames [start, end)
    end: int
    score: float  # mean posterior probability over the span


def forced_align(log_probs: np.ndarray, tokens: list[int], blank: int = BLANK) -> np.ndarray | None:
    """The best CTC frame path for ``tokens``: ``(frames,)`` token ids (``blank`` between them), or None when
    there are too few frames for the tokens (each repeat needs a blank between).

    Args:
        log_probs: ``(frames, vocab)`` log-probabilities.
    """
    frames = log_probs.shape[0]
    states = np.full(2 * len(tokens) + 1, blank, dtype=np.int64)  # blank, t1, blank, t2, ..., blank
    states[1::2] = tokens
    n = states.size
    # A state may be reached from two states back when it is a token unlike the token two back.
    skip = np.zeros(n, dtype=bool)
    skip[2:] = (states[2:] != blank) & (states[2:] != states[:-2])
    score = np.full(n, -np.inf)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((frames, n), dtype=np.int8)  # 0: stayed, 1: from the previous state, 2: from two back
    for t in range(1, frames):
        stay, step = score, np.concatenate([[-np.inf], score[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        candidates = np.stack([stay, step, jump])
        back[t] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[t, states]
    end = n - 1 if n == 1 or score[n - 1] >= score[n - 2] else n - 2
    if not np.isfinite(score[end]):
        return None
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = states[end]
        end -= back[t, end]
    return path


def merge_tokens(path: np.ndarray, probs: np.ndarray, blank: int = BLANK) -> list[TokenSpan]:
    """Runs of one token in a frame path (blanks left out), each with its frames' mean probability."""
    spans, start = [], 0
    for t in range(1, path.size + 1):
        if t == path.size or path[t] != path[start]:
            if path[start] != blank:
                spans.append(TokenSpan(int(path[start]), start, t, float(probs[start:t].mean())))
            start = t
    return spans


def align_words(log_probs, tokens: list[int], vocab: Vocabulary, frame_seconds: float,
                offset: float = 0.0) -> list[Word]:
    """
    Args:
        log_probs: ``(frames, vocab)`` log-probabilities of one utterance (valid frames only; NumPy or torch).
        tokens: the hypothesis' token ids (no blanks), words separated by the space character.
        vocab: the model's vocabulary.
        frame_seconds: seconds per output frame.
        offset: seconds added to every time (the segment's start in its file).

    Returns:
        One :class:`Word` per word of the hypothesis, times in seconds; ``[]`` for an empty hypothesis.
    """
    log_probs = as_numpy(log_probs).astype(np.float64)
    if not tokens or log_probs.shape[0] == 0:
        return []
    path = forced_align(log_probs, tokens)
    if path is None:
        return []  # more tokens than frames allow: no CTC path exists (never the case for decoder output)
    probs = np.exp(log_probs[np.arange(path.size), path])
    space = vocab.encode(" ")[0]
    words: list[Word] = []
    word: list[TokenSpan] = []

    def close() -> None:
        if word:
            frames = sum(s.end - s.start for s in word)
            conf = sum(s.score * (s.end - s.start) for s in word) / frames
            words.append(Word(word=vocab.decode([s.token for s in word]),
                              start=round(offset + word[0].start * frame_seconds, 3),
                              end=round(offset + word[-1].end * frame_seconds, 3),
                              confidence=round(float(conf), 4)))

    for span in merge_tokens(path, probs):
        if span.token == space:
            close()
            word = []
        else:
            word.append(span)
    close()
    return words
