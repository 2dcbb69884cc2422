"""LM weight tuning: decode a dev set over a grid of LM weights and word scores, keep the best.

The network runs once: the dev set's log-probabilities are computed a single time and cached on disk (keyed
by the model file and the manifest's content), so re-tuning with another grid or LM costs only decoding.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from asr.beam import BeamOptions, BeamSearchDecoder, DecodeConfig
from asr.decode import GreedyDecoder
from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.manifest import read_manifest
from asr.metrics import ErrorRates, error_rates
from asr.progress import tracked
from asr.text import Vocabulary
from asr.transcribe import Network, Transcriber
from asr.windows import Span

DEFAULT_LM_WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
DEFAULT_WORD_SCORES = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class Trial:
    lm_weight: float
    word_score: float
    rates: ErrorRates


def _key(model_path: str | os.PathLike, manifest: str | os.PathLike, reading: str = "") -> str:
    st = os.stat(model_path)
    h = hashlib.sha1(f"{Path(model_path).resolve()}:{st.st_size}:{st.st_mtime_ns}:{reading}".encode())
    h.update(Path(manifest).read_bytes())
    return h.hexdigest()


def _reading(recognizer: Network) -> str:
    """How ``recognizer`` reads, when it is a reading of a model (:class:`asr.adapt.Adapted`); "" for the model."""
    describe = getattr(recognizer, "describe", None)
    return describe() if describe else ""


def dev_log_probs(recognizer: Network, model_path: str, manifest: str, cache: str | os.PathLike | None = None,
                  progress: bool = False) -> tuple[list[str], list[torch.Tensor]]:
    """References and ``(frames, vocab)`` log-probabilities of every utterance of ``manifest`` (cached).
    ``recognizer``: the model, or a reading of it (:class:`asr.adapt.Adapted`), whose ``describe()`` joins the
    cache key."""
    key = _key(model_path, manifest, _reading(recognizer))
    if cache is not None and Path(cache).is_file():
        try:
            saved = torch.load(cache, weights_only=True)
            if saved.get("key") == key:
                return saved["references"], saved["log_probs"]
        except Exception:  # a stale or damaged cache is simply recomputed
            pass
    utts = read_manifest(manifest, vocab=recognizer.vocab)
    spans = [Span.of(u) for u in utts]
    transcriber = Transcriber(recognizer, GreedyDecoder(recognizer.vocab), keep_log_probs=True)
    results = transcriber.transcribe(spans)
    results = tracked(results, len(spans), "dev log-probs", "utt", enabled=progress)
    refs, log_probs = [], []
    for u, r in zip(utts, results):
        if r.error:  # tuning on a partial set is still meaningful; the file is named on stderr by the caller
            print(f"asr: error: {r.error} (left out of tuning)", file=sys.stderr)
            continue
        refs.append(u.text)
        log_probs.append(torch.from_numpy(r.log_probs))
    if cache is not None:
        with atomic_path(cache) as tmp:
            torch.save({"key": key, "references": refs, "log_probs": log_probs}, tmp)
    return refs, log_probs


def decode_all(decoder, log_probs: list[torch.Tensor], batch: int = 64) -> list[str]:
    """Decode a list of ``(frames, vocab)`` tensors in padded batches; returns the texts."""
    texts = []
    for i in range(0, len(log_probs), batch):
        group = log_probs[i:i + batch]
        lengths = torch.tensor([lp.shape[0] for lp in group])
        padded = torch.nn.utils.rnn.pad_sequence(group, batch_first=True)
        texts += [h.text for h in decoder.decode(padded, lengths)]
    return texts


_grid: tuple | None = None  # a tuning worker's (characters, lm, lexicon, options, log_probs), given at start


def _start_worker(characters, lm, lexicon, options, arrays) -> None:
    global _grid
    _grid = (characters, lm, lexicon, options, [torch.from_numpy(a) for a in arrays])


def _point_decoder(vocab, lm: str, lexicon: str | None, options: BeamOptions, point) -> BeamSearchDecoder:
    """The beam decoder of one grid point ``(lm_weight, word_score)``."""
    return BeamSearchDecoder(vocab, lm, lexicon, replace(options, lm_weight=point[0], word_score=point[1], nbest=1))


def _decode_point(lm_weight: float, word_score: float) -> list[str]:
    """One grid point's transcripts, in a tuning worker."""
    characters, lm, lexicon, options, log_probs = _grid
    return decode_all(_point_decoder(Vocabulary(characters), lm, lexicon, options, (lm_weight, word_score)), log_probs)


def tune(vocab, references: list[str], log_probs: list[torch.Tensor], lm: str, lexicon: str | None,
         options: BeamOptions = BeamOptions(), *, lm_weights=DEFAULT_LM_WEIGHTS, word_scores=DEFAULT_WORD_SCORES,
         on_trial=None, processes: int = 1) -> tuple[DecodeConfig, Trial, list[Trial]]:
    """Grid search; returns the best decoding config (lowest WER, then CER), its trial and every trial.

    ``processes`` > 1 decodes that many grid points at once in worker processes: a beam decode is one thread
    that holds the GIL (:mod:`asr.decoder_pool`), so processes are the only way to use more cores. Same answers.
    """
    points = [(w, s) for w in lm_weights for s in word_scores]
    processes = max(min(int(processes), len(points)), 1)
    trials = []

    def scored(point, texts) -> None:
        trial = Trial(point[0], point[1], error_rates(references, texts))
        trials.append(trial)
        if on_trial:
            on_trial(trial)

    if processes == 1:
        for point in points:
            scored(point, decode_all(_point_decoder(vocab, lm, lexicon, options, point), log_probs))
    else:
        # Built here first: a bad LM or lexicon fails in the caller, in one line, before any worker starts.
        _point_decoder(vocab, lm, lexicon, options, points[0])
        spawn = multiprocessing.get_context("spawn")  # as asr.decoder_pool: no forked copy of a threaded parent
        with ProcessPoolExecutor(processes, mp_context=spawn, initializer=_start_worker,
                                 initargs=(vocab.characters, lm, lexicon, options,
                                           [lp.numpy() for lp in log_probs])) as pool:  # plain arrays: no shared fds
            futures = [pool.submit(_decode_point, w, s) for w, s in points]
            try:
                for point, future in zip(points, futures):  # in grid order, as they finish
                    scored(point, future.result())
            except BrokenProcessPool:
                raise AsrError("an LM tuning worker process died (out of memory?)") from None
    best = min(trials, key=lambda t: (t.rates.wer, t.rates.cer, abs(t.lm_weight), abs(t.word_score)))
    return DecodeConfig(lm=lm, lexicon=lexicon,
                        beam=replace(options, lm_weight=best.lm_weight, word_score=best.word_score)), best, trials


def tune_lm(recognizer: Network, model_path: str, manifest: str, lm: str, *, out: str, lexicon: str | None = None,
            beam_size: int = 50, lm_weights=DEFAULT_LM_WEIGHTS, word_scores=DEFAULT_WORD_SCORES,
            cache: str | None = None, progress: bool = False, on_start=None, on_trial=None,
            processes: int = 1) -> tuple[ErrorRates, Trial]:
    """``asr tune-lm``: the greedy baseline and the grid search on a dev manifest; writes the best decoding
    config to ``out`` (YAML, with both WERs in its header). Returns the greedy error rates and the best trial.

    ``on_start(references, greedy_rates)`` is called before the grid, ``on_trial(trial)`` after each point;
    ``processes``: grid points decoded at once (:func:`tune`).
    """
    cache = cache or str(Path(out).with_suffix(".dev-log-probs.pt"))
    refs, log_probs = dev_log_probs(recognizer, model_path, manifest, cache, progress=progress)
    greedy = error_rates(refs, decode_all(GreedyDecoder(recognizer.vocab), log_probs))
    if on_start:
        on_start(refs, greedy)
    config, best, _ = tune(recognizer.vocab, refs, log_probs, lm, lexicon, BeamOptions(beam_size=beam_size),
                           lm_weights=lm_weights or DEFAULT_LM_WEIGHTS, word_scores=word_scores or DEFAULT_WORD_SCORES,
                           on_trial=on_trial, processes=processes)
    reading = _reading(recognizer)  # not the plain reading: the config says so
    config.save(out, comment=f"written by asr tune-lm on {manifest} ({len(refs)} utterances"
                             f"{', read ' + reading if reading else ''}): "
                             f"WER {100 * best.rates.wer:.2f} % (greedy {100 * greedy.wer:.2f} %)")
    return greedy, best
