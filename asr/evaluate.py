"""Scoring a model on a manifest: transcribe every utterance, then WER/CER and a per-utterance report."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from asr.assemble import Result
from asr.decode import GreedyDecoder, Hypothesis
from asr.fileio import atomic_write_text
from asr.manifest import read_manifest
from asr.metrics import ErrorRates, error_rates, grouped
from asr.progress import tracked
from asr.transcribe import Transcriber
from asr.windows import Span


@dataclass
class Scores:
    """One decoding of a manifest, scored."""

    rates: ErrorRates
    results: list[Result]  # per utterance, in manifest order
    speakers: dict[str, ErrorRates]  # each speaker's rates, sorted by name; empty when the manifest names none


def evaluate(transcriber: Transcriber, manifest: str | os.PathLike, progress: bool = False,
             greedy_too: bool = False) -> tuple[Scores, Scores | None]:
    """Transcribe ``manifest`` and score it. Returns its :class:`Scores` and, with ``greedy_too``, the scores of
    greedy decoding of the same network outputs (one network pass for both; the transcriber must keep its
    log-probabilities), else None.

    A file that fails to load counts as an empty hypothesis (all its words deleted), so a broken file
    raises the WER instead of vanishing from it.
    """
    utts = read_manifest(manifest, vocab=transcriber.recognizer.vocab)
    spans = [Span.of(u) for u in utts]
    greedy = GreedyDecoder(transcriber.recognizer.vocab) if greedy_too else None
    results, greedy_results = [], []
    for r in tracked(transcriber.transcribe(spans), len(spans), "evaluate", "utt", enabled=progress):
        if greedy is not None:
            greedy_results.append(_greedy_reading(r, greedy))
            r.log_probs = None  # kept for the greedy reading only: a large corpus's would fill memory
        results.append(r)
    refs, speakers = [u.text for u in utts], [u.speaker for u in utts]
    return _scores(refs, speakers, results), _scores(refs, speakers, greedy_results) if greedy_too else None


def _scores(refs: list[str], speakers: list[str | None], results: list[Result]) -> Scores:
    rates = error_rates(refs, [r.text for r in results])
    return Scores(rates, results, grouped(rates, speakers))  # unlabelled utterances are left out of speakers


def _greedy_reading(result: Result, greedy: GreedyDecoder) -> Result:
    """``result`` read by ``greedy`` from its kept log-probabilities, segment by segment as the transcriber
    decodes, so the text is what a greedy transcriber would give."""
    if result.error or result.hypothesis is None:
        return result
    if result.log_probs is None:
        raise ValueError("greedy_too needs a transcriber that keeps its log-probabilities")
    bounds = np.cumsum([s.frames for s in result.segments])[:-1]
    texts = [greedy.decode(part[None], np.array([part.shape[0]]))[0].text
             for part in np.split(result.log_probs, bounds)]
    return Result(result.path, Hypothesis(text=" ".join(t for t in texts if t)), duration=result.duration)


def _summary(rates: ErrorRates) -> dict:
    return {"wer": rates.wer, "cer": rates.cer, "word_errors": rates.word_errors, "words": rates.words,
            "char_errors": rates.char_errors, "chars": rates.chars}


def write_report(path: str | os.PathLike, scores: Scores, manifest: str, model: str) -> None:
    """JSON report: ``wer``/``cer`` as fractions, totals, each speaker's (``speakers``, when the manifest names
    them) and, per utterance, reference, hypothesis and errors."""
    rates = scores.rates
    by = {name: {**_summary(r), "utterances": len(r.utterances)} for name, r in scores.speakers.items()}
    report = {
        "model": str(model),
        "manifest": str(manifest),
        **_summary(rates),
        **({"speakers": by} if by else {}),
        "utterances": [
            {"audio_filepath": r.path, **asdict(u), **({"error": r.error} if r.error else {})}
            for r, u in zip(scores.results, rates.utterances)
        ],
    }
    atomic_write_text(path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
