"""A frozen encoder's features computed once per training utterance and kept on disk (fp16 ``.npy``), so an epoch
costs what the BiLSTM costs. Costs (disk, time) per encoder: docs/encoders.md.

Waveform augmentation cannot run on features, so it runs once, before the encoder: with ``views`` > 1 each
training utterance is kept as it is (view 0) and as ``views - 1`` augmented copies, each a fixed draw of
``data.augment``; every epoch reads one view per utterance, drawn afresh (Kaldi's three-way speed perturbation
is ``views: 3`` with ``speeds: [0.9, 1.1]``).

A file's name is a hash of the audio (path, size, modification time, span) and of the front-end (kind, encoder,
layers): a changed file or setting is computed afresh, never read stale. Filling is resumable (each file is
written whole or not at all), shared by every run that uses the same front-end, and split across DDP ranks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio
from asr.batching import bucket, pad
from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.manifest import Utterance
from asr.progress import Progress
from asr.training.wave_augment import WaveAugment, item_rng, perturbed_duration

REVISION = 2  # bump when a front-end's arithmetic changes: older files are then never read
BATCH_SECONDS = 60.0  # padded audio per encoder batch: big enough to keep both cores busy, small in memory


class FeatureCache:
    def __init__(self, root: str | os.PathLike, features: torch.nn.Module, augment: WaveAugment | None = None,
                 views: int = 1):
        """``features``: the front-end (:class:`asr.pretrained.EncoderFeatures`) whose output is kept under ``root``;
        ``views``: versions kept of each augmented utterance (1 = as it is, ``augment`` unused; more need it)."""
        if views < 1:
            raise AsrError(f"data.feature_views: {views}; 1 or more (1 = the features as computed)")
        if views > 1 and (augment is None or not augment.config.active):
            raise AsrError(f"data.feature_views: {views} views need data.augment settings to differ by")
        c = features.config
        self.features = features
        self.augment = augment if views > 1 else None
        self.views = views
        self.setting = f"{REVISION}|{c.kind}|{c.encoder}|{','.join(map(str, c.layers))}"
        if c.tuned_blocks:  # the state below the tuned blocks (earlier caches keep their names)
            self.setting += f"|below {c.tuned_blocks}"
        if features.bf16():  # computed in bf16 on this machine: other figures than fp32's
            self.setting += "|bf16"
        # An augmented view is named by what drew it: a changed data.augment or seed is a new file, never stale.
        self.augment_setting = f"{augment.config!r}|{augment.seed}" if self.augment else ""
        self.root = Path(root) / f"{c.kind}-{hashlib.sha1(self.setting.encode()).hexdigest()[:10]}"
        self._paths: dict[tuple[Utterance, int], Path] = {}  # found by fill(): loading in training needs no stat

    def path(self, u: Utterance, view: int = 0) -> Path:
        """Where view ``view`` of ``u``'s features is (or goes)."""
        return self._paths.get((u, view)) or self._file(u, view)

    def _file(self, u: Utterance, view: int) -> Path:
        stat = os.stat(u.audio_filepath)
        key = f"{self.setting}|{os.path.abspath(u.audio_filepath)}|{stat.st_size}|{stat.st_mtime_ns}|{u.span}"
        if view:
            key += f"|view {view}|{self.augment_setting}"
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest[2:]}.npy"

    def load(self, u: Utterance, view: int = 0) -> torch.Tensor:
        """``(frames, dim)`` float32 features of view ``view`` of ``u`` (computed by :meth:`fill`)."""
        return torch.from_numpy(np.load(self.path(u, view)).astype(np.float32))

    @staticmethod
    def identity(u: Utterance) -> int:
        """The index an augmented view's draws are keyed by: the utterance itself, not its place in a manifest."""
        return int(hashlib.sha1(f"{u.audio_filepath}|{u.span}".encode()).hexdigest()[:15], 16)

    def pick(self, epoch: int, index: int) -> int:
        """The view training item ``index`` reads in ``epoch``: drawn afresh each epoch, uniformly."""
        return item_rng(self.augment.seed, epoch, index, "view").randrange(self.views) if self.views > 1 else 0

    def heard(self, u: Utterance, view: int) -> float:
        """Seconds of audio behind view ``view`` of ``u`` (a speed change or padding alters it): batches hold this."""
        if view == 0:
            return u.duration
        return perturbed_duration(self.augment.config, u.duration, self.augment.seed, view, self.identity(u))

    def _wave(self, u: Utterance, view: int) -> torch.Tensor:
        wave = load_audio(u.audio_filepath, *u.span)
        # Each view is the augmentation's draw for "epoch" ``view``: fixed, so the file never needs recomputing.
        return self.augment(wave, view, self.identity(u)) if view else wave

    @torch.no_grad()
    def fill(self, utts: list[Utterance], rank: int = 0, world: int = 1,
             augmented: list[Utterance] = ()) -> tuple[int, float]:
        """Compute the missing features of this rank's share of ``utts`` (as they are) and of every view of
        ``augmented`` (training's); -> (files computed, seconds of audio)."""
        wanted = [(u, 0) for u in utts] + [(u, v) for u in augmented for v in range(self.views)]
        self._paths = {key: self._file(*key) for key in dict.fromkeys(wanted)}
        todo = [key for p, key in sorted((p, key) for key, p in self._paths.items()) if not p.exists()][rank::world]
        if not todo:
            return 0, 0.0
        durations = [self.heard(u, v) for u, v in todo]
        seconds = sum(durations)
        with Progress(seconds, desc=f"encoder features ({self.features.config.encoder})", unit="audio s") as bar:
            for batch in bucket(durations, BATCH_SECONDS):
                keys = [todo[i] for i in batch]
                waves, lengths = pad([self._wave(u, v) for u, v in keys])
                feats, frames = self.features(waves, lengths)
                for key, f, n in zip(keys, feats, frames.tolist()):
                    path = self.path(*key)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(path) as tmp, open(tmp, "wb") as out:
                        np.save(out, f[:n].numpy().astype(np.float16))
                bar.update(sum(durations[i] for i in batch))
        return len(todo), seconds
