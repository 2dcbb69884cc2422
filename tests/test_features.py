import torch

from asr.features import FeatureConfig, LogMel
from asr.training.spec_augment import SpecAugment, SpecAugmentConfig, vtlp_factors


def test_shapes_and_frame_counts():
    fe = LogMel()
    waves = torch.randn(3, 16000)
    lengths = torch.tensor([16000, 8000, 400])
    feats, frames = fe(waves, lengths)
    assert feats.shape == (3, 98, 80)
    assert frames.tolist() == [98, 48, 1]  # whole 400-sample frames every 160 samples, at least one
    assert (feats[1, 48:] == 0).all() and (feats[2, 1:] == 0).all()


def test_padding_does_not_change_features():
    torch.manual_seed(0)
    short = torch.randn(8000)
    batch = torch.zeros(2, 16000)
    batch[0, :8000] = short
    batch[1] = torch.randn(16000)
    for normalize, tol in (("none", 1e-5), ("per_feature", 1e-4)):
        fe = LogMel(FeatureConfig(normalize=normalize))
        alone, _ = fe(short[None], torch.tensor([8000]))
        padded, frames = fe(batch, torch.tensor([8000, 16000]))
        assert frames[0] == alone.shape[1]
        assert torch.allclose(alone[0], padded[0, : frames[0]], atol=tol), normalize


def test_per_feature_normalisation():
    feats, frames = LogMel()(torch.randn(1, 32000) * torch.linspace(0, 1, 32000), torch.tensor([32000]))
    assert feats[0].mean(0).abs().max() < 1e-3
    assert (feats[0].std(0, unbiased=False) - 1).abs().max() < 1e-2


def test_hop_and_window_from_milliseconds():
    cfg = FeatureConfig(hop_ms=10, win_ms=25)
    assert (cfg.hop_length, cfg.win_length) == (160, 400)


def test_spec_augment_only_in_training_and_within_length():
    aug = SpecAugment(SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=0.2))
    feats = torch.ones(4, 200, 80)
    lengths = torch.tensor([200, 150, 100, 10])
    aug.eval()
    assert torch.equal(aug(feats, lengths), feats)
    aug.train()
    torch.manual_seed(0)
    out = aug(feats, lengths)
    assert out.shape == feats.shape
    assert (out == 0).any() and (out == 1).any()
    masked_fraction = (out == 0).float().mean()
    assert masked_fraction < 0.6


def test_vtlp_moves_a_tone_along_the_mel_axis_and_is_neutral_at_one():
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    raw = LogMel(FeatureConfig(normalize="none"))
    lengths = torch.tensor([16000])
    peak = {a: int(raw(tone, lengths, torch.tensor([a]))[0][0].mean(0).argmax()) for a in (0.87, 1.0, 1.15)}
    assert peak[0.87] < peak[1.0] < peak[1.15]
    plain, _ = raw(tone, lengths)
    assert torch.allclose(plain, raw(tone, lengths, torch.tensor([1.0]))[0], atol=1e-4)


def test_vtlp_factors_are_drawn_in_range_and_off_by_default():
    assert vtlp_factors(4, SpecAugmentConfig(), "cpu") is None
    f = vtlp_factors(1000, SpecAugmentConfig(vtlp=(0.9, 1.1)), "cpu")
    assert f.shape == (1000,) and 0.9 <= float(f.min()) and float(f.max()) <= 1.1
