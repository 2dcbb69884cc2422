"""Two-process DDP training on CPU (gloo): each rank trains on its own batches, and the weights stay equal."""

from __future__ import annotations

import pytest
import torch

from test_resume import probe, run_config, train
from train_probes import read_steps

pytestmark = pytest.mark.slow


def test_two_process_ddp_on_cpu_keeps_ranks_in_step(tmp_path, speech_manifest):
    log = tmp_path / "ddp"
    config = run_config(tmp_path, "ddp", speech_manifest, [probe(log)], max_steps=4)
    result = train(config, "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu",
                   "--data.num_workers=0")
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [read_steps(log, 0), read_steps(log, 1)]
    assert [r["step"] for r in ranks[0]] == [r["step"] for r in ranks[1]] == [1, 2, 3, 4]
    for a, b in zip(*ranks):
        assert a["rank"] == 0 and b["rank"] == 1
    # Within an epoch the ranks' batches are disjoint shares of the same bucketing (no utterance twice).
    epoch0 = [[tuple(r["texts"]) for r in steps if r["epoch"] == 0] for steps in ranks]
    seen0 = {t for batch in epoch0[0] for t in batch}
    seen1 = {t for batch in epoch0[1] for t in batch}
    assert seen0 and seen1 and not seen0 & seen1
    w0 = torch.load(f"{log}.rank0.weights.pt")
    w1 = torch.load(f"{log}.rank1.weights.pt")
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    first = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=False)
    assert first["global_step"] == 4
