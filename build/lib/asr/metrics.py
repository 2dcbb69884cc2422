"""Word and character error rates with jiwer, on normalised text."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from asr.text import normalize


@dataclass
class UtteranceErrors:
    reference: str  # normalised reference
    hypothesis: str  # normalised hypothesis
    word_errors: int  # substitutions + deletions + insertions
    words: int  # reference words
    char_errors: int
    chars: int  # reference characters, spaces included


@dataclass
class ErrorRates:
    wer: float  # word errors / reference words, a fraction
    cer: float  # character errors / reference characters, a fraction
    word_errors: int
    words: int
    char_errors: int
    chars: int
    utterances: list[UtteranceErrors]


def _errors(out) -> int:
    return out.substitutions + out.deletions + out.insertions


def utterance_errors(reference: str, hypothesis: str) -> UtteranceErrors:
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:  # jiwer refuses an empty reference: every hypothesis token is an insertion
        return UtteranceErrors(ref, hyp, len(hyp.split()), 0, len(hyp), 0)
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    return UtteranceErrors(ref, hyp, _errors(words), len(ref.split()), _errors(chars), len(ref))


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """Corpus-level WER and CER: total errors over total reference words/characters."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    return totals([utterance_errors(r, h) for r, h in zip(references, hypotheses)])


def totals(utts: list[UtteranceErrors]) -> ErrorRates:
    """Corpus-level rates of scored utterances: summed errors over summed reference words/characters."""
    we, w = sum(u.word_errors for u in utts), sum(u.words for u in utts)
    ce, c = sum(u.char_errors for u in utts), sum(u.chars for u in utts)
    return ErrorRates(we / max(w, 1), ce / max(c, 1), we, w, ce, c, utts)


def grouped(rates: ErrorRates, labels: list[str]) -> dict[str, ErrorRates]:
    """Each label's corpus-level rates (e.g. per speaker), ``labels`` one per utterance of ``rates``; sorted by
    label. Utterances labelled "" are left out."""
    if len(labels) != len(rates.utterances):
        raise ValueError(f"{len(labels)} labels for {len(rates.utterances)} utterances")
    groups: dict[str, list[UtteranceErrors]] = {}
    for label, utt in zip(labels, rates.utterances):
        if label:
            groups.setdefault(label, []).append(utt)
    return {label: totals(groups[label]) for label in sorted(groups)}
