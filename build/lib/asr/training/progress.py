"""Training progress for a log file: a line every ``every`` seconds and one per validation, instead of a bar.

``asr train`` uses Lightning's progress bar on a terminal and this callback elsewhere (``make demo > log``),
where a bar's carriage-return redraws would fill the log with megabytes of partial lines.
"""

from __future__ import annotations

import sys
import time

import pytorch_lightning as pl

from asr.progress import LOG_EVERY


def _metrics(trainer: pl.Trainer, names: tuple[str, ...]) -> str:
    values = trainer.callback_metrics
    return "  ".join(f"{n} {float(values[n]):.4g}" for n in names if n in values)


class LogLines(pl.Callback):
    """``epoch E/N  step S/T  train_loss L  A audio s/s`` every ``every`` seconds, and the validation metrics."""

    def __init__(self, every: float = LOG_EVERY):
        self.every = every
        self._last = self._started = 0.0
        self._audio = 0.0  # seconds of training audio since the last line

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._last = self._started = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if isinstance(batch, dict) and "wave_lengths" in batch:
            self._audio += float(batch["wave_lengths"].sum()) / 16000
        now = time.monotonic()
        if now - self._last < self.every or not trainer.is_global_zero:
            return
        speed = f"  {self._audio / (now - self._last):.0f} audio s/s" if self._audio else ""
        total = trainer.estimated_stepping_batches
        steps = f"/{int(total)}" if total and total != float("inf") else ""
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        self._print(f"epoch {trainer.current_epoch + 1}{epochs}  step {trainer.global_step}{steps}  "
                    f"{_metrics(trainer, ('train_loss',))}{speed}  [{now - self._started:.0f} s]")
        self._last, self._audio = now, 0.0

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._print(f"epoch {trainer.current_epoch + 1} validation: "
                    f"{_metrics(trainer, ('val_loss', 'val_wer', 'val_cer', 'val_chunked_wer'))}  "
                    f"[{time.monotonic() - self._started:.0f} s]")

    @staticmethod
    def _print(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
