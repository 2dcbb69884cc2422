"""CTC log-probabilities -> text, behind one small interface that every decoder implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

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
    words: list[Word] = field(default_factory=list)  # filled by word alignment (asr.align) when asked
    alternatives: list["Hypothesis"] = field(default_factory=list)  # n-best list, best first (beam search)


class Decoder(ABC):
    """Turns a batch of log-probabilities into one hypothesis per utterance."""

    @abstractmethod
    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """
        Args:
            log_probs: ``(batch, frames, vocab)`` log-probabilities (any device).
            lengths: ``(batch,)`` valid frames per utterance.
        """

    def describe(self) -> str:
        """A short label for reports, e.g. ``greedy`` or ``beam 50 + lexicon + LM (weight 1.5, word score 3)``."""
        return "greedy"


class GreedyDecoder(Decoder):
    """Best token per frame, then collapse repeats and drop blanks."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        best, best_ids = log_probs.detach().float().max(dim=-1)  # (batch, frames)
        best, best_ids, lengths = best.cpu(), best_ids.cpu(), lengths.cpu()
        hyps = []
        for b in range(best_ids.shape[0]):
            n = int(lengths[b])
            ids = best_ids[b, :n]
            if n == 0:
                hyps.append(Hypothesis(text=""))
                continue
            changed = torch.ones(n, dtype=torch.bool)
            changed[1:] = ids[1:] != ids[:-1]
            keep = changed & (ids != BLANK)
            frames = keep.nonzero().flatten().tolist()
            tokens = ids[keep].tolist()
            text = " ".join(self.vocab.decode(tokens).split())  # no leading/doubled spaces
            hyps.append(Hypothesis(text=text, tokens=tokens, frames=frames, score=float(best[b, :n].sum())))
        return hyps
