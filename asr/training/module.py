"""The LightningModule: CTC training of the BiLSTM on features computed on the model's device, read whole or, in
dual-mode training, in chunks too (one model for offline and streaming reading)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from asr import checkpoint
from asr.decode import GreedyDecoder
from asr.features import FeatureConfig, build_features
from asr.metrics import error_rates
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import BLANK, CHARACTERS, Vocabulary
from asr.training.rng import rng_states, set_rng_states
from asr.training.spec_augment import SpecAugment, SpecAugmentConfig, vtlp_factors
from asr.training.stats import STATS_UTTERANCES, feature_stats


@dataclass(frozen=True)
class StreamingConfig:
    """Dual-mode training (``model.streaming``): each batch is read whole with probability ``full_share``, else
    in chunks with right context drawn from these sets (seconds; rounded to output frames), as WeNet trains
    one model for both (docs/streaming.md)."""

    full_share: float = 0.5
    chunks: tuple[float, ...] = (0.32, 0.64, 1.28)
    right: tuple[float, ...] = (0.0, 0.16, 0.32)
    validate: tuple[float, float] = (0.64, 0.32)  # also validated in chunks of this size (val_wer_chunked)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1.5e-3  # peak learning rate
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 300  # linear warm-up from 0 to ``lr``
    min_lr_ratio: float = 0.02  # cosine decay ends at ``lr * min_lr_ratio`` on the last step
    # The pretrained encoder blocks tuned with the network (features.tuned_blocks) learn at lr * top_lr_scale:
    # they start from weights that already work, the BiLSTM from noise.
    top_lr_scale: float = 0.1


class ASRModule(pl.LightningModule):
    def __init__(
        self,
        network: ModelConfig = ModelConfig(),
        features: FeatureConfig = FeatureConfig(),
        spec_augment: SpecAugmentConfig = SpecAugmentConfig(),
        optim: OptimConfig = OptimConfig(),
        vocabulary: str = CHARACTERS,
        init_from: str | None = None,
        streaming: StreamingConfig | None = None,
    ):
        """
        Args:
            network: the network's sizes (``model.network`` in a config).
            features: log-mel settings (saved in the checkpoint and reused for transcription).
            spec_augment: masking applied to training batches only.
            optim: AdamW and learning-rate schedule.
            vocabulary: the output characters (index 0 is the CTC blank), e.g. add digits for a new corpus.
            init_from: fine-tune: start from this model.pt or .ckpt. Its architecture and features are kept
                (only ``network.dropout`` is taken from this config); if its vocabulary differs from
                ``vocabulary``, the output layer is re-initialised and everything below it is kept.
            streaming: dual-mode training (full and chunked reading); None: full mode only. A streamable
                feature normalisation for chunked reading goes with it (``features.chunked_normalize: running``,
                or ``features.normalize: running`` for both).
        """
        super().__init__()
        # No save_hyperparameters(): the configs travel in checkpoint["asr"] as plain dicts, so checkpoints
        # load with torch.load(weights_only=True).
        self.vocab = Vocabulary(vocabulary)
        source = checkpoint.load(init_from) if init_from else None
        if source is not None:
            network, features = self._adopt(source, network, features)
        self.features = build_features(features)
        self.spec_augment = SpecAugment(spec_augment)
        self.model = BiLSTMCTC(network, self.features.dim, len(self.vocab), features.groups,
                               self.features.top())
        if source is not None:
            self._load_weights(source, init_from)
        self.optim = optim
        self.streaming = streaming
        self._rng_to_restore: dict | None = None
        self.decoder = GreedyDecoder(self.vocab)
        self._val_refs: list[str] = []
        self._val_hyps: list[str] = []
        self._val_chunked: list[str] = []

    @staticmethod
    def _adopt(source: checkpoint.Recognizer, model: ModelConfig, features: FeatureConfig):
        arch = replace(source.model.config, dropout=model.dropout)
        if asdict(arch) != asdict(model) or asdict(source.features.config) != asdict(features):
            print(f"fine-tuning: architecture and features come from the initial model ({asdict(arch)})")
        return arch, source.features.config

    def _load_weights(self, source: checkpoint.Recognizer, path: str) -> None:
        state = source.model.state_dict()
        if source.vocab.characters != self.vocab.characters:
            # A new alphabet: the output rows mean other characters now, so they start afresh.
            state = {k: v for k, v in state.items() if not k.startswith("output.")}
            print(f"fine-tuning from {path}: vocabulary {source.vocab.characters!r} -> {self.vocab.characters!r}, "
                  f"output layer re-initialised")
        missing, _ = self.model.load_state_dict(state, strict=False)
        assert all(k.startswith("output.") for k in missing), missing

    def _frames(self, seconds: float) -> int:
        return max(int(round(seconds * 1000 / (self.features.config.frame_ms * self.model.config.subsampling))), 0)

    def _reading(self) -> tuple[int, int]:
        """Dual-mode training: this batch's chunk and right context in output frames, ``(0, 0)`` to read whole."""
        s = self.streaming
        if s is None or float(torch.rand(())) < s.full_share:
            return 0, 0
        chunk = s.chunks[int(torch.randint(len(s.chunks), ()))]
        right = s.right[int(torch.randint(len(s.right), ()))]
        return max(self._frames(chunk), 1), self._frames(right)

    def _forward(self, batch: dict, augment: bool, chunk: int = 0,
                 right: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if "feats" in batch:  # a frozen encoder's, from the cache
            feats, frames = batch["feats"], batch["feat_lengths"]
        else:
            log_mel = self.features.config.kind == "log_mel"
            warp = vtlp_factors(len(batch["waves"]), self.spec_augment.config, self.device) if augment and log_mel else None
            feats, frames = self.features(batch["waves"], batch["wave_lengths"], warp, chunked=chunk > 0)
        if augment:
            feats = self.spec_augment(feats, frames)
        log_probs, out_lengths = self.model(feats, frames, chunk, right)
        # CTC in fp32 whatever the autocast precision: its sums over paths lose too much in half precision.
        loss = F.ctc_loss(
            log_probs.float().transpose(0, 1), batch["targets"], out_lengths, batch["target_lengths"],
            blank=BLANK, reduction="mean", zero_infinity=True,
        )
        return loss, log_probs, out_lengths

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._forward(batch, True, *self._reading())
        if "weight" in batch:
            loss = loss * batch["weight"]  # nothing in the batch could be read (asr.training.dataset.collate)
        size = len(batch["targets"])
        self.log("train_loss", loss, prog_bar=True, batch_size=size)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], prog_bar=False, batch_size=size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, log_probs, out_lengths = self._forward(batch, augment=False)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(batch["targets"]), sync_dist=True)
        for hyp, tgt, n in zip(self.decoder.decode(log_probs, out_lengths), batch["targets"], batch["target_lengths"]):
            self._val_hyps.append(hyp.text)
            self._val_refs.append(self.vocab.decode(tgt[:n].tolist()))
        if self.streaming is not None:
            chunk, right = (self._frames(s) for s in self.streaming.validate)
            _, log_probs, out_lengths = self._forward(batch, False, max(chunk, 1), right)
            self._val_chunked += [h.text for h in self.decoder.decode(log_probs, out_lengths)]

    def on_validation_epoch_end(self) -> None:
        self._log_rates("val", self._val_hyps)
        if self.streaming is not None:
            self._log_rates("val_chunked", self._val_chunked, cer=False)
        self._val_refs.clear()
        self._val_hyps.clear()
        self._val_chunked.clear()

    def _log_rates(self, name: str, hyps: list[str], cer: bool = True) -> None:
        # Sum error and reference counts over DDP ranks (each validated its own share), then divide: the
        # corpus-level WER, not a mean of per-rank rates. Every rank must join the reduction, even one with
        # no utterances.
        rates = error_rates(self._val_refs, hyps) if self._val_refs else None
        counts = torch.tensor([rates.word_errors, rates.words, rates.char_errors, rates.chars] if rates else [0] * 4,
                              dtype=torch.float64, device=self.device)
        if self.trainer.world_size > 1:
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        if counts[1] > 0:
            # Already global; sync_dist then averages equal values (and tells Lightning the value is synced).
            self.log(f"{name}_wer", (counts[0] / counts[1]).float(), prog_bar=True, sync_dist=True)
            if cer:
                self.log(f"{name}_cer", (counts[2] / counts[3].clamp(min=1)).float(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        top = [p for name, p in self.named_parameters() if name.startswith("model.top.")]
        rest = [p for name, p in self.named_parameters() if not name.startswith("model.top.")]
        groups = [{"params": rest}] + ([{"params": top, "lr": self.optim.lr * self.optim.top_lr_scale}] if top else [])
        opt = torch.optim.AdamW(groups, lr=self.optim.lr, weight_decay=self.optim.weight_decay, betas=self.optim.betas)
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
        ckpt["rng_states"] = rng_states()

    def on_load_checkpoint(self, ckpt: dict) -> None:
        self._rng_to_restore = ckpt.get("rng_states")
        saved = FeatureConfig(**ckpt["asr"]["feature_config"]) if "asr" in ckpt else None
        if saved is not None and saved.stats_mean and not self.features.config.stats_mean:
            self._set_features(saved)  # resumed: the statistics measured when the run began

    def setup(self, stage: str) -> None:
        # Here, not in on_fit_start: Lightning builds the training loader to count the LR schedule's steps before
        # on_fit_start, and keeps it; its sampler must already see the cache (each view's duration).
        if stage == "fit" and self.features.config.kind != "log_mel":
            self.trainer.datamodule.use_encoder(self.features, self.trainer.global_rank, self.trainer.world_size,
                                                self.trainer.strategy.barrier)

    def on_fit_start(self) -> None:
        config = self.features.config
        if config.needs_stats and not config.stats_mean:
            datamodule = self.trainer.datamodule
            mean, std, count = feature_stats(datamodule.stats_waves(STATS_UTTERANCES), self.features.cpu())
            self._set_features(replace(config, stats_mean=mean, stats_std=std))
            print(f"feature statistics from {count} training utterances: mean log-mel {sum(mean) / len(mean):.2f}, "
                  f"deviation {sum(std) / len(std):.2f}")

    def _set_features(self, config: FeatureConfig) -> None:
        self.features = build_features(config).to(self.device)

    def on_train_start(self) -> None:
        # Restored here, not on load: creating the DataLoader iterator between the two draws from the torch
        # RNG, which the uninterrupted run did before the checkpoint. Now dropout and SpecAugment masks
        # continue exactly as they would have.
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
