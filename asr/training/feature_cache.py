"""A frozen encoder's features computed once per training utterance and kept on disk (fp16 ``.npy``), so an epoch
costs what the BiLSTM costs. Costs (disk, time) per encoder: docs/encoders.md.

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
from asr.fileio import atomic_path
from asr.manifest import Utterance
from asr.progress import Progress

REVISION = 2  # bump when a front-end's arithmetic changes: older files are then never read
BATCH_SECONDS = 60.0  # padded audio per encoder batch: big enough to keep both cores busy, small in memory


class FeatureCache:
    def __init__(self, root: str | os.PathLike, features: torch.nn.Module):
        """``features``: the front-end (:class:`asr.pretrained.EncoderFeatures`) whose output is kept under ``root``."""
        c = features.config
        self.features = features
        self.setting = f"{REVISION}|{c.kind}|{c.encoder}|{','.join(map(str, c.layers))}"
        self.root = Path(root) / f"{c.kind}-{hashlib.sha1(self.setting.encode()).hexdigest()[:10]}"
        self._paths: dict[Utterance, Path] = {}  # found by fill(): loading in training needs no stat

    def path(self, u: Utterance) -> Path:
        """Where ``u``'s features are (or go)."""
        return self._paths.get(u) or self._file(u)

    def _file(self, u: Utterance) -> Path:
        stat = os.stat(u.audio_filepath)
        key = f"{self.setting}|{os.path.abspath(u.audio_filepath)}|{stat.st_size}|{stat.st_mtime_ns}|{u.span}"
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest[2:]}.npy"

    def load(self, u: Utterance) -> torch.Tensor:
        """``(frames, dim)`` float32 features of ``u`` (computed by :meth:`fill`)."""
        return torch.from_numpy(np.load(self.path(u)).astype(np.float32))

    @torch.no_grad()
    def fill(self, utts: list[Utterance], rank: int = 0, world: int = 1) -> tuple[int, float]:
        """Compute the missing features of this rank's share of ``utts``; -> (utterances computed, seconds of audio)."""
        self._paths = {u: self._file(u) for u in dict.fromkeys(utts)}
        todo = [u for p, u in sorted((p, u) for u, p in self._paths.items()) if not p.exists()][rank::world]
        if not todo:
            return 0, 0.0
        seconds = sum(u.duration for u in todo)
        batches = bucket([u.duration for u in todo], BATCH_SECONDS)
        with Progress(seconds, desc=f"encoder features ({self.features.config.encoder})", unit="audio s") as bar:
            for batch in batches:
                utts_in = [todo[i] for i in batch]
                waves, lengths = pad([load_audio(u.audio_filepath, *u.span) for u in utts_in])
                feats, frames = self.features(waves, lengths)
                for u, f, n in zip(utts_in, feats, frames.tolist()):
                    path = self.path(u)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(path) as tmp, open(tmp, "wb") as out:
                        np.save(out, f[:n].numpy().astype(np.float16))
                bar.update(sum(u.duration for u in utts_in))
        return len(todo), seconds
