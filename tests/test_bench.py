"""The benchmark's measurements are computed right (their speed targets live in ``make bench``, not here)."""

import itertools
import json

import pytest

from asr.model import ModelConfig
from benchmarks import training
from benchmarks.training import padding_fraction, raw_step


def test_padding_fraction_matches_a_hand_count(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": "x.wav", "duration": d, "text": "a"}) + "\n"
                                for d in (1.0, 1.0, 2.0, 4.0)))
    # budget 4 s padded: batches [1, 1, 2]? no: 2 x 3 = 6 > 4, so [1, 1], [2], [4] -> no padding at all
    assert padding_fraction(manifest, 4.0, 30.0) == pytest.approx(0.0)
    # budget 6 s: [1, 1, 2] padded to 3 x 2 = 6 s for 4 s of audio, [4] alone: 2 of 10 padded seconds wasted
    assert padding_fraction(manifest, 6.0, 30.0) == pytest.approx(2 / 10)
    assert padding_fraction(manifest, 6.0, 3.0) == pytest.approx(2 / 6)  # the 4 s utterance is over max_duration


def test_raw_step_reports_the_audio_it_stepped_over_per_second_of_the_clock(monkeypatch):
    ticks = itertools.count(start=100, step=2)  # each reading of the clock is 2 s after the last
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(ticks)))
    speed = raw_step(ModelConfig(hidden_size=16, num_layers=1, conv_channels=4), batch=2, seconds=1.5, steps=3)
    assert speed == pytest.approx(2 * 1.5 * 3 / 2)  # 9 s of audio between two readings of the clock


@pytest.mark.slow
def test_inference_benchmark_runs_small_and_reports_every_figure(tiny_model, speech_manifest, tmp_path):
    from benchmarks import inference

    figures = inference.run_all(tiny_model, speech_manifest, tmp_path, scale=0.02)
    hour = figures["long_audio"]["hour_with_pauses"]
    assert hour["audio_seconds"] >= 60 * 60 * 0.02 and hour["peak_rss_mb"] > 50  # a Python with torch loaded
    assert hour["segments"] >= 2  # cut at the pauses
    # A WER is at least the difference in length between reference and hypothesis, over the reference.
    for r in figures["long_audio"].values():
        assert r["words_reference"] > 0
        assert r["wer"] >= abs(r["words_reference"] - r["words_hypothesis"]) / r["words_reference"] - 1e-4
    assert "wer_pieces_read_whole" in figures["long_audio"]["ten_minutes_no_pauses"]
    assert set(figures["onnx"]) >= {"pytorch", "onnx_fp32", "onnx_int8", "int8_speedup_vs_pytorch"}
    # The random tiny model: fp32 ONNX transcribes exactly as PyTorch does.
    assert figures["onnx"]["onnx_fp32"]["wer"] == figures["onnx"]["pytorch"]["wer"]
    server = figures["server"]
    assert server["load"]["errors"] == 0 and server["short_during_long"]["status"] == 200
    assert server["overload"]["server_errors_5xx"] == 0
    assert server["overload"]["ok"] + server["overload"]["rejected_429"] == 64
