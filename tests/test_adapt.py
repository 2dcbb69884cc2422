"""Test-time adaptation: per utterance, the input layers are tuned to lower the posteriors' entropy, then restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr import checkpoint
from asr.adapt import Adapted, front_parameters, mean_entropy
from asr.audio import read_audio
from asr.cli import main
from asr.errors import AsrError


@pytest.fixture()
def recognizer(tiny_model):
    return checkpoint.load(tiny_model)


@pytest.fixture(scope="module")
def waves(speech):
    return [read_audio(p) for p, _ in speech[:3]]


def test_mean_entropy_is_zero_when_sure_and_log_vocab_when_uniform():
    sure = torch.full((4, 5), -1e4)
    sure[:, 2] = 0.0
    assert float(mean_entropy(sure)) == pytest.approx(0.0, abs=1e-6)
    assert float(mean_entropy(torch.zeros(3, 5))) == pytest.approx(np.log(5), rel=1e-6)


def test_adapting_lowers_the_entropy_of_each_utterance(recognizer, waves):
    adapted = Adapted(recognizer, steps=5, lr=1e-2)
    out = adapted.run(waves)
    assert len(adapted.entropy) == len(waves)
    for (before, after), lp, wave in zip(adapted.entropy, out, waves):
        assert after < before
        assert lp.shape == recognizer.run([wave])[0].shape  # the same frames as the plain reading
        assert float(mean_entropy(torch.from_numpy(lp))) == pytest.approx(after, rel=1e-4)


def test_the_weights_come_back_and_nothing_carries_between_utterances(recognizer, waves):
    state = {k: v.clone() for k, v in recognizer.model.state_dict().items()}
    plain = recognizer.run(waves)
    adapted = Adapted(recognizer, steps=3, lr=1e-2)
    together = adapted.run(waves)
    for k, v in recognizer.model.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert all(p.requires_grad for p in recognizer.model.parameters())  # as it was loaded
    np.testing.assert_array_equal(recognizer.run(waves)[0], plain[0])
    assert not np.allclose(together[0], plain[0])  # it did adapt
    alone = [adapted.run([w])[0] for w in reversed(waves)][::-1]  # another order, one at a time
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_threads_adapting_at_once_read_as_one_thread_alone(recognizer, waves):
    """A server's sessions share one network, and adapting tunes its weights in place: they must take turns."""
    import threading

    adapted = Adapted(recognizer, steps=3, lr=1e-2)
    alone = [adapted.run([w])[0] for w in waves[:2]]
    together: dict[int, np.ndarray] = {}
    start = threading.Barrier(4)

    def read(k: int) -> None:
        start.wait(timeout=60)
        together[k] = adapted.run([waves[k % 2]])[0]

    threads = [threading.Thread(target=read, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_allclose(together[k], alone[k % 2], atol=1e-5)


def test_only_the_input_layers_move(recognizer, waves):
    front = {id(p) for p in front_parameters(recognizer.model)}
    moved = []

    class Watching(torch.optim.Adam):
        def step(self, closure=None):
            moved.extend(id(p) for g in self.param_groups for p in g["params"] if p.grad is not None)
            return super().step(closure)

    adapted = Adapted(recognizer, steps=1)
    original, torch.optim.Adam = torch.optim.Adam, Watching
    try:
        adapted.run(waves[:1])
    finally:
        torch.optim.Adam = original
    assert set(moved) == front
    assert not any(id(p) in front for p in recognizer.model.output.parameters())


def test_the_chosen_warp_is_where_adaptation_starts(recognizer, waves):
    class Picker:
        def __init__(self, warp):
            self.warp = warp

        def pick(self, ws):
            return [self.warp] * len(ws)

        def describe(self):
            return "VTLN test"

    plain = Adapted(recognizer, steps=2).run(waves[:1])[0]
    np.testing.assert_allclose(Adapted(recognizer, steps=2, warps=Picker(1.0)).run(waves[:1])[0], plain, atol=1e-5)
    warped = Adapted(recognizer, steps=2, warps=Picker(1.2))
    assert not np.allclose(warped.run(waves[:1])[0], plain, atol=1e-3)
    assert warped.describe() == "VTLN test + adapted (2 steps)"


def test_bad_settings_and_networks_are_refused(recognizer):
    class Onnx:  # an ONNX graph: its features are built in, no warp, no gradients
        vocab = recognizer.vocab
        frame_seconds = recognizer.frame_seconds

        def run(self, waves):
            return []

    with pytest.raises(AsrError, match="PyTorch model"):
        Adapted(Onnx())
    with pytest.raises(AsrError, match="steps"):
        Adapted(recognizer, steps=0)


def test_evaluate_and_transcribe_with_adapt(capsys, tiny_model, speech, speech_manifest):
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", str(speech_manifest), "--adapt"]) == 0
    assert "[adapted (10 steps) + greedy]" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", str(speech_manifest), "--adapt",
                 "--vtln"]) == 0
    assert "[VTLN 0.80-1.25 + adapted (10 steps) + greedy]" in capsys.readouterr().out
    assert main(["transcribe", "--model", str(tiny_model), "--adapt", str(speech[0][0])]) == 0


def test_adapts_when_called_under_inference_mode(recognizer, waves):
    adapted = Adapted(recognizer, steps=2, lr=1e-2)
    with torch.inference_mode():
        inside = adapted.run(waves[:1])[0]
    np.testing.assert_allclose(inside, adapted.run(waves[:1])[0], atol=1e-5)
    assert adapted.entropy[0][1] < adapted.entropy[0][0]
