"""Preemption: training killed with SIGKILL mid-epoch resumes from its last checkpoint and ends exactly where an
uninterrupted run ends (same batches, same losses, same weights)."""

from __future__ import annotations

import pytest
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from train_probes import read_steps

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent


def run_config(tmp_path: Path, name: str, manifest: Path, callbacks: list[dict], max_steps: int = 12,
               shards: Path | None = None) -> Path:
    cfg = {
        "model": {"network": {"hidden_size": 24, "num_layers": 1, "conv_channels": 4}, "optim": {"warmup_steps": 2}},
        # Speed perturbation and noise are on: the resumed run must redraw the very same augmentation.
        "data": {"train_manifest": str(manifest), "val_manifest": str(manifest), "max_batch_seconds": 3,
                 "num_workers": 1, "augment": {"speeds": [0.9, 1.0, 1.1], "noise_prob": 0.5}},
        "checkpoint": {"every_n_train_steps": 2},
        "trainer": {"max_steps": max_steps, "max_epochs": 10, "default_root_dir": str(tmp_path / name),
                    "enable_progress_bar": False, "callbacks": callbacks},
    }
    if shards is not None:  # the same utterances from Lhotse Shar shards
        cfg["data"]["train_shards"] = str(shards)
        del cfg["data"]["train_manifest"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train(config: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "asr", "train", "--config", str(config), *extra],
                          env=env, capture_output=True, text=True, timeout=600)


def probe(path: Path) -> dict:
    return {"class_path": "train_probes.RecordSteps", "init_args": {"path": str(path)}}


@pytest.mark.parametrize("source", ["manifest", "shards"])
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, speech_manifest, source):
    shards = None
    if source == "shards":
        shards = tmp_path / "shards"
        assert subprocess.run([sys.executable, "-m", "asr", "shard", str(speech_manifest), "--out", str(shards),
                               "--shard-size", "2"], capture_output=True).returncode == 0
    ref_log, run_log = tmp_path / "ref", tmp_path / "run"
    ref = train(run_config(tmp_path, "ref", speech_manifest, [probe(ref_log)], shards=shards))
    assert ref.returncode == 0, ref.stderr[-3000:]
    reference = read_steps(ref_log)
    assert [r["step"] for r in reference] == list(range(1, 13))
    batches_per_epoch = sum(r["epoch"] == 0 for r in reference)
    assert batches_per_epoch > 5  # so step 5 is mid-epoch

    config = run_config(tmp_path, "run", speech_manifest, [probe(run_log)], shards=shards)
    killed = train(config, "--trainer.callbacks+=train_probes.KillAt", "--trainer.callbacks.step=5")
    assert killed.returncode == -9, killed.stderr[-3000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    assert not list(checkpoints.glob("*.tmp"))  # atomic writes leave no partial files
    assert torch.load(checkpoints / "last.ckpt", weights_only=False)["global_step"] == 4
    before = read_steps(run_log)
    assert [r["step"] for r in before] == [1, 2, 3, 4, 5]

    (Path(f"{run_log}.rank0")).unlink()
    resumed = train(config, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    after = read_steps(run_log)
    # Step 5 died with the process before a checkpoint; steps 1-4 are not redone, 5-12 follow once each.
    assert [r["step"] for r in after] == list(range(5, 13))
    for got, want in zip(before[:4] + after, reference):
        assert got["targets"] == want["targets"], (got, want)  # the same batches in the same order
        assert abs(got["loss"] - want["loss"]) < 1e-5 * max(1.0, abs(want["loss"])), (got, want)
    final = torch.load(f"{run_log}.rank0.weights.pt")
    expected = torch.load(f"{ref_log}.rank0.weights.pt")
    for k in expected:
        torch.testing.assert_close(final[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)
    logs = tmp_path / "run" / "logs"
    assert list(logs.glob("version_*/metrics.csv")) and list(logs.glob("version_*/curves.png"))
    assert list(logs.glob("version_*/events.out.tfevents.*"))


def test_resume_with_no_checkpoint_starts_fresh_and_bad_path_is_an_error(tmp_path, speech_manifest):
    config = run_config(tmp_path, "fresh", speech_manifest, [], max_steps=2)
    result = train(config, "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "starting from scratch" in result.stdout
    bad = train(config, f"--resume={tmp_path / 'nope.ckpt'}")
    assert bad.returncode == 1
    assert "nope.ckpt: no such checkpoint" in bad.stderr
    assert "Traceback" not in bad.stderr
