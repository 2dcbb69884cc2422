"""Scoring a model on a manifest: transcribe every utterance, then WER/CER and a per-utterance report."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from asr.fileio import atomic_write_text
from asr.manifest import read_manifest
from asr.metrics import ErrorRates, error_rates, grouped
from asr.progress import tracked
from asr.transcribe import Transcriber
from asr.windows import Span


def evaluate(transcriber: Transcriber, manifest: str | os.PathLike,
             progress: bool = False) -> tuple[ErrorRates, list, dict[str, ErrorRates]]:
    """Transcribe ``manifest`` and score it. Returns the error rates, the per-utterance results and each
    speaker's rates (sorted by name; empty when the manifest names no speakers).

    A file that fails to load counts as an empty hypothesis (all its words deleted), so a broken file
    raises the WER instead of vanishing from it.
    """
    utts = read_manifest(manifest, vocab=transcriber.recognizer.vocab)
    spans = [Span.of(u) for u in utts]
    results = transcriber.transcribe(spans)
    results = list(tracked(results, len(spans), "evaluate", "utt", enabled=progress))
    hyps = [r.hypothesis.text if r.hypothesis else "" for r in results]
    rates = error_rates([u.text for u in utts], hyps)
    return rates, results, grouped(rates, [u.speaker for u in utts])  # unlabelled utterances are left out


def _summary(rates: ErrorRates) -> dict:
    return {"wer": rates.wer, "cer": rates.cer, "word_errors": rates.word_errors, "words": rates.words,
            "char_errors": rates.char_errors, "chars": rates.chars}


def write_report(path: str | os.PathLike, rates: ErrorRates, results: list, manifest: str, model: str,
                 speakers: dict[str, ErrorRates] | None = None) -> None:
    """JSON report: ``wer``/``cer`` as fractions, totals, each speaker's (``speakers``, from :func:`evaluate`,
    when the manifest names them) and, per utterance, reference, hypothesis and errors."""
    by = {name: {**_summary(r), "utterances": len(r.utterances)} for name, r in (speakers or {}).items()}
    report = {
        "model": str(model),
        "manifest": str(manifest),
        **_summary(rates),
        **({"speakers": by} if by else {}),
        "utterances": [
            {"audio_filepath": r.path, **asdict(u), **({"error": r.error} if r.error else {})}
            for r, u in zip(results, rates.utterances)
        ],
    }
    atomic_write_text(path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")
