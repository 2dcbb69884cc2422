"""Callbacks that training subprocesses load from the config (PYTHONPATH=tests): they record what each step saw
and can kill the process the way a preemption does."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch


class RecordSteps(pl.Callback):
    """Appends one JSON line per optimizer step: rank, step, loss and the batch's transcripts."""

    def __init__(self, path: str):
        self.path = path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        row = {"rank": trainer.global_rank, "step": trainer.global_step, "epoch": trainer.current_epoch,
               "loss": float(outputs["loss"]), "targets": batch["target_lengths"].tolist(),
               "texts": [module.vocab.decode(t[:n].tolist()) for t, n in zip(batch["targets"], batch["target_lengths"])]}
        with open(f"{self.path}.rank{trainer.global_rank}", "a") as f:
            f.write(json.dumps(row) + "\n")

    def on_train_end(self, trainer, module) -> None:
        # Parameters only: BatchNorm's running statistics are rank-local between steps (DDP broadcasts rank 0's
        # at each forward, and rank 0's are the ones saved).
        weights = {k: v.detach().cpu() for k, v in module.model.named_parameters()}
        torch.save(weights, f"{self.path}.rank{trainer.global_rank}.weights.pt")


class KillAt(pl.Callback):
    """SIGKILLs its own process when ``step`` optimizer steps are done: no cleanup, no last checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def read_steps(path: Path, rank: int = 0) -> list[dict]:
    file = Path(f"{path}.rank{rank}")
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []
