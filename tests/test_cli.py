"""The ``asr`` command: output contract, bad input (one line, non-zero exit, no traceback), odd audio."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from tests.conftest import tone


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_transcribe_txt_and_json(capsys, tiny_model, speech):
    files = [p for p, _ in speech[:3]]
    code, out, err = run(capsys, "transcribe", "--model", tiny_model, *files)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(f) for f in files]
    code, out, _ = run(capsys, "transcribe", "--model", tiny_model, "--format", "json", *files)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert all(set(r) == {"file", "text", "duration", "segments", "words"} and r["duration"] > 0.5 for r in rows)
    assert all(len(r["segments"]) == 1 and r["segments"][0]["start"] == 0.0 for r in rows)  # short: one piece


def bad_inputs(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(0.5), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio at all\n" * 20)
    (tmp_path / "trunc.wav").write_bytes(good.read_bytes()[:16])
    (tmp_path / "garbage.flac").write_bytes(b"fLaC" + bytes(range(256)) * 4)
    (tmp_path / "adir").mkdir()
    return {
        "missing.wav": "no such file",
        "empty.wav": "empty file",
        "text.wav": "not a readable audio file",
        "trunc.wav": "not a readable audio file",
        "garbage.flac": "not a readable audio file",
        "adir": "is a directory, not an audio file",
    }


def test_bad_files_reported_one_line_each_and_good_ones_transcribed(capsys, tmp_path, tiny_model):
    expected = bad_inputs(tmp_path)
    files = [tmp_path / "good.wav", *[tmp_path / name for name in expected], tmp_path / "good.wav"]
    code, out, err = run(capsys, "transcribe", "--model", tiny_model, *files)
    assert code == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(tmp_path / "good.wav")] * 2
    errors = [line for line in err.splitlines() if line.startswith("asr: error: ")]
    assert len(errors) == len(expected)
    for (name, reason), line in zip(expected.items(), errors):
        assert line == f"asr: error: {tmp_path / name}: {reason}" or line.startswith(f"asr: error: {tmp_path / name}: {reason} (")


@pytest.mark.parametrize("name, data, rate, subtype", [
    ("stereo.wav", tone(1.0, channels=2), 16000, "PCM_16"),
    ("8k.wav", tone(1.0, 8000), 8000, "PCM_16"),
    ("44k.flac", tone(1.0, 44100), 44100, "PCM_16"),
    ("u8.wav", tone(1.0), 16000, "PCM_U8"),
    ("float.wav", tone(1.0), 16000, "FLOAT"),
    ("silence.wav", np.zeros(16000, np.float32), 16000, "PCM_16"),
    ("short.wav", tone(0.05), 16000, "PCM_16"),
    ("tiny.wav", tone(0.001), 16000, "PCM_16"),
    ("ogg.ogg", tone(1.0, 48000, channels=2), 48000, "VORBIS"),
])
def test_odd_but_valid_audio(capsys, tmp_path, tiny_model, name, data, rate, subtype):
    sf.write(tmp_path / name, data, rate, subtype=subtype)
    code, out, err = run(capsys, "transcribe", "--model", tiny_model, tmp_path / name)
    assert (code, err) == (0, "")
    assert out.startswith(f"{tmp_path / name}\t")


@pytest.mark.parametrize("content, reason", [
    (b"", "not a PyTorch checkpoint"),
    (b"garbage" * 100, "not a PyTorch checkpoint"),
])
def test_bad_model(capsys, tmp_path, speech, content, reason):
    (tmp_path / "m.pt").write_bytes(content)
    code, out, err = run(capsys, "transcribe", "--model", tmp_path / "m.pt", speech[0][0])
    assert code == 1 and out == ""
    assert err.strip().startswith(f"asr: error: {tmp_path / 'm.pt'}: {reason}")
    assert len(err.strip().splitlines()) == 1


def test_evaluate_report(capsys, tmp_path, tiny_model, speech_manifest):
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, "--report", report)
    assert code == 0
    assert "WER" in out and "CER" in out
    data = json.loads(report.read_text())
    assert 0 <= data["cer"] and data["wer"] == data["word_errors"] / data["words"]
    utt = data["utterances"][0]
    assert {"reference", "hypothesis", "word_errors", "words", "char_errors", "chars"} <= set(utt)
    assert utt["reference"] == "the cat sat on the mat"


def test_evaluate_gives_each_speaker_of_a_labelled_manifest(capsys, tmp_path, tiny_model, speech_manifest):
    rows = [json.loads(line) for line in speech_manifest.read_text().splitlines()]
    labelled = speech_manifest.parent / "speakers.jsonl"  # beside it: relative audio paths stay valid
    labelled.write_text("".join(json.dumps({**r, "speaker": "kal" if i % 2 else "slt"}) + "\n"
                                for i, r in enumerate(rows)))
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", labelled, "--report", report)
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines()[1:3]] == ["  kal", "  slt"]
    data = json.loads(report.read_text())
    assert set(data["speakers"]) == {"kal", "slt"}
    assert sum(s["words"] for s in data["speakers"].values()) == data["words"]
    assert sum(s["word_errors"] for s in data["speakers"].values()) == data["word_errors"]
    assert data["speakers"]["kal"]["utterances"] == len(rows) // 2


def test_evaluate_bad_manifest(capsys, tmp_path, tiny_model):
    (tmp_path / "m.jsonl").write_text('{"audio_filepath": "x.wav", "duration": 1, "text": "a"}\n')
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", tmp_path / "m.jsonl")
    assert code == 1 and "line 1: audio file not found" in err


def test_unknown_recipe(capsys):
    code, _, err = run(capsys, "prepare", "no_such_recipe")
    assert code == 1 and "unknown recipe 'no_such_recipe'" in err


def test_console_entry_point_exit_code_and_no_traceback(tmp_path, tiny_model):
    proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model", str(tiny_model),
                           str(tmp_path / "missing.wav")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0] == f"asr: error: {tmp_path / 'missing.wav'}: no such file"
    assert "Traceback" not in proc.stderr


def test_evaluate_several_manifests_with_one_model_load(capsys, tmp_path, tiny_model, speech_manifest):
    half = speech_manifest.parent / "half.jsonl"  # beside it: relative audio paths stay valid
    half.write_text("\n".join(speech_manifest.read_text().splitlines()[:4]) + "\n")
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, half,
                         "--report", tmp_path / "r_{split}.json")
    assert code == 0, err
    assert [line.split(":")[0] for line in out.splitlines() if "WER" in line] == [str(speech_manifest), str(half)]
    assert len(json.loads((tmp_path / "r_half.json").read_text())["utterances"]) == 4
    assert (tmp_path / f"r_{speech_manifest.stem}.json").is_file()
    code, _, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, half,
                       "--report", tmp_path / "r.json")
    assert code == 1 and "{split}" in err
