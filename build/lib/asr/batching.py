"""Length bucketing and padding: one implementation for training batches and for transcription.

Sorting items by length and packing neighbours keeps padding low (about 1 % on the demo corpus, measured by
``make bench``); a batch is bounded by its *padded* size, longest item x count, so memory stays bounded
whatever the mix of lengths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # only pad() needs torch: the ONNX inference path batches without it
    import torch


def pack_sorted(order: Sequence[int], lengths: Sequence[float], budget: float) -> list[list[int]]:
    """Greedily cut ``order`` (indices in ascending ``lengths``) into batches of padded size <= ``budget``.

    The padded size of a batch is its longest length times its count; an item longer than the budget gets
    a batch of its own. ``lengths`` and ``budget`` share a unit (seconds, samples).
    """
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0.0
    for i in order:
        n = lengths[i]
        if batch and max(longest, n) * (len(batch) + 1) > budget:
            batches.append(batch)
            batch, longest = [], 0.0
        batch.append(i)
        longest = max(longest, n)
    if batch:
        batches.append(batch)
    return batches


def bucket(lengths: Sequence[float], budget: float, key: Sequence[float] | None = None) -> list[list[int]]:
    """Indices of ``lengths`` in batches of padded size <= ``budget``, shortest first.

    ``key`` (default: ``lengths``) orders the items, e.g. lengths with a little random jitter so that each
    training epoch groups neighbours differently.
    """
    key = lengths if key is None else key
    return pack_sorted(sorted(range(len(key)), key=key.__getitem__), lengths, budget)


def pad(sequences: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(length_i, ...)]`` -> zero-padded ``(batch, max_length, ...)`` and ``(batch,)`` lengths."""
    import torch

    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True), lengths
