"""The Python API (asr.load(...).transcribe(...)) and what asr transcribe reads: folders, globs, standard input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import asr
from asr.cli import main
from asr.errors import AsrError
from tests.conftest import encode, tone


def test_load_and_transcribe_a_file_or_an_array(tiny_model, speech):
    model = asr.load(tiny_model, device="cpu")
    result = model.transcribe(speech[0][0])
    assert result.error is None and result.duration > 0.5
    assert result.text == result.hypothesis.text and result.segments[0].text == result.text
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in result.words)
    wave = sf.read(str(speech[0][0]), dtype="float32")[0]
    from_array = model.transcribe(wave)
    assert from_array.text == result.text and from_array.path == "<array>"
    with pytest.raises(AsrError, match="expected a \\(samples,\\) mono array"):
        model.transcribe(np.zeros((2, 100), np.float32))
    with pytest.raises(AsrError, match="no such file"):
        model.transcribe("/no/such.wav")


def test_load_with_beam_options_builds_a_beam_decoder(tiny_model):
    model = asr.load(tiny_model, beam_size=8)
    assert model.decoder.describe() == "beam 8"


def test_folders_are_searched_recursively_and_globs_filter(capsys, tmp_path, tiny_model, speech):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(speech[0][0], tmp_path / "in" / "a.wav")
    shutil.copy(speech[1][0], tmp_path / "in" / "sub" / "b.wav")
    encode(tmp_path / "in" / "sub" / "c.m4a", tone(1.0, 44100), 44100, "aac")
    (tmp_path / "in" / "notes.txt").write_text("not audio")
    assert main(["transcribe", "--model", str(tiny_model), str(tmp_path / "in")]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == [str(tmp_path / "in" / p) for p in ("a.wav", "sub/b.wav", "sub/c.m4a")]
    assert main(["transcribe", "--model", str(tiny_model), "--glob", "*.m4a", str(tmp_path / "in")]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [str(tmp_path / "in/sub/c.m4a")]


def test_standard_input(tmp_path, tiny_model, speech):
    data = encode(tmp_path / "x.webm", tone(1.5, 48000), 48000, "libopus").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model", str(tiny_model), "--format", "json",
                           "-"], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["file"] == "-" and row["duration"] == pytest.approx(1.5, abs=0.05)
