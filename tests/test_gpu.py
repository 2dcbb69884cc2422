"""On a GPU (skipped without CUDA): features on the device, a bf16 training step, DDP across GPUs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from asr.features import FeatureConfig, LogMel
from asr.model import BiLSTMCTC, ModelConfig
from asr.text import BLANK, Vocabulary
from runif import run_if

pytestmark = pytest.mark.gpu


@run_if(min_cuda_gpus=1)
def test_features_on_the_device_equal_those_on_the_cpu():
    waves = 0.1 * torch.randn(3, 32000, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([32000, 20000, 9000])
    mel = LogMel(FeatureConfig())
    cpu, cpu_frames = mel(waves, lengths)
    gpu, gpu_frames = mel.to("cuda")(waves.cuda(), lengths.cuda())
    assert torch.equal(cpu_frames, gpu_frames.cpu())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-3)


@run_if(min_cuda_gpus=1, bf16_cuda=True)
def test_a_bf16_step_matches_fp32_and_lowers_the_loss():
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelConfig(hidden_size=64, num_layers=2, conv_channels=8), 80, len(Vocabulary())).cuda()
    feats = torch.randn(4, 300, 80, device="cuda")
    lengths = torch.tensor([300, 280, 250, 200], device="cuda")
    targets = torch.randint(1, len(Vocabulary()), (4, 20), device="cuda")
    target_lengths = torch.full((4,), 20, device="cuda")

    def loss(dtype):
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            log_probs, out = model(feats, lengths)
        return F.ctc_loss(log_probs.float().transpose(0, 1), targets, out, target_lengths, blank=BLANK)

    model.eval()  # no dropout: both precisions see the same network
    with torch.no_grad():
        fp32, bf16 = loss(None), loss(torch.bfloat16)
    assert abs(float(bf16) - float(fp32)) / float(fp32) < 0.02
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        value = loss(torch.bfloat16)
        first = float(value) if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    assert float(value) < 0.8 * first


@pytest.mark.slow
@run_if(min_cuda_gpus=2)
def test_ddp_across_two_gpus_keeps_ranks_in_step(tmp_path, speech_manifest):
    from test_resume import probe, run_config, train
    from train_probes import read_steps

    log = tmp_path / "ddp"
    config = run_config(tmp_path, "ddp", speech_manifest, [probe(log)], max_steps=4)
    result = train(config, "--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=gpu",
                   "--trainer.precision=bf16-mixed", "--data.num_workers=0")
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [read_steps(log, 0), read_steps(log, 1)]
    assert [r["step"] for r in ranks[0]] == [r["step"] for r in ranks[1]] == [1, 2, 3, 4]
    w0, w1 = torch.load(f"{log}.rank0.weights.pt"), torch.load(f"{log}.rank1.weights.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
