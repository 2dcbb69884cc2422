"""The alignment clean-up's score on hand-built CTC log-probabilities with known answers."""

import math

import numpy as np
import pytest

from asr.corpora.cleanup import ctc_loss, outliers


def frames(path, vocab=4, sure=0.9):
    """(frames, vocab) log-probabilities that put ``sure`` on each frame's token of ``path``."""
    lp = np.full((len(path), vocab), math.log((1 - sure) / (vocab - 1)))
    lp[np.arange(len(path)), path] = math.log(sure)
    return lp


def test_a_transcript_the_audio_says_costs_little_and_another_costs_much():
    lp = frames([0, 1, 1, 0, 2, 0])  # blank a a blank b blank: "ab"
    assert ctc_loss(lp, [1, 2]) < 1.0
    assert ctc_loss(lp, [3, 3]) > 8.0
    assert ctc_loss(lp, [1, 2]) == pytest.approx(-np.logaddexp.reduce(
        [sum(lp[t, s] for t, s in enumerate(p)) for p in _paths(6, [1, 2])]), rel=1e-4)


def test_too_few_frames_for_the_text_is_infinite():
    assert ctc_loss(frames([1, 2]), [1, 1, 1]) == math.inf


def test_the_threshold_follows_the_bulk_not_the_outliers():
    values = [1.0, 1.1, 0.9, 1.05, 0.95, 9.0, math.inf]
    threshold = outliers(values, k=4)
    assert 1.1 < threshold < 9.0


def _paths(frames_, tokens, blank=0):
    """Every CTC path of ``frames_`` frames that collapses to ``tokens`` (brute force)."""
    import itertools

    out = []
    for p in itertools.product(range(4), repeat=frames_):
        collapsed = [k for i, k in enumerate(p) if k != blank and (i == 0 or p[i - 1] != k)]
        if collapsed == tokens:
            out.append(p)
    return out
