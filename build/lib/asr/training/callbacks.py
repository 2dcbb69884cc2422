"""Callbacks every ``asr train`` run gets: the exported inference model and the training curves."""

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
