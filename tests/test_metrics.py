import pytest

from asr.metrics import error_rates, grouped, utterance_errors


@pytest.mark.parametrize(
    "ref, hyp, word_errors, words, char_errors",
    [
        ("the cat sat", "the cat sat", 0, 3, 0),
        ("the cat sat", "the cat", 1, 3, 4),  # one deletion; " sat" is four characters
        ("the cat sat", "the bat sat", 1, 3, 1),
        ("the cat", "the cat sat", 1, 2, 4),  # insertion
        ("hello world", "", 2, 2, 11),
        ("Hello, World!", "hello world", 0, 2, 0),  # scored on normalised text
        ("", "noise", 1, 0, 5),  # empty reference: all insertions
    ],
)
def test_utterance_errors(ref, hyp, word_errors, words, char_errors):
    u = utterance_errors(ref, hyp)
    assert (u.word_errors, u.words, u.char_errors) == (word_errors, words, char_errors)


def test_corpus_rates_are_pooled_not_averaged():
    rates = error_rates(["a b c d", "e f"], ["a b c d", "x"])
    assert rates.word_errors == 2 and rates.words == 6
    assert rates.wer == pytest.approx(2 / 6)
    assert 0 < rates.cer < 1


def test_length_mismatch():
    with pytest.raises(ValueError):
        error_rates(["a"], [])


def test_grouped_pools_each_label_and_leaves_unlabelled_out():
    rates = error_rates(["a b", "c d e f", "g", "h i"], ["a b", "c x", "y", "h i"])
    by = grouped(rates, ["kal", "slt", "kal", ""])
    assert list(by) == ["kal", "slt"]
    assert (by["kal"].word_errors, by["kal"].words) == (1, 3) and by["kal"].wer == pytest.approx(1 / 3)
    assert (by["slt"].word_errors, by["slt"].words) == (3, 4)
    with pytest.raises(ValueError):
        grouped(rates, ["kal"])
