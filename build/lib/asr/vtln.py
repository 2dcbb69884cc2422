"""Test-time vocal tract length normalisation (VTLN): each utterance is read through the filterbank warp under
which the decoder scores it best.

Why: a model trained on few voices is sharply tuned to their vocal tracts: warping the filterbank of the demo
model's own `test` voices by 10 % costs it 13-15 WER points, and a voice it never heard may read best through a
warp well away from 1 (docs/decoding.md).
Speaker-adaptive HMM systems choose each speaker's warp by maximum likelihood over a grid of warps (Lee &
Rose, 1996); a CTC model gives no likelihood of the audio, so the score here is the decoder's own score
of its best hypothesis per output frame (greedy: the path's mean log-probability; beam search: the decoder's
acoustic + LM + word score), chosen per utterance, no labels used. The warps span 0.80-1.25 (symmetric about 1
on a log scale, about the spread of adult vocal tract lengths); a warp other than 1 must beat 1 by a margin, so
that the noise in a short utterance's scores does not move the voices the model knows off their reading.

It costs one forward pass and one decoding per warp (10 by default), and needs the filterbank, so a PyTorch
model: an exported ONNX graph computes its features with the fixed one inside.
"""

from __future__ import annotations

import inspect
from collections import Counter

import numpy as np

from asr.decode import Decoder, GreedyDecoder
from asr.errors import AsrError

WARPS = tuple(round(0.80 + 0.05 * i, 2) for i in range(10))  # 0.80 ... 1.25
# Score per frame a warp must gain over 1.0, by decoder: the best on the demo's dev split (training voices) of
# 0, 0.01, 0.02, 0.03, 0.05 (greedy) and 0, 0.05, 0.1 (beam 50 + LM + lexicon, the tuned weights; docs/decoding.md).
GREEDY_MARGIN = 0.02
BEAM_MARGIN = 0.05


class SpeakerNormalized:
    """Wraps a PyTorch :class:`asr.checkpoint.Recognizer` as an :class:`asr.transcribe.Network` that runs it at
    every warp and keeps, for each waveform, the output of the warp that ``decoder`` scores best per frame.

    ``chosen`` counts the warps picked so far (for reports and tests).
    """

    def __init__(self, recognizer, decoder: Decoder | None = None, warps: tuple[float, ...] = WARPS,
                 margin: float | None = None):
        if "warp" not in inspect.signature(recognizer.run).parameters:
            raise AsrError("VTLN needs a PyTorch model (model.pt or a .ckpt): an ONNX file has its filterbank "
                           "built in")
        if not warps or min(warps) <= 0:
            raise AsrError(f"VTLN warps must be positive factors, got {list(warps)}")
        self.recognizer = recognizer
        self.decoder = decoder or GreedyDecoder(recognizer.vocab)
        self.warps = tuple(sorted(set(warps) | {1.0}))
        greedy = isinstance(self.decoder, GreedyDecoder)
        self.margin = margin if margin is not None else GREEDY_MARGIN if greedy else BEAM_MARGIN
        self.vocab = recognizer.vocab
        self.frame_seconds = recognizer.frame_seconds
        self.chosen: Counter[float] = Counter()

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities at its best warp.
        Every warp gives the same frame count, so outputs of different warps are interchangeable."""
        return self._search(waves)[0]

    def pick(self, waves: list[np.ndarray]) -> list[float]:
        """Each waveform's best warp (for a reader that starts from it: :class:`asr.adapt.Adapted`)."""
        return self._search(waves)[1]

    def _search(self, waves: list[np.ndarray]) -> tuple[list[np.ndarray], list[float]]:
        best = self.recognizer.run(waves)
        scores = [self.score(lp) + self.margin for lp in best]  # 1.0 is kept unless beaten by the margin
        picked = [1.0] * len(waves)
        for warp in self.warps:
            if warp == 1.0:
                continue
            for i, lp in enumerate(self.recognizer.run(waves, warp=warp)):
                score = self.score(lp)
                if score > scores[i]:
                    best[i], scores[i], picked[i] = lp, score, warp
        self.chosen.update(picked)
        return best, picked

    def score(self, log_probs: np.ndarray) -> float:
        """The decoder's score of its best hypothesis for ``(frames, vocab)`` log-probabilities, per frame."""
        frames = log_probs.shape[0]
        if not frames:
            return 0.0
        return self.decoder.decode(log_probs[None], np.array([frames]))[0].score / frames

    def describe(self) -> str:
        return f"VTLN {min(self.warps):.2f}-{max(self.warps):.2f}"
