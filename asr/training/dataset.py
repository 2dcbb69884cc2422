"""The training dataset: manifest utterances -> (waveform, token ids), with waveform augmentation, and collation."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from asr.audio import load_audio
from asr.batching import pad
from asr.manifest import Utterance
from asr.text import Vocabulary
from asr.training.wave_augment import WaveAugment


class UtteranceDataset(Dataset):
    """Item ``i`` -> ``(waveform (samples,), token ids (length,))`` at 16 kHz.

    With ``augment``, waveforms are perturbed as epoch :attr:`epoch` dictates (see :mod:`asr.training.wave_augment`).
    """

    def __init__(self, utts: list[Utterance], vocab: Vocabulary = Vocabulary(), augment: WaveAugment | None = None):
        self.utts = utts
        self.vocab = vocab
        self.augment = augment
        self.epoch = 0
        self.cache = None  # an asr.training.feature_cache.FeatureCache: items are its features, not waveforms
        self.views = False  # with a cache: each epoch reads the view it draws (training), else view 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.utts[i]
        tokens = torch.tensor(self.vocab.encode(u.text), dtype=torch.long)
        if self.cache is not None:
            view = self.cache.pick(self.epoch, i) if self.views else 0
            return self.cache.load(u, view), tokens  # (frames, dim): a frozen encoder's, computed once
        offset, duration = u.span
        wave = load_audio(u.audio_filepath, offset=offset, duration=duration)
        if self.augment is not None:
            wave = self.augment(wave, self.epoch, i)
        return wave, tokens


class Unreadable(str):
    """What a dataset gives for an utterance it could not read: the reason, naming the shard and utterance."""


def collate(items: list[tuple[torch.Tensor, torch.Tensor] | Unreadable]) -> dict:
    """Pad a list of (waveform, tokens) into a batch, leaving out the utterances that could not be read.

    Returns ``waves (batch, samples)``, ``wave_lengths (batch,)`` (or, for items of cached encoder features
    ``(frames, dim)``, ``feats (batch, frames, dim)`` and ``feat_lengths``), ``targets (batch, tokens)`` padded with 0,
    ``target_lengths (batch,)``, and ``skipped``: the reasons of those left out, when there are any. A batch with
    nothing readable becomes 0.1 s of silence with ``weight`` 0, so its step trains nothing yet every DDP rank
    still steps together.
    """
    skipped = [item for item in items if isinstance(item, Unreadable)]
    items = [item for item in items if not isinstance(item, Unreadable)]
    extra = {"skipped": [str(s) for s in skipped]} if skipped else {}
    if not items:
        return {"waves": torch.zeros(1, 1600), "wave_lengths": torch.tensor([1600]),
                "targets": torch.zeros(1, 1, dtype=torch.long), "target_lengths": torch.tensor([0]),
                "weight": torch.tensor(0.0), **extra}
    inputs, input_lengths = pad([w for w, _ in items])
    targets, target_lengths = pad([t for _, t in items])
    names = ("feats", "feat_lengths") if inputs.dim() == 3 else ("waves", "wave_lengths")
    return {names[0]: inputs, names[1]: input_lengths, "targets": targets, "target_lengths": target_lengths,
            **extra}
