"""A model over a pretrained encoder, end to end with a tiny encoder built here: training from the feature cache,
the checkpoint that names its encoder, transcription, ONNX export (encoder and network in one folder), live
reading, and one line for each thing that can be missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import asr
from asr import checkpoint
from asr.audio import load_audio
from asr.chunked import ChunkSettings
from asr.cli import main
from asr.errors import AsrError
from asr.features import FeatureConfig
from asr.model import ModelConfig
from asr.text import Vocabulary
from tests.encoder_fixtures import DIMS, tiny_whisper_state, write_ct2, write_moonshine


@pytest.fixture(scope="module")
def whisper_model(tmp_path_factory, speech_manifest) -> tuple[Path, Path, Path]:
    """(model.pt, the encoder's folder, the feature cache) of a tiny model trained a few steps over a tiny
    Whisper encoder, its features read from the cache."""
    from asr.training.cli import train

    root = tmp_path_factory.mktemp("whisper_model")
    encoder = write_ct2(root / "encoder", tiny_whisper_state())
    cfg = {
        "model": {"features": {"kind": "whisper", "encoder": str(encoder), "layers": [1, -1]},
                  "network": {"front": "stack", "subsampling": 2, "hidden_size": 16, "num_layers": 1},
                  "optim": {"warmup_steps": 2}},
        "data": {"train_manifest": str(speech_manifest), "val_manifest": str(speech_manifest),
                 "max_batch_seconds": 12, "num_workers": 0, "feature_cache": str(root / "cache")},
        "trainer": {"max_steps": 4, "max_epochs": 2, "default_root_dir": str(root / "exp"),
                    "enable_progress_bar": False, "logger": False},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    cli = train(["--config", str(root / "tiny.yaml")])
    assert cli.trainer.global_step == 4 and torch.isfinite(cli.trainer.callback_metrics["train_loss"])
    return root / "exp" / "model.pt", encoder, root / "cache"


def test_training_reads_the_cache_and_the_checkpoint_names_its_encoder(whisper_model, speech, speech_manifest):
    model, encoder, cache = whisper_model
    assert len(list(cache.rglob("*.npy"))) == len(speech)  # each utterance once (train and val share them)
    rec = checkpoint.load(model)
    assert rec.features.config.kind == "whisper" and rec.features.config.encoder == str(encoder)
    assert rec.features.config.layers == (1, -1) and rec.model.subsample.mix.shape == (2,)
    assert not any(k.startswith("features") for k in torch.load(model, weights_only=True)["state_dict"])
    assert rec.frame_seconds == pytest.approx(0.04)
    wave = load_audio(speech[0][0])
    log_probs = rec.run([wave.numpy()])[0]
    encoder_frames = (wave.numel() // 160 + 1) // 2  # 10-ms mel frames halved, then 2 stacked
    assert log_probs.shape == ((encoder_frames + 1) // 2, len(rec.vocab))


def test_the_cache_is_computed_once_and_again_for_a_changed_file(whisper_model, speech, tmp_path, capsys):
    from asr.manifest import Utterance
    from asr.training.feature_cache import FeatureCache

    model, _, _ = whisper_model
    features = checkpoint.load(model).features
    audio = tmp_path / "a.wav"
    shutil.copyfile(speech[0][0], audio)
    utt = Utterance(str(audio), 1.0, "x")
    cache = FeatureCache(tmp_path / "cache", features)
    assert cache.fill([utt])[0] == 1 and cache.fill([utt])[0] == 0
    expected, _ = features(load_audio(audio)[None], torch.tensor([load_audio(audio).numel()]))
    assert torch.allclose(cache.load(utt), expected[0], atol=2e-3)  # fp16 on disk
    shutil.copyfile(speech[1][0], audio)  # the same name, other audio: never read stale
    assert cache.fill([utt])[0] == 1


def test_augmented_views_are_cached_once_each_and_redrawn_when_the_augmentation_changes(whisper_model, speech,
                                                                                     tmp_path):
    from asr.corpora.dsp import change_speed
    from asr.manifest import Utterance
    from asr.training.feature_cache import FeatureCache
    from asr.training.wave_augment import WaveAugment, WaveAugmentConfig

    model, _, _ = whisper_model
    features = checkpoint.load(model).features
    path, text = speech[0]
    utt = Utterance(str(path), load_audio(path).numel() / 16000, text)
    slow = WaveAugment(WaveAugmentConfig(speeds=(0.8,)), seed=3)
    cache = FeatureCache(tmp_path / "cache", features, slow, views=2)
    assert cache.fill([utt], augmented=[utt])[0] == 2 and cache.fill([utt], augmented=[utt])[0] == 0
    wave = load_audio(path)
    expected, _ = features(change_speed(wave, 0.8)[None], torch.tensor([change_speed(wave, 0.8).numel()]))
    assert torch.allclose(cache.load(utt, 1), expected[0], atol=2e-3)  # view 1: the audio slowed, then encoded
    assert cache.load(utt, 1).shape[0] > 1.2 * cache.load(utt, 0).shape[0]
    assert cache.heard(utt, 1) == pytest.approx(utt.duration / 0.8) and cache.heard(utt, 0) == utt.duration
    assert {cache.pick(epoch, 0) for epoch in range(20)} == {0, 1}  # each epoch draws its view afresh
    fast = FeatureCache(tmp_path / "cache", features, WaveAugment(WaveAugmentConfig(speeds=(1.25,)), seed=3), views=2)
    assert fast.fill([utt], augmented=[utt])[0] == 1  # a changed augmentation: view 1 anew, view 0 kept
    with pytest.raises(AsrError, match="data.feature_views: 2 views need data.augment"):
        FeatureCache(tmp_path / "cache", features, None, views=2)


def test_training_batches_read_each_epochs_view_and_hold_its_duration(whisper_model, speech_manifest, tmp_path):
    from asr.training.datamodule import ASRDataModule
    from asr.training.wave_augment import WaveAugmentConfig

    model, _, _ = whisper_model
    features = checkpoint.load(model).features
    dm = ASRDataModule(train_manifest=str(speech_manifest), val_manifest=str(speech_manifest), num_workers=0,
                       max_batch_seconds=6, augment=WaveAugmentConfig(speeds=(0.5,)),
                       feature_cache=str(tmp_path / "cache"), feature_views=2)
    dm.setup()
    dm.use_encoder(features)
    cache, utts = dm.train_set.cache, dm.train_set.utts
    for epoch in range(3):
        loader = dm.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        for indices, batch in zip(loader.batch_sampler, loader):
            views = [cache.pick(epoch, i) for i in indices]
            # each item is the view drawn for it; a half-speed view is twice the audio, and the batch holds that
            assert batch["feat_lengths"].tolist() == [cache.load(utts[i], v).shape[0] for i, v in zip(indices, views)]
            assert sum(cache.heard(utts[i], v) for i, v in zip(indices, views)) <= 6 or len(indices) == 1
    assert dm.val_set.views is False and len(list((tmp_path / "cache").rglob("*.npy"))) == 2 * len(utts)


def test_training_with_views_batches_by_the_duration_of_each_epochs_view(whisper_model, speech_manifest, tmp_path):
    from asr.training.cli import train

    _, encoder, _ = whisper_model
    cfg = {
        "model": {"features": {"kind": "whisper", "encoder": str(encoder)},
                  "network": {"front": "stack", "subsampling": 2, "hidden_size": 8, "num_layers": 1}},
        "data": {"train_manifest": str(speech_manifest), "val_manifest": str(speech_manifest), "num_workers": 0,
                 "max_batch_seconds": 12, "feature_cache": str(tmp_path / "cache"), "feature_views": 2,
                 "augment": {"speeds": [0.8]}},
        "trainer": {"max_steps": 2, "default_root_dir": str(tmp_path / "exp"), "enable_progress_bar": False,
                    "logger": False, "limit_val_batches": 0},
    }
    (tmp_path / "views.yaml").write_text(yaml.safe_dump(cfg))
    cli = train(["--config", str(tmp_path / "views.yaml")])
    # The loader Lightning keeps is built before training starts: its sampler must already know the views.
    assert cli.trainer.train_dataloader.batch_sampler.heard is not None and cli.trainer.global_step == 2
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2 * len(cli.datamodule.train_set.utts)


def test_transcription_and_onnx_export_of_an_encoder_model(whisper_model, speech, tmp_path, capsys):
    model, _, _ = whisper_model
    assert main(["transcribe", "--model", str(model), str(speech[0][0])]) == 0
    assert capsys.readouterr().out.startswith(f"{speech[0][0]}\t")
    out = tmp_path / "folder"
    assert main(["export", "--model", str(model), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "model.onnx"]
    torch_model, onnx_model = asr.load(str(model)), asr.load(str(out))
    waves = [load_audio(p).numpy() for p, _ in speech[:3]]
    for a, b in zip(torch_model.network.run(waves), onnx_model.network.run(waves)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-3
    (out / "encoder.onnx").unlink()
    with pytest.raises(AsrError, match="encoder.onnx: missing"):
        asr.load(str(out))


def test_an_encoder_model_refuses_chunked_reading_in_one_line_and_streams_by_rereading(whisper_model):
    from asr.stream import Stream

    model, _, _ = whisper_model
    with pytest.raises(AsrError, match="front-end is an encoder .*whisper.* reads whole windows"):
        asr.load(str(model), chunked=ChunkSettings())
    assert Stream(asr.load(str(model))).chunked is False  # live sessions reread the utterance so far
    with pytest.raises(AsrError, match="--vtln warps a log-mel filterbank"):
        asr.load(str(model), vtln=True)


def test_a_checkpoint_whose_encoder_is_missing_gives_one_line(whisper_model, tmp_path, capsys):
    model, encoder, _ = whisper_model
    section = torch.load(model, weights_only=True)
    section["asr"]["feature_config"]["encoder"] = str(tmp_path / "gone")
    moved = tmp_path / "model.pt"
    torch.save(section, moved)
    with pytest.raises(checkpoint.CheckpointError) as caught:
        checkpoint.load(moved)
    assert str(moved) in str(caught.value) and "gone" in str(caught.value) and "\n" not in str(caught.value)
    assert main(["transcribe", "--model", str(moved), str(model)]) != 0
    assert "asr: error:" in capsys.readouterr().err


def test_a_moonshine_model_exports_its_graph_beside_the_network(tmp_path, speech):
    encoder = write_moonshine(tmp_path / "moonshine" / "encoder_model.onnx")
    torch.manual_seed(0)
    section = checkpoint.asr_section(ModelConfig(front="stack", subsampling=1, hidden_size=8, num_layers=1),
                                     FeatureConfig(kind="moonshine", encoder=str(encoder)), Vocabulary())
    rec = checkpoint.build(section)
    assert rec.frame_seconds == pytest.approx(0.024) and rec.model.subsample.output_dim == 16
    model = tmp_path / "model.pt"
    checkpoint.save(model, rec)
    out = tmp_path / "folder"
    assert main(["export", "--model", str(model), "--out", str(out), "--int8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "model.onnx"]
    waves = [load_audio(p).numpy() for p, _ in speech[:2]]
    for a, b in zip(asr.load(str(model)).network.run(waves), asr.load(str(out)).network.run(waves)):
        assert a.shape == b.shape and np.abs(a - b).max() < 0.1  # int8 network


def test_the_width_of_a_stacked_front_follows_the_layers_and_factor():
    from asr.model import BiLSTMCTC

    net = BiLSTMCTC(ModelConfig(front="stack", subsampling=3, hidden_size=8, num_layers=1), 2 * DIMS.width, 29, 2)
    log_probs, frames = net(torch.randn(2, 10, 2 * DIMS.width), torch.tensor([10, 4]))
    assert log_probs.shape == (2, 4, 29) and frames.tolist() == [4, 2]
    with pytest.raises(ValueError, match="model.front must be conv or stack"):
        BiLSTMCTC(ModelConfig(front="transformer"), 80, 29)


def test_tuned_blocks_start_as_the_encoder_train_from_the_state_below_them_and_export(speech, speech_manifest,
                                                                                   tmp_path):
    from asr.features import build_features
    from asr.manifest import Utterance
    from asr.training.cli import train
    from asr.training.feature_cache import FeatureCache

    encoder = write_ct2(tmp_path / "encoder", tiny_whisper_state())
    whole = build_features(FeatureConfig(kind="whisper", encoder=str(encoder)))
    below = build_features(FeatureConfig(kind="whisper", encoder=str(encoder), tuned_blocks=1))
    waves, lengths = 0.1 * torch.randn(2, 24000), torch.tensor([24000, 9000])
    feats, frames = below(waves, lengths)
    # Untrained, the network's copy of the last block reads as the frozen encoder's last layer, padding or not.
    assert torch.allclose(below.top()(feats, frames), whole(waves, lengths)[0], atol=1e-5)
    cfg = {
        "model": {"features": {"kind": "whisper", "encoder": str(encoder), "tuned_blocks": 1},
                  "network": {"front": "stack", "subsampling": 2, "hidden_size": 16, "num_layers": 1},
                  "optim": {"warmup_steps": 1, "lr": 1e-2}},
        "data": {"train_manifest": str(speech_manifest), "val_manifest": str(speech_manifest),
                 "max_batch_seconds": 12, "num_workers": 0, "feature_cache": str(tmp_path / "cache")},
        "trainer": {"max_steps": 3, "default_root_dir": str(tmp_path / "exp"), "enable_progress_bar": False,
                    "logger": False, "limit_val_batches": 0},
    }
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(cfg))
    train(["--config", str(tmp_path / "tuned.yaml")])
    model = tmp_path / "exp" / "model.pt"
    state = torch.load(model, weights_only=True)["state_dict"]
    # The tuned block is kept in the checkpoint and has moved; the frozen encoder's own weights have not.
    tuned = state["top.blocks.0.mlp.0.weight"]
    assert not torch.allclose(tuned, whole.encoder.blocks[-1].mlp[0].weight)
    assert torch.equal(build_features(FeatureConfig(kind="whisper", encoder=str(encoder))).encoder.blocks[-1]
                       .mlp[0].weight, whole.encoder.blocks[-1].mlp[0].weight)
    rec = checkpoint.load(model)
    assert torch.equal(rec.model.top.blocks[0].mlp[0].weight, tuned)
    # The cache keeps the state the tuned block reads, under a name of its own.
    path, text = speech[0]
    utt = Utterance(str(path), load_audio(path).numel() / 16000, text)
    cache = FeatureCache(tmp_path / "cache", rec.features)
    assert cache.fill([utt])[0] == 0  # filled by training
    wave = load_audio(path)
    expected, _ = below(wave[None], torch.tensor([wave.numel()]))
    assert torch.allclose(cache.load(utt), expected[0], atol=2e-3)
    assert FeatureCache(tmp_path / "cache", whole).root != cache.root
    # Transcription and the torch-free export read the tuned block too.
    out = tmp_path / "folder"
    assert main(["export", "--model", str(model), "--out", str(out)]) == 0
    waves = [load_audio(p).numpy() for p, _ in speech[:3]]
    for a, b in zip(asr.load(str(model)).network.run(waves), asr.load(str(out)).network.run(waves)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-3


def test_tuned_blocks_attend_within_each_30_s_window_of_a_long_file(monkeypatch, tmp_path):
    from asr import pretrained
    from asr.features import build_features

    monkeypatch.setattr(pretrained, "WHISPER_WINDOW", 16000)  # 1-s windows, so the test stays small
    encoder = write_ct2(tmp_path / "encoder", tiny_whisper_state())
    whole = build_features(FeatureConfig(kind="whisper", encoder=str(encoder)))
    below = build_features(FeatureConfig(kind="whisper", encoder=str(encoder), tuned_blocks=1))
    waves = 0.1 * torch.randn(1, 40000)
    feats, frames = below(waves, torch.tensor([40000]))
    expected, _ = whole(waves, torch.tensor([40000]))
    assert frames.tolist() == [125]
    assert torch.allclose(below.top()(feats, frames), expected, atol=1e-5)


def test_tuning_blocks_an_encoder_lacks_is_refused_in_one_line(tmp_path):
    from asr.features import build_features
    from asr.pretrained import EncoderError

    encoder = write_ct2(tmp_path / "encoder", tiny_whisper_state())
    with pytest.raises(EncoderError, match=rf"features.tuned_blocks 3: .*1 to its count"):
        build_features(FeatureConfig(kind="whisper", encoder=str(encoder), tuned_blocks=DIMS.layers + 1))
