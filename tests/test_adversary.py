"""Speaker-adversarial training: the reversed gradient, the classifier's masking, and `asr train` with it."""

import json

import pytest
import torch
import torch.nn.functional as F
import yaml

from asr import checkpoint
from asr.cli import main
from asr.training.adversary import AdversaryConfig, SpeakerAdversary, reversal_scale
from asr.training.cli import train


def test_the_network_below_gets_the_classifier_gradient_reversed_and_scaled():
    torch.manual_seed(0)
    adversary = SpeakerAdversary(6, 8, 3)
    x = torch.randn(2, 5, 6, requires_grad=True)
    lengths, speakers = torch.tensor([5, 3]), torch.tensor([0, 2])
    head = adversary.classify[2].weight

    def grads(scale):
        loss, _ = adversary(x, lengths, speakers, scale=scale)
        return torch.autograd.grad(loss, [x, head])

    # What plain (unreversed) cross-entropy over the valid frames would send down.
    valid = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    expected = F.cross_entropy(adversary.classify(x)[valid], speakers[:, None].expand(-1, 5)[valid])
    to_x, to_head = torch.autograd.grad(expected, [x, head])
    still, head_still = grads(0.0)
    pushed, head_pushed = grads(0.25)
    assert still.abs().sum() == 0  # scale 0: the layers below are not pushed at all
    assert torch.allclose(pushed, -0.25 * to_x, atol=1e-7)  # reversed: they learn to hide the speaker
    # The classifier itself still learns to find the speaker: its own gradient is not reversed.
    assert torch.allclose(head_still, to_head) and torch.allclose(head_pushed, to_head)


def test_padding_frames_and_unknown_speakers_are_left_out():
    torch.manual_seed(0)
    adversary = SpeakerAdversary(4, 8, 2)
    x = torch.randn(3, 6, 4)
    loss, accuracy = adversary(x, torch.tensor([6, 2, 6]), torch.tensor([1, 0, -1]), scale=1.0)
    logits = adversary.classify(x)
    frames = torch.cat([logits[0, :6], logits[1, :2]])
    assert torch.allclose(loss, F.cross_entropy(frames, torch.tensor([1] * 6 + [0] * 2)))
    assert 0.0 <= accuracy <= 1.0
    none, _ = adversary(x, torch.tensor([6, 2, 6]), torch.tensor([-1, -1, -1]), scale=1.0)
    assert none.item() == 0.0 and none.requires_grad


def test_the_reversal_ramps_from_zero_to_its_weight():
    config = AdversaryConfig(weight=0.5)
    scales = [reversal_scale(config, p / 10) for p in range(11)]
    assert scales[0] == 0.0 and scales == sorted(scales) and abs(scales[-1] - 0.5) < 1e-4
    assert reversal_scale(AdversaryConfig(), 0.7) == 0.0


def labelled_config(tmp_path, speech, speakers: bool, layer: int = 1):
    import soundfile as sf
    manifest = tmp_path / "train.jsonl"
    rows = [{"audio_filepath": str(p), "duration": sf.info(str(p)).duration, "text": t}
            | ({"speaker": "kal" if i % 2 == 0 else "espeak"} if speakers else {})
            for i, (p, t) in enumerate(speech)]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {
        "model": {"network": {"hidden_size": 16, "num_layers": 2, "conv_channels": 4},
                  "optim": {"warmup_steps": 2}, "adversary": {"weight": 1.0, "layer": layer, "hidden": 8}},
        "data": {"train_manifest": str(manifest), "val_manifest": str(manifest), "max_batch_seconds": 12,
                 "num_workers": 0},
        "trainer": {"max_steps": 4, "max_epochs": 2, "default_root_dir": str(tmp_path / "exp"),
                    "enable_progress_bar": False, "logger": False},
    }
    path = tmp_path / "adv.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_with_a_speaker_adversary_exports_a_plain_model(tmp_path, speech):
    cli = train(["--config", str(labelled_config(tmp_path, speech, speakers=True))])
    metrics = cli.trainer.callback_metrics
    assert cli.trainer.global_step == 4 and torch.isfinite(metrics["adv_loss"])
    assert cli.model.adversary.classify[2].out_features == 2  # kal and espeak, from the manifest
    # The classifier is training-only: the Lightning checkpoint keeps it (to resume), model.pt does not.
    ckpt = torch.load(next((tmp_path / "exp").rglob("*.ckpt")), weights_only=True)
    assert any(k.startswith("adversary.") for k in ckpt["state_dict"])
    exported = torch.load(tmp_path / "exp" / "model.pt", weights_only=True)
    assert not any("adversary" in k for k in exported["state_dict"])
    assert checkpoint.load(tmp_path / "exp" / "model.pt").model.config.num_layers == 2


@pytest.mark.parametrize("speakers, layer, message", [
    (False, 1, "needs speaker labels in the training manifest"),
    (True, 3, "model.adversary.layer must be 0..2"),
])
def test_bad_adversary_settings_get_one_line(tmp_path, speech, capsys, speakers, layer, message):
    config = labelled_config(tmp_path, speech, speakers=speakers, layer=layer)
    assert main(["train", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
