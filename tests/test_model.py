import subprocess
import sys

import pytest
import torch

from asr.model import BiLSTMCTC, ModelConfig


@pytest.mark.parametrize("factor", [2, 4])
def test_output_shape_and_lengths(factor):
    model = BiLSTMCTC(ModelConfig(subsampling=factor, hidden_size=16, num_layers=2, conv_channels=4), 80, 29).eval()
    feats = torch.randn(3, 101, 80)
    lengths = torch.tensor([101, 50, 1])
    lp, out = model(feats, lengths)
    expected = [-(-n // factor) for n in (101, 50, 1)]  # ceil division
    assert out.tolist() == expected
    assert lp.shape == (3, max(expected), 29)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(3, max(expected)), atol=1e-4)


def test_padding_does_not_leak_into_short_utterances():
    torch.manual_seed(0)
    model = BiLSTMCTC(ModelConfig(hidden_size=16, num_layers=2, conv_channels=4), 80, 29).eval()
    short = torch.randn(1, 40, 80)
    alone, _ = model(short, torch.tensor([40]))
    batch = torch.cat([torch.cat([short, torch.randn(1, 60, 80)], 1), torch.randn(1, 100, 80)])
    padded, out = model(batch, torch.tensor([40, 100]))
    # Packing must keep the backward LSTM from reading the garbage after frame 40; the
    # last conv frame still sees the padding through its kernel.
    assert torch.allclose(alone[0, :-1], padded[0, : out[0] - 1], atol=1e-4)


def test_bad_subsampling():
    with pytest.raises(ValueError, match="subsampling"):
        BiLSTMCTC(ModelConfig(subsampling=3), 80, 29)


def test_model_and_inference_path_do_not_import_lightning():
    code = ("import sys, asr.model, asr.checkpoint, asr.transcribe, asr.decode; "
            "sys.exit(1 if any(m.split('.')[0] in ('pytorch_lightning', 'lightning') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
