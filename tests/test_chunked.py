"""Chunked reading (the latency-controlled BLSTM) and its pieces: exact in batch and incrementally, frame for frame.

Streaming is only as good as its agreement with training: the chunked mode trained in batch, and a stream read
chunk by chunk as audio arrives, must give the same log-probabilities, for any block size the audio comes in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr import checkpoint
from asr.chunked import ChunkedReader, ChunkSettings, RereadReader, can_chunk
from asr.features import FeatureConfig, LogMel, LogMelStream, running_normalize
from asr.model import BiLSTM, ConvSubsampling, ModelConfig
from asr.text import Vocabulary

STATS = {"stats_mean": tuple(np.linspace(-8, -2, 80).tolist()), "stats_std": tuple(np.linspace(1, 3, 80).tolist())}


def random_recognizer(normalize: str = "running") -> checkpoint.Recognizer:
    torch.manual_seed(0)
    features = FeatureConfig(normalize=normalize, **(STATS if normalize in ("running", "global") else {}))
    rec = checkpoint.build(checkpoint.asr_section(ModelConfig(hidden_size=16, num_layers=2, conv_channels=4),
                                                  features, Vocabulary()))
    with torch.no_grad():  # BatchNorm statistics away from the identity, so the front's arithmetic shows
        for m in rec.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return rec


@pytest.mark.parametrize("chunk, right", [(8, 4), (5, 0), (4, 6), (40, 3)])
def test_chunked_mode_in_batch_equals_chunk_by_chunk(chunk, right):
    torch.manual_seed(0)
    lstm = BiLSTM(10, 8, 3, 0.0).eval()
    x, lengths = torch.randn(3, 37, 10), torch.tensor([37, 30, 9])
    with torch.no_grad():
        batch = lstm(x, lengths, chunk, right)
        for b, n in enumerate(lengths.tolist()):
            states, outs = [None] * 3, []
            for t in range(0, n, chunk):
                out, states = lstm.forward_chunk(x[b:b + 1, t:min(t + chunk, n)],
                                                 x[b:b + 1, t + chunk:min(t + chunk + right, n)],
                                                 states)
                outs.append(out)
            assert torch.allclose(torch.cat(outs, 1)[0], batch[b, :n], atol=1e-5), b


def test_chunks_look_ahead_no_further_than_their_right_context():
    torch.manual_seed(0)
    lstm = BiLSTM(6, 8, 3, 0.0).eval()
    x = torch.randn(1, 40, 6)
    changed = x.clone()
    changed[:, 20:] = torch.randn(1, 20, 6)  # the future from frame 20 on
    with torch.no_grad():
        a, b = lstm(x, torch.tensor([40]), 8, 4), lstm(changed, torch.tensor([40]), 8, 4)
        full_a, full_b = lstm(x, torch.tensor([40])), lstm(changed, torch.tensor([40]))
    # Chunks [0, 8) and [8, 16) read at most to frame 20: three layers deep, they are untouched.
    assert torch.equal(a[:, :16], b[:, :16]) and not torch.allclose(a[:, 16:20], b[:, 16:20])
    assert not torch.allclose(full_a[:, :16], full_b[:, :16])  # the whole-utterance reading sees it all
    # A chunk as long as the utterance is full mode.
    with torch.no_grad():
        assert torch.allclose(lstm(x, torch.tensor([40]), 64, 0), full_a, atol=1e-6)


@pytest.mark.parametrize("factor", [2, 4])
def test_the_front_streamed_equals_the_front_on_the_whole(factor):
    torch.manual_seed(0)
    conv = ConvSubsampling(80, 4, factor).eval()
    with torch.no_grad():
        for m in conv.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
        for frames in (1, 2, 5, 37, 101):
            feats = torch.randn(frames, 80)
            whole, n = conv(feats[None], torch.tensor([frames]))
            for step in (1, 3, 16):
                cache, outs = None, []
                for t in range(0, frames, step):
                    out, cache = conv.forward_chunk(feats[t:t + step], cache)
                    outs.append(out)
                outs.append(conv.forward_chunk(feats[:0], cache, final=True)[0])
                got = torch.cat(outs)
                assert got.shape[0] == int(n) and torch.allclose(got, whole[0, : int(n)], atol=1e-5), (frames, step)


@pytest.mark.parametrize("normalize", ["running", "global", "none"])
def test_stream_features_equal_the_whole_signal_s(normalize):
    features = LogMel(FeatureConfig(normalize=normalize, **(STATS if normalize != "none" else {})))
    wave = 0.1 * torch.randn(16000 * 2 + 123, generator=torch.Generator().manual_seed(1))
    whole, frames = features(wave[None], torch.tensor([wave.numel()]))
    for block in (100, 1600, 7777):
        stream = LogMelStream(features)
        got = torch.cat([stream.accept(wave[i:i + block]) for i in range(0, wave.numel(), block)] + [stream.finish()])
        assert got.shape[0] == int(frames) and torch.allclose(got, whole[0], atol=1e-4), block


def test_running_normalisation_is_causal_and_pads_cleanly():
    torch.manual_seed(0)
    mean, std = torch.zeros(4), torch.ones(4)
    feats = torch.randn(1, 30, 4)
    out, _ = running_normalize(feats, mean, std, prior=10.0)
    changed = feats.clone()
    changed[:, 20:] += 5.0
    out2, _ = running_normalize(changed, mean, std, prior=10.0)
    assert torch.equal(out[:, :20], out2[:, :20])  # the future never changes the past
    first, state = running_normalize(feats[:, :12], mean, std, prior=10.0)
    rest, _ = running_normalize(feats[:, 12:], mean, std, prior=10.0, state=state)
    assert torch.allclose(torch.cat([first, rest], 1), out, atol=1e-5)


def test_per_utterance_normalisation_cannot_stream():
    with pytest.raises(ValueError, match="needs the whole utterance"):
        LogMelStream(LogMel(FeatureConfig(normalize="per_feature")))
    assert not can_chunk(random_recognizer("per_feature")) and can_chunk(random_recognizer("running"))
    with pytest.raises(ValueError, match="statistics"):
        LogMel(FeatureConfig(normalize="running"))(torch.zeros(1, 1600), torch.tensor([1600]))


@pytest.mark.parametrize("settings", [ChunkSettings(0.64, 0.32), ChunkSettings(0.32, 0.16), ChunkSettings(0.32, 0.0)])
def test_a_stream_read_in_any_blocks_gives_the_chunked_mode_s_log_probs(settings):
    rec = random_recognizer()
    wave = (0.1 * np.random.default_rng(0).standard_normal(16000 * 3 + 1234)).astype(np.float32)
    chunk, right = settings.frames(rec.frame_seconds)
    with torch.inference_mode():
        feats, n = rec.features(torch.from_numpy(wave)[None], torch.tensor([wave.size]))
        log_probs, frames = rec.model(feats, n, chunk, right)
    expected = log_probs[0, : int(frames[0])].numpy()
    for block in (160, 1600, 100_000):
        reader = ChunkedReader(rec, settings)
        got = np.concatenate([reader.accept(wave[i:i + block]) for i in range(0, wave.size, block)] + [reader.finish()])
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4, block
    assert reader.delay == pytest.approx((chunk + right) * 0.04 + 0.03 + 0.015)


def test_a_provisional_reading_leaves_the_stream_as_it_was():
    rec = random_recognizer()
    wave = (0.1 * np.random.default_rng(1).standard_normal(16000 * 2)).astype(np.float32)
    plain, probed = ChunkedReader(rec), ChunkedReader(rec)
    a, b = [], []
    for i in range(0, wave.size, 1600):
        a.append(plain.accept(wave[i:i + 1600]))
        b.append(probed.accept(wave[i:i + 1600]))
        tail = probed.provisional()
        assert tail.shape[1] == len(Vocabulary())
    assert np.array_equal(np.concatenate(a + [plain.finish()]), np.concatenate(b + [probed.finish()]))


def test_a_model_that_cannot_chunk_is_reread_whole():
    rec = random_recognizer("per_feature")
    reader = RereadReader(rec)
    wave = (0.1 * np.random.default_rng(2).standard_normal(16000)).astype(np.float32)
    assert reader.accept(wave[:8000]).shape[0] == 0  # nothing is ever committed
    reader.accept(wave[8000:])
    assert np.allclose(reader.provisional(), rec.run([wave])[0], atol=1e-5)
