"""Fine-tuning from a checkpoint (same or new vocabulary), checkpoint averaging, and the saved training curves."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from asr import checkpoint
from asr.cli import main
from asr.training.curves import plot_curves, read_metrics
from asr.errors import AsrError
from asr.features import FeatureConfig
from asr.model import ModelConfig
from asr.text import CHARACTERS, Vocabulary
from asr.training.cli import train
from asr.training.module import ASRModule

DIGITS = CHARACTERS + "0123456789"


def saved_model(tmp_path, name="base.pt", hidden=16, seed=0):
    torch.manual_seed(seed)
    rec = checkpoint.build(checkpoint.asr_section(ModelConfig(hidden_size=hidden, num_layers=1, conv_channels=4),
                                                  FeatureConfig(n_mels=40), Vocabulary()))
    path = tmp_path / name
    checkpoint.save(path, rec)
    return path, rec


def test_finetune_same_vocabulary_starts_from_every_weight(tmp_path):
    path, source = saved_model(tmp_path)
    module = ASRModule(network=ModelConfig(hidden_size=99, dropout=0.3), init_from=str(path))
    assert module.model.config.hidden_size == 16 and module.model.config.dropout == 0.3  # architecture adopted
    assert module.features.config.n_mels == 40
    for k, v in source.model.state_dict().items():
        assert torch.equal(module.model.state_dict()[k], v), k


def test_finetune_new_vocabulary_reinitialises_only_the_output_layer(tmp_path):
    path, source = saved_model(tmp_path)
    module = ASRModule(vocabulary=DIGITS, init_from=str(path))
    state = module.model.state_dict()
    assert state["output.weight"].shape[0] == len(DIGITS) + 1
    for k, v in source.model.state_dict().items():
        if not k.startswith("output."):
            assert torch.equal(state[k], v), k


@pytest.mark.slow
def test_finetune_onto_digits_trains_and_exports_the_new_vocabulary(tmp_path, speech):
    path, _ = saved_model(tmp_path)
    manifest = tmp_path / "digits.jsonl"
    with open(manifest, "w") as f:
        for i, (audio, text) in enumerate(speech[:4]):
            f.write(json.dumps({"audio_filepath": str(audio), "duration": 2.0, "text": f"{text} {i}"}) + "\n")
    cfg = {
        "model": {"vocabulary": DIGITS, "init_from": str(path), "optim": {"warmup_steps": 1}},
        "data": {"train_manifest": str(manifest), "val_manifest": str(manifest), "max_batch_seconds": 8,
                 "num_workers": 0},
        "trainer": {"max_steps": 2, "default_root_dir": str(tmp_path / "exp"), "enable_progress_bar": False,
                    "logger": False},
    }
    (tmp_path / "ft.yaml").write_text(yaml.safe_dump(cfg))
    cli = train(["--config", str(tmp_path / "ft.yaml")])
    assert cli.trainer.global_step == 2
    assert checkpoint.load(tmp_path / "exp" / "model.pt").vocab.characters == DIGITS


def test_finetune_from_a_bad_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(AsrError, match="bad.pt: not a PyTorch checkpoint"):
        ASRModule(init_from=str(bad))


def test_average_is_the_elementwise_mean(tmp_path, capsys):
    a, rec_a = saved_model(tmp_path, "a.pt", seed=1)
    b, rec_b = saved_model(tmp_path, "b.pt", seed=2)
    out = tmp_path / "avg.pt"
    assert main(["average", str(a), str(b), "--out", str(out)]) == 0
    avg = checkpoint.load(out).model.state_dict()
    for k, v in rec_a.model.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(avg[k], (v + rec_b.model.state_dict()[k]) / 2)
    other, _ = saved_model(tmp_path, "other.pt", hidden=8)
    capsys.readouterr()
    assert main(["average", str(a), str(other), "--out", str(tmp_path / "x.pt")]) == 1
    assert "other.pt: model config differs" in capsys.readouterr().err


def test_average_last_n_step_checkpoints_of_a_folder(tmp_path):
    from asr.checkpoint import newest

    for step in (10, 200, 30, 1000):
        (tmp_path / f"epoch=0-step={step}.ckpt").write_bytes(b"")
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert [p.name for p in newest(tmp_path, 2)] == ["epoch=0-step=200.ckpt", "epoch=0-step=1000.ckpt"]
    with pytest.raises(AsrError, match="no step checkpoints"):
        newest(tmp_path / "nowhere", 2)


def test_curves_are_drawn_from_lightning_metrics_csv(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,lr,step,train_loss,val_cer,val_loss,val_wer\n"
                   "0,0.001,9,3.5,,,\n0,0.001,19,2.5,,,\n0,,19,,0.4,2.2,0.9\n1,0.001,29,1.5,,,\n1,,39,,0.2,1.2,0.5\n")
    series = read_metrics(csv)
    assert series["train_loss"] == [(9, 3.5), (19, 2.5), (29, 1.5)]
    assert series["val_wer"] == [(19, 0.9), (39, 0.5)]
    png = plot_curves(csv, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,step\n")
    assert plot_curves(empty, tmp_path / "none.png") is None
