"""The LightningDataModule: manifests (or Lhotse Shar shards, :mod:`asr.training.shards`) -> duration-bucketed
DataLoaders, distributed-aware and resumable.

Lightning must not swap our batch sampler for its DistributedSampler (``trainer.use_distributed_sampler:
false`` in the defaults): each rank builds the same duration buckets from the seed and takes its own share.
The position in the epoch travels in the checkpoint (:meth:`state_dict`), so ``asr train --resume`` goes on
with the next unseen batch instead of starting the epoch again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from asr.errors import AsrError
from asr.manifest import Utterance, read_manifest
from asr.text import CHARACTERS, Vocabulary
from asr.training.dataset import UtteranceDataset, collate
from asr.training.feature_cache import FeatureCache
from asr.training.sampler import DurationBatchSampler
from asr.training.shards import ShardBatchSampler, ShardDataset, ShardIndex
from asr.training.stats import drawn
from asr.training.wave_augment import WaveAugment, WaveAugmentConfig


@dataclass
class Mix:
    """The training utterances of one or several manifests, and which of them each epoch trains on.

    A manifest of weight ``w`` is read ``int(w)`` times every epoch; a fractional part (0.5) is a share of it drawn
    afresh each epoch from ``seed`` and the epoch, so over epochs the whole manifest is heard, not one fixed half
    (a fixed share left half the demo's synthetic speech unused: recipes/synthetic/RESULTS.md)."""

    utts: list[Utterance]  # every copy an epoch may use; a fractional share's manifest is in it once more
    always: list[int]  # positions in ``utts`` every epoch trains on
    pools: list[tuple[int, int, int]]  # (first, end, count): ``count`` positions drawn from [first, end) each epoch
    seed: int = 0

    def epoch(self, epoch: int) -> list[int] | None:
        """Positions in :attr:`utts` that ``epoch`` trains on; None when it is all of them."""
        if not self.pools:
            return None
        drawn_now = [i for k, (first, end, count) in enumerate(self.pools)
                     for i in random.Random(f"asr/mix/{self.seed}/{k}/{epoch}").sample(range(first, end), count)]
        return self.always + sorted(drawn_now)


def mixed(manifests: str | list[str], weights: list[float] | None, vocab: Vocabulary, seed: int = 0,
          max_duration: float = float("inf")) -> Mix:
    """The utterances of one manifest, or of several each read ``weight`` times an epoch (see :class:`Mix`), the
    ones longer than ``max_duration`` seconds left out: how the demo mixes real and synthetic speech."""
    paths = [manifests] if isinstance(manifests, str) else list(manifests)
    weights = [1.0] * len(paths) if weights is None else list(weights)
    if len(weights) != len(paths) or any(w < 0 for w in weights):
        raise AsrError(f"data.train_weights: {len(paths)} non-negative weights needed, one per train_manifest; "
                       f"got {weights}")
    utts: list[Utterance] = []
    always: list[int] = []
    pools: list[tuple[int, int, int]] = []
    for path, weight in zip(paths, weights):
        read = [u for u in read_manifest(path, vocab) if u.duration <= max_duration]
        always += range(len(utts), len(utts) + len(read) * int(weight))
        utts += read * int(weight)
        if (count := round((weight % 1) * len(read))) > 0:
            pools.append((len(utts), len(utts) + len(read), count))
            utts += read
    return Mix(utts, always, pools, seed)


class ASRDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train_manifest: str | list[str] | None = None,
        val_manifest: str = "",
        train_weights: list[float] | None = None,
        train_shards: str | None = None,
        max_batch_seconds: float = 240.0,
        val_max_batch_seconds: float | None = None,
        max_duration: float = 30.0,
        num_workers: int = 1,
        seed: int = 0,
        sortagrad: bool = False,
        augment: WaveAugmentConfig = WaveAugmentConfig(),
        vocabulary: str = CHARACTERS,
        feature_cache: str = "data/feature_cache",
        feature_views: int = 1,
    ):
        """
        Args:
            train_manifest: JSON-lines manifest of the training utterances, or a list of them to mix.
            train_weights: with a list of manifests, how many times each one's utterances are seen an epoch (2:
                each twice; 0.5: half of them, drawn afresh each epoch from ``seed``); None = once each.
            val_manifest: manifest of the validation utterances (WER/CER are logged on it).
            train_shards: instead of ``train_manifest``, a folder of Lhotse Shar shards (``asr shard``), for
                corpora too large to read as one file per utterance.
            max_batch_seconds: padded audio seconds per training batch (batch size varies with duration).
            val_max_batch_seconds: the same for validation; defaults to twice ``max_batch_seconds``.
            max_duration: training utterances longer than this many seconds are skipped.
            num_workers: DataLoader worker processes reading audio.
            seed: seeds the batch order and the augmentation; each epoch is reproducible from it.
            sortagrad: the first epoch in order of increasing duration, then shuffled (DeepSpeech 2).
            augment: speed perturbation, noise and reverberation of training audio (off by default).
            vocabulary: the model's characters (linked from ``model.vocabulary`` by ``asr train``).
            feature_cache: where a frozen encoder's features (``model.features.kind`` whisper, moonshine) are
                kept once computed (:mod:`asr.training.feature_cache`); log-mel is computed as training goes.
            feature_views: with such an encoder, the versions of each training utterance cached: 1 = as it is
                (``augment`` does not apply); n = as it is and n - 1 copies augmented by ``augment``, each epoch
                reading one drawn afresh. Each view costs the cache its time and disk again.
        """
        super().__init__()
        if (train_manifest is None) == (train_shards is None):
            raise AsrError("data: give train_manifest or train_shards (one of the two)")
        if not val_manifest:
            raise AsrError("data: val_manifest is needed (validation reads a manifest)")
        self.train_manifest, self.train_shards = train_manifest, train_shards
        self.val_manifest = val_manifest
        self.train_weights = train_weights
        self.max_batch_seconds = max_batch_seconds
        self.val_max_batch_seconds = val_max_batch_seconds or 2 * max_batch_seconds
        self.max_duration = max_duration
        self.num_workers = num_workers
        self.seed = seed
        self.sortagrad = sortagrad
        self.augment = augment
        self.vocab = Vocabulary(vocabulary)
        self.feature_cache = feature_cache
        self.feature_views = feature_views
        self._resume: dict | None = None
        self.mix: Mix | None = None  # the manifests' utterances and each epoch's share (not with shards)

    def setup(self, stage: str | None = None) -> None:
        wave_augment = WaveAugment(self.augment, self.seed) if self.augment.active else None
        if self.train_shards is not None:
            index = ShardIndex(self.train_shards, self.vocab, self.max_duration)
            print(f"{len(index)} training utterances in {len(index.shards)} shards of {self.train_shards}"
                  + (f" ({len(index.skipped)} unreadable shards left out)" if index.skipped else ""), flush=True)
            self.train_set = ShardDataset(index, self.vocab, wave_augment)
        else:
            self.mix = mixed(self.train_manifest, self.train_weights, self.vocab, self.seed, self.max_duration)
            self.train_set = UtteranceDataset(self.mix.utts, self.vocab, wave_augment)
        self.val_set = UtteranceDataset(read_manifest(self.val_manifest, self.vocab), self.vocab)

    def use_encoder(self, features, rank: int = 0, world: int = 1, barrier=lambda: None) -> None:
        """Read a frozen encoder's features from the cache instead of audio: computed first where missing (each
        rank its share, then ``barrier``). Waveform augmentation applies only through ``feature_views``, once,
        before the encoder (docs/encoders.md)."""
        if isinstance(self.train_set, ShardDataset):
            raise AsrError("data.train_shards: training from shards reads audio; an encoder front-end needs "
                           "data.train_manifest (its features are cached per utterance)")
        views = self.feature_views
        cache = FeatureCache(self.feature_cache, features, WaveAugment(self.augment, self.seed), views)
        train = self.train_set.utts
        count, seconds = cache.fill(self.val_set.utts + train, rank, world, augmented=train)
        barrier()
        print(f"encoder features: {count} files ({seconds / 3600:.2f} h of audio) computed, the rest read from "
              f"{cache.root}" + (f"; {views} views of each training utterance" if views > 1 else ""), flush=True)
        if self.augment.active and views == 1:
            print("data.augment does not apply to cached encoder features (data.feature_views 1): training reads "
                  "them as computed", flush=True)
        self.train_set.cache = self.val_set.cache = cache
        self.train_set.views = views > 1

    def stats_waves(self, count: int):
        """Audio of ``count`` training utterances, the same on every rank, for the feature statistics."""
        if isinstance(self.train_set, ShardDataset):
            return self.train_set.waves(count)
        return drawn(self.train_set.utts, count)

    def _loader(self, dataset, max_seconds: float, train: bool) -> DataLoader:
        world = self.trainer.world_size if self.trainer else 1
        rank = self.trainer.global_rank if self.trainer else 0
        options = dict(shuffle=train, seed=self.seed, num_replicas=world, rank=rank,
                       augment=self.augment if train else None, drop_uneven=train,
                       sortagrad=self.sortagrad and train, on_epoch=dataset.set_epoch)
        heard = None
        if getattr(dataset, "cache", None) is not None:  # batches hold the audio behind the view an epoch reads
            options["augment"] = None
            if dataset.views:
                cache, utts = dataset.cache, dataset.utts
                heard = lambda epoch, i: cache.heard(utts[i], cache.pick(epoch, i))  # noqa: E731
        if isinstance(dataset, ShardDataset):
            sampler = ShardBatchSampler(dataset.index, max_seconds, slots=self.num_workers, **options)
        else:
            sampler = DurationBatchSampler([u.duration for u in dataset.utts], max_seconds, heard=heard,
                                           subset=self.mix.epoch if train and self.mix else None, **options)
        sampler.set_epoch(self.trainer.current_epoch if self.trainer else 0)
        if train and self._resume is not None:
            # Kept for every loader built: Lightning builds one just to count the steps for the LR schedule.
            sampler.resume_at(self._resume["epoch"], self._resume["batches_done"])
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),  # page-locked buffers only help copies to a GPU
            # Workers are forked anew each epoch, so they get the dataset with that epoch's augmentation.
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.max_batch_seconds, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_max_batch_seconds, train=False)

    def state_dict(self) -> dict:
        """Where training is in the epoch: saved in every checkpoint by Lightning."""
        if self.trainer is None:
            return {}
        # ``ready`` counts the batches handed to training_step this epoch (Lightning's prefetched one excluded).
        done = self.trainer.fit_loop.epoch_loop.batch_progress.current.ready
        return {"epoch": self.trainer.current_epoch, "batches_done": int(done)}

    def load_state_dict(self, state: dict) -> None:
        if "epoch" in state:
            self._resume = state
