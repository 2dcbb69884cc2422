"""The model learns: a small BiLSTM-CTC trained by ``asr train`` overfits a handful of synthesized utterances,
its CTC loss falls from where it started to near zero and its greedy transcripts become the references."""

from __future__ import annotations

import pytest
import soundfile as sf
import yaml

import asr
from asr.manifest import Utterance, write_manifest
from asr.metrics import error_rates
from asr.training.cli import train

STEPS = 300


@pytest.mark.slow
def test_a_tiny_model_overfits_four_utterances(tmp_path, speech):
    chosen = speech[:4]
    manifest = tmp_path / "four.jsonl"
    write_manifest(manifest, [Utterance(str(p), sf.info(str(p)).duration, t) for p, t in chosen])
    config = {
        "seed_everything": 0,
        "model": {"network": {"hidden_size": 96, "num_layers": 2, "conv_channels": 8, "dropout": 0.0},
                  "spec_augment": {"freq_masks": 0, "time_masks": 0},
                  "optim": {"lr": 3e-3, "warmup_steps": 20, "weight_decay": 0.0}},
        # One batch holds all four: every step sees every utterance.
        "data": {"train_manifest": str(manifest), "val_manifest": str(manifest), "max_batch_seconds": 60,
                 "num_workers": 0},
        "trainer": {"max_steps": STEPS, "max_epochs": STEPS, "default_root_dir": str(tmp_path / "exp"),
                    "enable_progress_bar": False, "logger": False, "check_val_every_n_epoch": STEPS},
    }
    path = tmp_path / "overfit.yaml"
    path.write_text(yaml.safe_dump(config))
    losses = []

    import pytorch_lightning as pl

    class Losses(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    train(["--config", str(path)], callbacks=[Losses()])
    assert len(losses) == STEPS
    assert losses[0] > 3.0  # CTC over 29 symbols starts far from the answer
    assert sum(losses[-10:]) / 10 < 0.15  # and ends close to it
    model = asr.load(tmp_path / "exp" / "model.pt", device="cpu")
    hyps = [model.transcribe(p, timestamps=False).text for p, _ in chosen]
    refs = [t for _, t in chosen]
    assert error_rates(refs, hyps).cer < 0.03, list(zip(refs, hyps))
    assert sum(h == r for h, r in zip(hyps, refs)) >= 3, list(zip(refs, hyps))
