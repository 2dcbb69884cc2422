"""Word timestamps and confidences: CTC forced alignment of a hypothesis against its own log-probabilities.

Whichever decoder produced the text, ``torchaudio.functional.forced_align`` finds the single best frame path
for its tokens; each character then owns a span of frames, and a word spans its first to its last character.
A word's confidence is the mean posterior probability of its characters over the frames they own.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF

from asr.decode import Word, as_numpy
from asr.text import BLANK, Vocabulary


def align_words(log_probs: torch.Tensor, tokens: list[int], vocab: Vocabulary, frame_seconds: float,
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
    if not tokens or log_probs.shape[0] == 0:
        return []
    emissions = torch.as_tensor(as_numpy(log_probs)).unsqueeze(0)
    targets = torch.tensor([tokens], dtype=torch.int32)
    try:
        path, scores = AF.forced_align(emissions, targets, blank=BLANK)
    except RuntimeError:
        return []  # more tokens than frames allow: no CTC path exists (never the case for decoder output)
    space = vocab.encode(" ")[0]
    words: list[Word] = []
    word: list = []  # token spans of the current word

    def close() -> None:
        if word:
            frames = sum(s.end - s.start for s in word)
            conf = sum(s.score * (s.end - s.start) for s in word) / frames
            words.append(Word(word=vocab.decode([s.token for s in word]),
                              start=round(offset + word[0].start * frame_seconds, 3),
                              end=round(offset + word[-1].end * frame_seconds, 3),
                              confidence=round(float(conf), 4)))

    for span in AF.merge_tokens(path[0], scores[0].exp()):
        if span.token == space:
            close()
            word = []
        else:
            word.append(span)
    close()
    return words
