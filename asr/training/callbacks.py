"""Callbacks every ``asr train`` run gets: the exported inference model, the training curves, and the account
of training utterances that could not be read."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from asr import checkpoint
from asr.training.curves import plot_curves
from asr.training.module import ASRModule

EXPORT_NAME = "model.pt"  # the inference model's file name in the run's root folder


class ExportModel(pl.Callback):
    """At the end of training, write the inference checkpoint (weights + configs, no optimizer) to ``path``.

    ``asr train`` links ``path`` to ``<trainer.default_root_dir>/model.pt``, as it links the checkpoint folder.
    """

    def __init__(self, path: str = EXPORT_NAME):
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, module: ASRModule) -> None:
        if trainer.is_global_zero:
            checkpoint.save(self.path, module.recognizer())
            print(f"exported model to {Path(self.path)}")


class PlotCurves(pl.Callback):
    """After each validation and at the end of training, redraw ``curves.png`` in the CSV logger's folder."""

    def _draw(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, CSVLogger):
                logger.save()  # flush the rows Lightning still buffers
                metrics = Path(logger.log_dir) / "metrics.csv"
                if metrics.is_file():
                    plot_curves(metrics, Path(logger.log_dir) / "curves.png")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._draw(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer)


class SkippedUtterances(pl.Callback):
    """Each epoch, the training utterances left out because they could not be read (a truncated shard, audio
    that does not decode): one line at the epoch's end, and every reason in ``<root>/skipped.txt``."""

    SKIPPED_NAME = "skipped.txt"

    def __init__(self):
        self.skipped: list[str] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.skipped += batch.pop("skipped", [])

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not self.skipped:
            return
        path = Path(trainer.default_root_dir) / f"{self.SKIPPED_NAME}.rank{trainer.global_rank}" \
            if trainer.world_size > 1 else Path(trainer.default_root_dir) / self.SKIPPED_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:  # a log that grows by epochs: appended, not rewritten
            f.writelines(f"epoch {trainer.current_epoch}: {s}\n" for s in self.skipped)
        print(f"epoch {trainer.current_epoch}: {len(self.skipped)} training utterances could not be read and were "
              f"left out (listed in {path})", flush=True)
        self.skipped = []
