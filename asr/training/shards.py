"""Training from Lhotse Shar shards (written by ``asr shard``): each DDP rank and loader worker reads its own
shards from start to end, in an order shuffled per epoch from the seed, batched by duration within each shard.

The plan comes from the shards' cut files alone (ids, durations, transcripts), so every rank knows every rank's
batches without reading audio:

- each epoch the shards are shuffled from ``seed`` and the epoch, and dealt to ``ranks x workers`` *slots*;
- each slot's utterances are batched shard by shard (a shard's utterances sorted by their jittered, perturbed
  duration and cut at ``max_seconds`` of padded audio, the batches shuffled), so a worker holds one shard;
- a rank's batches interleave its slots' one by one, which is the order torch's DataLoader hands batches to its
  workers: worker ``w`` is given slot ``w``'s batches and reads its shards in turn;
- every slot keeps as many batches as the slot with fewest, so the interleaving holds to the end and DDP ranks
  step together; what that leaves out (a shard's worth at most per slot) changes with every epoch's deal.

The sampler is a :class:`~asr.training.sampler.DurationBatchSampler` over the shards' global utterance indices,
so epochs, resume (``resume_at``) and the augmentation's draws work as they do for a manifest. A worker that is
handed another slot's batch (after a resume mid-epoch) still reads it right, only less in order.

Bad data never stops training: a cut file that cannot be read leaves its shard out when training starts, and an
utterance missing from its tar (a truncated or corrupt shard) or one that does not decode is left out of its batch;
each gets one line on stderr naming the shard and the utterance.
"""

from __future__ import annotations

import bisect
import random
import sys
from collections import OrderedDict
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import torch
from torch.utils.data import Dataset

from asr.batching import bucket
from asr.errors import AsrError
from asr.text import Vocabulary, normalize
from asr.training.dataset import Unreadable
from asr.training.sampler import DurationBatchSampler
from asr.training.wave_augment import WaveAugment, perturbed_duration

CACHED_SHARDS = 2  # per worker: its current shard, and one it was handed out of turn


@dataclass(frozen=True)
class Shard:
    cuts: Path
    recording: Path
    ids: tuple[str, ...]
    durations: tuple[float, ...]
    texts: tuple[str, ...]


def warn(message: str) -> None:
    print(f"asr: warning: {message}", file=sys.stderr, flush=True)


class ShardIndex:
    """Every shard of a folder and its utterances' ids, durations and transcripts, in global index order
    (shard after shard); utterances longer than ``max_duration`` or with characters outside ``vocab`` are left
    out (counted in :attr:`left_out`)."""

    def __init__(self, folder: str | Path, vocab: Vocabulary, max_duration: float = float("inf")):
        from lhotse import CutSet

        folder = Path(folder)
        cut_files = sorted(folder.glob("cuts.*.jsonl.gz"))
        if not cut_files:
            raise AsrError(f"{folder}: no Lhotse Shar shards here (cuts.NNNNNN.jsonl.gz); write them with asr shard")
        self.folder, self.shards, self.left_out, self.skipped = folder, [], 0, []
        for cuts in cut_files:
            recording = cuts.with_name(cuts.name.replace("cuts.", "recording.").replace(".jsonl.gz", ".tar"))
            try:
                if not recording.is_file():
                    raise AsrError("its recording tar is missing")
                ids, durations, texts = [], [], []
                for cut in CutSet.from_file(cuts):
                    text = normalize(" ".join(s.text or "" for s in cut.supervisions))
                    if cut.duration > max_duration or not text or vocab.unknown(text):
                        self.left_out += 1
                        continue
                    ids.append(cut.id)
                    durations.append(float(cut.duration))
                    texts.append(text)
            except Exception as e:  # a corrupt or truncated cut file: gzip, JSON or Lhotse's own errors
                reason = str(e).strip().split("\n")[0][:160] or type(e).__name__
                self.skipped.append(f"{cuts}: {reason}")
                warn(f"{cuts}: unreadable, shard left out ({reason})")
                continue
            self.shards.append(Shard(cuts, recording, tuple(ids), tuple(durations), tuple(texts)))
        self.starts = [0]
        for s in self.shards:
            self.starts.append(self.starts[-1] + len(s.ids))

    def __len__(self) -> int:
        return self.starts[-1]

    @property
    def durations(self) -> list[float]:
        return [d for s in self.shards for d in s.durations]

    def locate(self, index: int) -> tuple[int, int]:
        """Global utterance index -> (shard, position in it)."""
        k = bisect.bisect_right(self.starts, index) - 1
        return k, index - self.starts[k]


class ShardBatchSampler(DurationBatchSampler):
    """This rank's batches of global utterance indices over a :class:`ShardIndex` (see the module's docstring)."""

    def __init__(self, index: ShardIndex, max_seconds: float, slots: int = 1, **kwargs):
        super().__init__(index.durations, max_seconds, **kwargs)
        self.index, self.slots = index, max(slots, 1)
        if len(index.shards) < self.num_replicas * self.slots:
            raise AsrError(f"{index.folder}: {len(index.shards)} shards for {self.num_replicas} rank(s) x "
                           f"{self.slots} loader worker(s): write smaller shards (asr shard --shard-size)")
        self.dropped = 0  # batches of this rank the epoch's plan left out, so that every slot has as many

    def slot_batches(self, slot: int) -> list[list[int]]:
        """Slot ``slot``'s batches for this epoch (slot = rank x workers + worker)."""
        order = list(range(len(self.index.shards)))
        if self.shuffle:
            random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        batches = []
        for k in order[slot :: self.num_replicas * self.slots]:
            start = self.index.starts[k]
            rng = random.Random((self.seed * 100_003 + self.epoch) * 1_000_003 + k)
            durations = list(self.index.shards[k].durations)
            if self.augment is not None:
                durations = [perturbed_duration(self.augment, d, self.seed, self.epoch, start + i)
                             for i, d in enumerate(durations)]
            key = [d * (1 + rng.uniform(-self.jitter, self.jitter)) for d in durations] if self.shuffle else None
            shard_batches = [[start + i for i in b] for b in bucket(durations, self.max_seconds, key)]
            if self.shuffle and not (self.sortagrad and self.epoch == 0):  # SortaGrad: in order within a shard
                rng.shuffle(shard_batches)
            batches += shard_batches
        return batches

    def _make_batches(self) -> list[list[int]]:
        """This rank's batches: its slots' in turn, each slot cut to the fewest any slot of any rank has (every
        rank plans every slot for that), so that worker ``w`` is handed slot ``w``'s batches all epoch and the
        ranks step together."""
        every = [self.slot_batches(s) for s in range(self.num_replicas * self.slots)]
        mine = every[self.rank * self.slots:(self.rank + 1) * self.slots]
        if self.drop_uneven:
            fewest = min(map(len, every))
            self.dropped = sum(len(b) - fewest for b in mine)
            mine = [b[:fewest] for b in mine]
        return [b for group in zip_longest(*mine) for b in group if b is not None]


class ShardDataset(Dataset):
    """Global utterance index -> ``(waveform (samples,), token ids (length,))`` at 16 kHz, or :class:`Unreadable`
    for an utterance that cannot be read (left out of its batch by :func:`asr.training.dataset.collate`).
    Reads a shard's tar whole, once, and keeps the last :data:`CACHED_SHARDS` in memory (as FLAC bytes)."""

    def __init__(self, index: ShardIndex, vocab: Vocabulary = Vocabulary(), augment: WaveAugment | None = None):
        self.index, self.vocab, self.augment = index, vocab, augment
        self.epoch = 0
        self._cache: OrderedDict[int, dict] = OrderedDict()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.index)

    def _cuts(self, k: int) -> dict:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        from lhotse import CutSet

        shard = self.index.shards[k]
        cuts: dict = {}
        try:
            for cut in CutSet.from_shar(fields={"cuts": [str(shard.cuts)], "recording": [str(shard.recording)]}):
                cuts[cut.id] = cut
        except Exception as e:  # tarfile, EOF and Lhotse's checks of a truncated or corrupt tar
            missing = [i for i in shard.ids if i not in cuts]
            reason = str(e).strip().split("\n")[0][:120] or type(e).__name__
            warn(f"{shard.recording}: unreadable after {len(cuts)} utterances ({reason}): {len(missing)} left out, "
                 f"the first {missing[0] if missing else '-'} (skipped)")
        self._cache[k] = cuts
        while len(self._cache) > CACHED_SHARDS:
            self._cache.popitem(last=False)
        return cuts

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor] | Unreadable:
        k, p = self.index.locate(i)
        shard = self.index.shards[k]
        cut = self._cuts(k).get(shard.ids[p])
        if cut is None:  # its shard's line said so once
            return Unreadable(f"{shard.recording}: {shard.ids[p]}: not in the tar (truncated or corrupt)")
        try:
            wave = torch.from_numpy(cut.load_audio()[0].copy())
        except Exception as e:  # a corrupt FLAC inside a sound tar
            reason = f"{shard.recording}: {cut.id}: does not decode ({str(e).strip()[:120]})"
            warn(f"{reason} (skipped)")
            return Unreadable(reason)
        if self.augment is not None:
            wave = self.augment(wave, self.epoch, i)
        return wave, torch.tensor(self.vocab.encode(shard.texts[p]), dtype=torch.long)

    def waves(self, count: int):
        """The first ``count`` readable utterances' audio, shard after shard (for the feature statistics)."""
        for k in range(len(self.index.shards)):
            for cut in self._cuts(k).values():
                if count <= 0:
                    return
                try:
                    yield torch.from_numpy(cut.load_audio()[0].copy())
                except Exception:  # reported when training reads it
                    continue
                count -= 1

