import pytest
import torch

from asr import checkpoint
from asr.checkpoint import CheckpointError
from asr.features import FeatureConfig
from asr.model import ModelConfig
from asr.text import Vocabulary


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=16, num_layers=2, conv_channels=4, subsampling=2)
    rec = checkpoint.build(checkpoint.asr_section(cfg, FeatureConfig(n_mels=40), Vocabulary()))
    checkpoint.save(tmp_path / "m.pt", rec)
    loaded = checkpoint.load(tmp_path / "m.pt")
    assert loaded.model.config == cfg and loaded.features.config.n_mels == 40
    assert loaded.vocab == Vocabulary()
    waves, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    a, _ = rec.log_probs(waves, lengths)
    b, _ = loaded.log_probs(waves, lengths)
    assert torch.equal(a, b)
    assert loaded.frame_seconds == pytest.approx(0.02)


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        checkpoint.load(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        checkpoint.load(tmp_path)


def test_corrupt(tmp_path, tiny_model):
    data = tiny_model.read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half\.pt: (not a PyTorch checkpoint|corrupt)"):
        checkpoint.load(tmp_path / "half.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pt: not a PyTorch checkpoint"):
        checkpoint.load(tmp_path / "text.pt")


def test_foreign(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an asr checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")  # a whole pickled module
    with pytest.raises(CheckpointError, match="other than plain weights"):
        checkpoint.load(tmp_path / "pickled.pt")


def test_weights_that_do_not_match_the_config(tmp_path, tiny_model):
    ckpt = torch.load(tiny_model, weights_only=True)
    ckpt["asr"]["model_config"]["hidden_size"] = 32
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoint.load(tmp_path / "mismatch.pt")
