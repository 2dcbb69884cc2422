"""The LightningModule: CTC training of the BiLSTM on features computed on the model's device."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from asr import checkpoint
from asr.augment import SpecAugment, SpecAugmentConfig
from asr.decode import GreedyDecoder
from asr.features import FeatureConfig, LogMel
from asr.metrics import error_rates
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import BLANK, Vocabulary


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1.5e-3  # peak learning rate
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 300  # linear warm-up from 0 to ``lr``
    min_lr_ratio: float = 0.02  # cosine decay ends at ``lr * min_lr_ratio`` on the last step


class ASRModule(pl.LightningModule):
    def __init__(
        self,
        model: ModelConfig = ModelConfig(),
        features: FeatureConfig = FeatureConfig(),
        spec_augment: SpecAugmentConfig = SpecAugmentConfig(),
        optim: OptimConfig = OptimConfig(),
    ):
        """
        Args:
            model: network sizes.
            features: log-mel settings (saved in the checkpoint and reused for transcription).
            spec_augment: masking applied to training batches only.
            optim: AdamW and learning-rate schedule.
        """
        super().__init__()
        # No save_hyperparameters(): the configs travel in checkpoint["asr"] as plain dicts, so checkpoints
        # load with torch.load(weights_only=True).
        self.vocab = Vocabulary()
        self.features = LogMel(features)
        self.spec_augment = SpecAugment(spec_augment)
        self.model = BiLSTMCTC(model, features.n_mels, len(self.vocab))
        self.optim = optim
        self.decoder = GreedyDecoder(self.vocab)
        self._val_refs: list[str] = []
        self._val_hyps: list[str] = []

    def _forward(self, batch: dict, augment: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats, frames = self.features(batch["waves"], batch["wave_lengths"])
        if augment:
            feats = self.spec_augment(feats, frames)
        log_probs, out_lengths = self.model(feats, frames)
        # CTC in fp32 whatever the autocast precision: its sums over paths lose too much in half precision.
        loss = F.ctc_loss(
            log_probs.float().transpose(0, 1), batch["targets"], out_lengths, batch["target_lengths"],
            blank=BLANK, reduction="mean", zero_infinity=True,
        )
        return loss, log_probs, out_lengths

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._forward(batch, augment=True)
        size = batch["waves"].shape[0]
        self.log("train_loss", loss, prog_bar=True, batch_size=size)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=False, batch_size=size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, log_probs, out_lengths = self._forward(batch, augment=False)
        self.log("val_loss", loss, prog_bar=True, batch_size=batch["waves"].shape[0], sync_dist=True)
        for hyp, tgt, n in zip(self.decoder.decode(log_probs, out_lengths), batch["targets"], batch["target_lengths"]):
            self._val_hyps.append(hyp.text)
            self._val_refs.append(self.vocab.decode(tgt[:n].tolist()))

    def on_validation_epoch_end(self) -> None:
        if self._val_refs:
            rates = error_rates(self._val_refs, self._val_hyps)
            self.log("val_wer", rates.wer, prog_bar=True, sync_dist=True)
            self.log("val_cer", rates.cer, prog_bar=True, sync_dist=True)
        self._val_refs.clear()
        self._val_hyps.clear()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.optim.lr, weight_decay=self.optim.weight_decay, betas=self.optim.betas
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = min(self.optim.warmup_steps, max(total // 10, 1))
        floor = self.optim.min_lr_ratio

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def recognizer(self) -> checkpoint.Recognizer:
        return checkpoint.Recognizer(self.features, self.model, self.vocab)

    def on_save_checkpoint(self, ckpt: dict) -> None:
        ckpt["asr"] = checkpoint.asr_section(self.model.config, self.features.config, self.vocab)


class ExportModel(pl.Callback):
    """At the end of training, write the inference checkpoint (weights + configs, no optimizer) to ``path``."""

    def __init__(self, path: str = "exp/model.pt"):
        self.path = path

    def on_train_end(self, trainer: pl.Trainer, module: ASRModule) -> None:
        if trainer.is_global_zero:
            checkpoint.save(self.path, module.recognizer())
            print(f"exported model to {Path(self.path)}")
