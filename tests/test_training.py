"""End to end: train a tiny model for a few steps with `asr train`, export it, transcribe and evaluate it."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from asr import checkpoint
from asr.cli import main
from asr.training.cli import train

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def tiny_config(tmp_path, manifest) -> Path:
    cfg = {
        "model": {"network": {"hidden_size": 32, "num_layers": 1, "conv_channels": 4}, "optim": {"warmup_steps": 2}},
        "data": {"train_manifest": str(manifest), "val_manifest": str(manifest), "max_batch_seconds": 12,
                 "num_workers": 0},
        "trainer": {"max_steps": 6, "max_epochs": 3, "default_root_dir": str(tmp_path / "exp"),
                    "enable_progress_bar": False, "logger": False},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_train_export_transcribe_evaluate(tmp_path, speech_manifest, speech, capsys):
    cli = train(["--config", str(tiny_config(tmp_path, speech_manifest))])
    assert cli.trainer.global_step == 6
    assert torch.isfinite(cli.trainer.callback_metrics["train_loss"])
    assert "val_wer" in cli.trainer.callback_metrics
    model = tmp_path / "exp" / "model.pt"
    rec = checkpoint.load(model)
    assert rec.model.config.hidden_size == 32
    # The Lightning checkpoint describes itself too and gives the same network.
    ckpt = next((tmp_path / "exp").rglob("*.ckpt"))
    from_ckpt = checkpoint.load(ckpt)
    for (k, a), (_, b) in zip(rec.model.state_dict().items(), from_ckpt.model.state_dict().items()):
        assert torch.equal(a, b), k
    err = capsys.readouterr().err  # not a terminal: progress as lines, no bar
    assert "\r" not in err and "validation: val_loss" in err
    assert main(["transcribe", "--model", str(model), str(speech[0][0])]) == 0
    assert capsys.readouterr().out.startswith(f"{speech[0][0]}\t")
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(model), "--manifest", str(speech_manifest), "--report", str(report)]) == 0
    assert len(json.loads(report.read_text())["utterances"]) == len(speech)


def _config_stacks():
    """Every recipe config alone and under each profile (cpu / gpu), plus a recipe's own gpu.yaml on top."""
    stacks = []
    synthetic = RECIPES / "synthetic"
    stacks.append([synthetic / "config.yaml", synthetic / "long.yaml"])
    stacks.append([synthetic / "config.yaml", synthetic / "long.yaml", synthetic / "gpu.yaml"])
    # The demo's front-ends (make demo FRONT=...), the default first.
    for front in ("whisper_base.yaml", "whisper.yaml", "moonshine.yaml", "whisper_tuned.yaml"):
        stacks.append([synthetic / "config.yaml", synthetic / front])
    for config in sorted(RECIPES.glob("*/config.yaml")):
        stacks.append([config])
        if config.parent.name != "synthetic":
            stacks.append([RECIPES / "cpu.yaml", config])
            extra = [config.parent / "gpu.yaml"] if (config.parent / "gpu.yaml").exists() else []
            stacks.append([RECIPES / "gpu.yaml", config, *extra])
    return stacks


@pytest.mark.parametrize("stack", _config_stacks(), ids=lambda s: "+".join(f"{p.parent.name}/{p.name}" for p in s))
def test_every_shipped_config_parses(stack, capsys):
    argv = [a for config in stack for a in ("--config", str(config))]
    with pytest.raises(SystemExit) as exit_:
        train([*argv, "--print_config"])
    assert exit_.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["train_manifest"] and printed["trainer"]["max_epochs"]
    # The exported model is linked to the run's root folder (like the checkpoints): no recipe repeats it.
    assert not printed["trainer"].get("callbacks")
    if RECIPES / "gpu.yaml" in stack or stack[-1].name == "gpu.yaml":
        assert printed["trainer"]["precision"] == "bf16-mixed"


@pytest.mark.parametrize("old, expected", [
    ({"model": {"model": {"hidden_size": 32}}}, "model.model is now model.network: rename the key"),
    ({"trainer": {"callbacks": [{"class_path": "asr.training.ExportModel", "init_args": {"path": "m.pt"}}]}},
     "asr.training.ExportModel is no longer needed"),
])
def test_a_config_of_the_old_layout_gets_one_line_naming_the_new_key(tmp_path, capsys, old, expected):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    assert main(["train", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"asr: error: {path}:") and expected in err and "\n" not in err


def test_an_old_flag_gets_one_line_naming_the_new_one(capsys):
    assert main(["train", "--model.model.hidden_size", "8"]) == 1
    assert capsys.readouterr().err.strip() == ("asr: error: --model.model.hidden_size: model.model is now "
                                               "model.network: use --model.network.hidden_size")
