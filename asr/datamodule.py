"""The LightningDataModule: manifests -> duration-bucketed DataLoaders."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from asr.data import DurationBatchSampler, UtteranceDataset, collate, read_manifest
from asr.text import Vocabulary


class ASRDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train_manifest: str,
        val_manifest: str,
        max_batch_seconds: float = 240.0,
        val_max_batch_seconds: float | None = None,
        max_duration: float = 30.0,
        num_workers: int = 1,
        seed: int = 0,
    ):
        """
        Args:
            train_manifest: JSON-lines manifest of the training utterances.
            val_manifest: manifest of the validation utterances (WER/CER are logged on it).
            max_batch_seconds: padded audio seconds per training batch (batch size varies with duration).
            val_max_batch_seconds: the same for validation; defaults to twice ``max_batch_seconds``.
            max_duration: training utterances longer than this many seconds are skipped.
            num_workers: DataLoader worker processes reading audio.
            seed: seeds the batch order; each epoch's order is reproducible from it.
        """
        super().__init__()
        self.train_manifest = train_manifest
        self.val_manifest = val_manifest
        self.max_batch_seconds = max_batch_seconds
        self.val_max_batch_seconds = val_max_batch_seconds or 2 * max_batch_seconds
        self.max_duration = max_duration
        self.num_workers = num_workers
        self.seed = seed
        self.vocab = Vocabulary()

    def setup(self, stage: str | None = None) -> None:
        train = [u for u in read_manifest(self.train_manifest, self.vocab) if u.duration <= self.max_duration]
        self.train_set = UtteranceDataset(train, self.vocab)
        self.val_set = UtteranceDataset(read_manifest(self.val_manifest, self.vocab), self.vocab)

    def _loader(self, dataset: UtteranceDataset, max_seconds: float, shuffle: bool) -> DataLoader:
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        sampler = DurationBatchSampler(
            [u.duration for u in dataset.utts], max_seconds, shuffle=shuffle, seed=self.seed,
            num_replicas=world, rank=rank,
        )
        if self.trainer is not None:
            sampler.set_epoch(self.trainer.current_epoch)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),  # page-locked buffers only help copies to a GPU
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.max_batch_seconds, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_max_batch_seconds, shuffle=False)
