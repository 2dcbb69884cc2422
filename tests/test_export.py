"""ONNX export: the same log-probabilities as PyTorch, metadata inside, int8, and a torch-free runtime."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from asr import checkpoint
from asr.cli import main
from asr.errors import AsrError
from asr.onnxmodel import OnnxRecognizer


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    assert main(["export", "--model", str(tiny_model), "--out", str(out / "m.onnx")]) == 0
    assert main(["export", "--model", str(tiny_model), "--out", str(out / "m8.onnx"), "--int8"]) == 0
    return out / "m.onnx", out / "m8.onnx"


def test_onnx_gives_pytorchs_log_probs_for_any_batch_and_length(exported, tiny_model):
    rec = checkpoint.load(tiny_model)
    onnx = OnnxRecognizer(exported[0])
    assert onnx.vocab == rec.vocab and onnx.frame_seconds == rec.frame_seconds
    rng = np.random.default_rng(0)
    waves = [0.1 * rng.standard_normal(n).astype(np.float32) for n in (16000, 9000, 300, 40000)]
    for batch in (waves, waves[1:2], waves[2:]):
        for got, want in zip(onnx.run(batch), rec.run(batch)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4)


def test_an_utterance_gives_the_same_output_alone_and_in_a_padded_batch(tiny_model):
    rec = checkpoint.load(tiny_model)
    rng = np.random.default_rng(1)
    short, long = (0.1 * rng.standard_normal(n).astype(np.float32) for n in (7000, 30000))
    np.testing.assert_allclose(rec.run([short])[0], rec.run([short, long])[0], atol=1e-5)


def test_int8_model_runs_with_the_same_shapes_and_is_smaller(exported):
    fp32, int8 = (OnnxRecognizer(p) for p in exported)
    wave = [0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)]
    assert fp32.run(wave)[0].shape == int8.run(wave)[0].shape
    assert exported[1].stat().st_size < exported[0].stat().st_size


def test_transcribing_with_onnx_never_imports_torch(exported, speech):
    code = (
        "import sys, asr\n"
        f"r = asr.load({str(exported[1])!r}).transcribe({str(speech[0][0])!r})\n"
        "assert r.error is None and r.segments and r.duration > 0.5\n"
        "print('TORCH', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', "
        "'pytorch_lightning')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "TORCH []" in out


def test_cli_transcribes_with_an_onnx_model_like_a_checkpoint(exported, tiny_model, speech, capsys):
    files = [str(p) for p, _ in speech[:2]]
    assert main(["transcribe", "--model", str(exported[0]), "--format", "json", *files]) == 0
    from_onnx = capsys.readouterr().out
    assert main(["transcribe", "--model", str(tiny_model), "--format", "json", *files]) == 0
    assert from_onnx == capsys.readouterr().out


@pytest.mark.parametrize("content, reason", [
    (b"", "not a readable ONNX model"),
    (b"\x08\x07garbage" * 50, "not a readable ONNX model"),
])
def test_a_corrupt_onnx_file_is_one_line(tmp_path, speech, capsys, content, reason):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    assert main(["transcribe", "--model", str(path), str(speech[0][0])]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"asr: error: {path}: {reason}") and "\n" not in err


def test_a_foreign_onnx_model_is_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(AsrError, match="without asr's metadata"):
        OnnxRecognizer(tmp_path / "other.onnx")


def test_export_of_a_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "m.pt").write_bytes(b"nope")
    assert main(["export", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_vtln_with_an_onnx_model_is_a_one_line_error(exported, speech, capsys):
    assert main(["transcribe", "--model", str(exported[0]), "--vtln", str(speech[0][0])]) != 0
    err = capsys.readouterr().err.strip()
    assert "VTLN needs a PyTorch model" in err and len(err.splitlines()) == 1
