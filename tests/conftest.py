"""Shared fixtures: audio synthesised on the spot (tones and TTS speech), never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.corpora import tts
from asr.audio import SAMPLE_RATE
from asr.manifest import Utterance, write_manifest

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "she had a feeling of joy",
    "and god said let there be light",
    "we did not understand his motives",
    "the team is a unit",
    "he acted with the best of motives",
    "the oceans are teeming with life",
]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped where no CUDA device is visible (``make test`` runs them on a GPU machine)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def tone(seconds: float, rate: int = SAMPLE_RATE, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone, ``(samples,)`` or ``(samples, channels)`` float32 in [-0.5, 0.5]."""
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> list[tuple[Path, str]]:
    """Eight short TTS utterances (16 kHz wav) with their transcripts, from two engines."""
    root = tmp_path_factory.mktemp("speech")
    jobs = [(text, root / f"utt{i}.wav") for i, text in enumerate(SENTENCES)]
    tts.synthesize(tts.Voice.parse("flite:kal16"), jobs[::2])
    tts.synthesize(tts.Voice.parse("espeak:en-us"), jobs[1::2])
    return [(path, text) for text, path in jobs]


@pytest.fixture(scope="session")
def speech_manifest(speech, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "all.jsonl"
    write_manifest(path, [Utterance(str(p), sf.info(str(p)).duration, t) for p, t in speech])
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained but valid exported model (weights random), for CLI and transcription plumbing tests."""
    from asr import checkpoint
    from asr.features import FeatureConfig
    from asr.model import ModelConfig
    from asr.text import Vocabulary

    torch.manual_seed(0)
    rec = checkpoint.build(checkpoint.asr_section(ModelConfig(hidden_size=16, num_layers=1, conv_channels=4),
                                                  FeatureConfig(), Vocabulary()))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    checkpoint.save(path, rec)
    return path


@pytest.fixture(scope="session")
def streaming_model(speech_manifest, tmp_path_factory) -> Path:
    """A small model trained by ``asr train`` in both modes (whole and chunked, running feature normalisation)
    until it knows the eight ``speech`` utterances by heart: live recognition tests have real words to find."""
    import yaml

    from asr.training.cli import train

    root = tmp_path_factory.mktemp("streaming_model")
    steps = 700
    config = {
        "seed_everything": 0,
        "model": {"network": {"hidden_size": 96, "num_layers": 2, "conv_channels": 8, "dropout": 0.0},
                  "features": {"normalize": "running"}, "spec_augment": {"freq_masks": 0, "time_masks": 0},
                  "optim": {"lr": 3e-3, "warmup_steps": 20, "weight_decay": 0.0},
                  "streaming": {"full_share": 0.5, "chunks": [0.32, 0.64], "right": [0.16, 0.32]}},
        # Silence around the speech, as a live session's utterances have it (the VAD's cuts).
        "data": {"train_manifest": str(speech_manifest), "val_manifest": str(speech_manifest),
                 "max_batch_seconds": 60, "num_workers": 0, "augment": {"pad_prob": 0.6}},
        "trainer": {"max_steps": steps, "max_epochs": steps, "default_root_dir": str(root), "logger": False,
                    "enable_progress_bar": False, "check_val_every_n_epoch": steps},
        "checkpoint": {"every_n_train_steps": steps},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    train(["--config", str(root / "config.yaml")])
    return root / "model.pt"


def encode(path: Path, wave: np.ndarray, rate: int, codec: str, video: bool = False) -> Path:
    """Write mono ``wave`` with an FFmpeg codec through PyAV (aac -> m4a, libopus -> webm ...); with ``video``,
    a few video frames and no audio stream at all."""
    import av

    with av.open(str(path), "w") as container:
        if video:
            stream = container.add_stream("mpeg4", rate=10)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
            for _ in range(10):
                frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        else:
            stream = container.add_stream(codec, rate=rate)
            stream.layout = "mono"
            size = stream.codec_context.frame_size or 1024
            fmt = stream.codec_context.format.name
            for i in range(0, wave.size, size):
                chunk = wave[i:i + size][None, :]
                chunk = (chunk * 32767).astype(np.int16) if fmt.startswith("s16") else chunk.astype(np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout="mono")
                frame.sample_rate = rate
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
