import math

import torch

from asr.decode import GreedyDecoder
from asr.text import BLANK, Vocabulary

VOCAB = Vocabulary()


def emissions(frames: list[str]) -> torch.Tensor:
    """One frame per entry: '_' is blank, any other character its token; that token gets probability 0.9."""
    lp = torch.full((len(frames), len(VOCAB)), math.log(0.1 / (len(VOCAB) - 1)))
    for t, c in enumerate(frames):
        lp[t, BLANK if c == "_" else VOCAB.encode(c)[0]] = math.log(0.9)
    return lp


def decode(*utts: list[str]) -> list[str]:
    n = max(len(u) for u in utts)
    batch = torch.stack([torch.cat([emissions(u), emissions(["_"] * (n - len(u)))]) for u in utts])
    lengths = torch.tensor([len(u) for u in utts])
    return [h.text for h in GreedyDecoder(VOCAB).decode(batch, lengths)]


def test_collapses_repeats_and_drops_blanks():
    assert decode(list("hh_ee_ll_lloo")) == ["hello"]


def test_blank_separates_double_letters():
    assert decode(list("l_l")) == ["ll"]
    assert decode(list("ll")) == ["l"]


def test_spaces_trimmed_and_squeezed():
    assert decode(list("  a_  _ b ")) == ["a b"]


def test_batch_respects_lengths():
    # The second utterance is shorter: frames past its length (here 'x') must be ignored.
    batch = torch.stack([emissions(list("abc")), emissions(list("abx"))])
    hyps = GreedyDecoder(VOCAB).decode(batch, torch.tensor([3, 2]))
    assert [h.text for h in hyps] == ["abc", "ab"]
    assert hyps[0].frames == [0, 1, 2]


def test_empty_input():
    hyps = GreedyDecoder(VOCAB).decode(torch.zeros(1, 0, len(VOCAB)), torch.tensor([0]))
    assert hyps[0].text == ""
