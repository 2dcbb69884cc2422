import pytest
import torch

from asr.align import align_words
from asr.decode import GreedyDecoder
from asr.text import Vocabulary
from lm_fixtures import emissions

FRAME = 0.04  # seconds per output frame (10 ms hop, x4 subsampling)


def utterance(words: list[tuple[str, float, float]], total: float) -> torch.Tensor:
    """Emissions of a synthetic utterance whose words occupy known spans (seconds): silence (blank) elsewhere,
    and inside a word each character owns an equal share of the frames, spiking on its first frame."""
    n = round(total / FRAME)
    frames = [{"": 0.99} for _ in range(n)]
    for i, (word, start, end) in enumerate(words):
        a, b = round(start / FRAME), round(end / FRAME)
        per = (b - a) / len(word)
        for k, c in enumerate(word):
            lo, hi = a + round(k * per), a + round((k + 1) * per)
            frames[lo] = {c: 0.95}
            for t in range(lo + 1, hi):
                frames[t] = {c: 0.6, "": 0.39}
        if i + 1 < len(words):  # a space somewhere in the pause
            gap = round((end + words[i + 1][1]) / 2 / FRAME)
            frames[gap] = {" ": 0.9}
    return emissions(frames)


def test_word_times_fall_within_100_ms_of_the_truth():
    truth = [("the", 0.20, 0.52), ("cat", 0.80, 1.24), ("sat", 1.60, 2.00), ("down", 2.30, 2.90)]
    lp = utterance(truth, 3.2)
    vocab = Vocabulary()
    hyp = GreedyDecoder(vocab).decode(lp[None], torch.tensor([lp.shape[0]]))[0]
    assert hyp.text == "the cat sat down"
    words = align_words(lp, hyp.tokens, vocab, FRAME, offset=10.0)
    assert [w.word for w in words] == ["the", "cat", "sat", "down"]
    for w, (_, start, end) in zip(words, truth):
        assert abs(w.start - 10.0 - start) <= 0.1 and abs(w.end - 10.0 - end) <= 0.1
        assert 0.5 < w.confidence <= 1.0


def test_confidence_is_lower_for_uncertain_words():
    lp = emissions([{"": 0.99}, {"a": 0.99}, {"": 0.99}, {" ": 0.99}, {"b": 0.4, "c": 0.35, "": 0.25}, {"": 0.99}])
    vocab = Vocabulary()
    words = align_words(lp, vocab.encode("a b"), vocab, FRAME)
    assert words[0].confidence > 0.9 and words[1].confidence == pytest.approx(0.4, abs=0.01)


def test_empty_hypothesis_has_no_words():
    assert align_words(emissions([{"": 0.99}] * 4), [], Vocabulary(), FRAME) == []
    assert align_words(torch.zeros(0, len(Vocabulary())), [], Vocabulary(), FRAME) == []
