"""Length bucketing: the padded size of every batch stays within the budget; nothing is lost or repeated."""

import torch

from asr.batching import bucket, pack_sorted, pad


def test_batches_respect_the_padded_budget_and_cover_every_item():
    lengths = [5, 1, 3, 1, 2, 8, 13, 2]
    batches = bucket(lengths, budget=6)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert max(lengths[i] for i in b) * len(b) <= 6 or len(b) == 1  # longer than the budget: alone
    assert batches[0] == [1, 3, 4]  # 1, 1, 2 -> 2 x 3 = 6; the next 2 would make 8
    assert [6] in batches and [5] in batches


def test_pack_sorted_keeps_the_given_order():
    assert pack_sorted([2, 0, 1], {0: 2, 1: 3, 2: 1}, budget=4) == [[2, 0], [1]]


def test_pad_gives_lengths_and_zero_padding():
    batch, lengths = pad([torch.ones(2), torch.ones(3)])
    assert lengths.tolist() == [2, 3]
    assert batch.tolist() == [[1, 1, 0], [1, 1, 1]]
