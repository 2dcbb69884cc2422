"""Test-time VTLN: per utterance, the warp its decoder scores best per frame, 1.0 unless beaten by the margin."""

from __future__ import annotations

import numpy as np
import pytest

from asr import checkpoint
from asr.cli import main
from asr.errors import AsrError
from asr.text import Vocabulary
from asr.decode import GreedyDecoder, Hypothesis
from asr.vtln import BEAM_MARGIN, GREEDY_MARGIN, WARPS, SpeakerNormalized


class Peaked:
    """A stand-in network whose confidence on wave i peaks at ``best[i]``: the output at warp w is a constant
    log-probability of ``-|w - best[i]|`` for the top class, so the chosen warp can be read off the output."""

    vocab = Vocabulary()
    frame_seconds = 0.04

    def __init__(self, best: list[float]):
        self.best = best
        self.calls: list[float] = []

    def run(self, waves, warp: float = 1.0):
        self.calls.append(warp)
        out = []
        for i, w in enumerate(waves):
            lp = np.full((w.size // 640, len(self.vocab)), -20.0, dtype=np.float32)
            lp[:, 0] = -abs(warp - self.best[i])
            out.append(lp)
        return out


def test_each_utterance_gets_its_own_best_warp():
    net = Peaked([1.2, 0.85, 1.0])
    vtln = SpeakerNormalized(net)
    waves = [np.zeros(n, dtype=np.float32) for n in (6400, 3200, 1280)]
    out = vtln.run(waves)
    assert [lp.shape[0] for lp in out] == [10, 5, 2]  # every warp gives the wave's own frame count
    assert [float(lp[0, 0]) for lp in out] == [0.0, 0.0, 0.0]  # the output of the peak warp, for each wave
    assert vtln.chosen == {1.2: 1, 0.85: 1, 1.0: 1}
    assert sorted(net.calls) == sorted(WARPS)  # one pass per warp, 1.0 included once


def test_a_warp_must_beat_the_unwarped_reading_by_the_margin():
    # wave 0 peaks at 1.01: the best grid warp (1.0) is itself; wave 1 peaks at 1.03, where 1.05 scores
    # -0.02 and 1.0 -0.03, a gain of 0.01 < margin 0.02: it stays at 1.0; wave 2 gains 0.2 at 1.25.
    vtln = SpeakerNormalized(Peaked([1.01, 1.03, 1.45]), margin=0.02)
    vtln.run([np.zeros(1280, dtype=np.float32)] * 3)
    assert vtln.chosen == {1.0: 2, 1.25: 1}
    loose = SpeakerNormalized(Peaked([1.01, 1.03, 1.45]), margin=0.0)
    loose.run([np.zeros(1280, dtype=np.float32)] * 3)
    assert loose.chosen == {1.0: 1, 1.05: 1, 1.25: 1}


def test_the_score_is_the_decoders_per_frame():
    class Scripted:  # a beam decoder stand-in: its score per frame peaks at warp 0.9, whatever greedy says
        def decode(self, log_probs, lengths):
            warp = float(-log_probs[0, 0, 1])  # Peaked writes nothing in column 1: see below
            return [Hypothesis(text="", score=-abs(warp - 0.9) * int(lengths[0]))]

    class Marked(Peaked):
        def run(self, waves, warp: float = 1.0):
            out = super().run(waves, warp)
            for lp in out:
                lp[:, 1] = -warp  # lets the scripted decoder see which warp it reads
            return out

    vtln = SpeakerNormalized(Marked([1.2]), Scripted())
    assert vtln.margin == BEAM_MARGIN
    vtln.run([np.zeros(3200, dtype=np.float32)])
    assert vtln.chosen == {0.9: 1}  # the decoder's choice, not greedy's (1.2)
    assert SpeakerNormalized(Peaked([1.0])).margin == GREEDY_MARGIN
    assert SpeakerNormalized(Peaked([1.0]), GreedyDecoder(Vocabulary())).score(np.zeros((0, 29))) == 0.0


def test_a_network_without_a_warp_is_refused():
    class Fixed(Peaked):
        def run(self, waves):  # noqa: D102 - an ONNX graph: features built in
            return []

    with pytest.raises(AsrError, match="PyTorch model"):
        SpeakerNormalized(Fixed([1.0]))
    with pytest.raises(AsrError, match="positive"):
        SpeakerNormalized(Peaked([1.0]), warps=(0.0, 1.1))


def test_the_real_model_reads_the_chosen_warps_output(tiny_model, speech):
    from asr.audio import read_audio

    rec = checkpoint.load(tiny_model)
    waves = [read_audio(p) for p, _ in speech[:3]]
    plain = rec.run(waves)
    np.testing.assert_array_equal(rec.run(waves, warp=1.0)[0], plain[0])
    assert not np.allclose(rec.run(waves, warp=1.2)[0], plain[0])  # the warp reaches the features
    vtln = SpeakerNormalized(rec)
    out = vtln.run(waves)
    for wave, lp in zip(waves, out):
        candidates = {w: rec.run([wave], warp=w)[0] for w in WARPS}
        scores = {w: vtln.score(c) for w, c in candidates.items()}
        best = max(scores, key=scores.get)
        want = best if scores[best] >= scores[1.0] + vtln.margin else 1.0
        np.testing.assert_allclose(lp, candidates[want], atol=1e-5)


def test_evaluate_and_transcribe_with_vtln(capsys, tiny_model, speech, speech_manifest):
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", str(speech_manifest), "--vtln"]) == 0
    assert "[VTLN 0.80-1.25 + greedy]" in capsys.readouterr().out
    assert main(["transcribe", "--model", str(tiny_model), "--vtln", str(speech[0][0])]) == 0
