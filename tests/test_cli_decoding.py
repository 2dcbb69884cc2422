"""``asr transcribe``/``evaluate`` with beam search and LMs, output formats, ``asr lm build`` and ``asr tune-lm``."""

import json

import pytest
import srt
import torch
import webvtt

from asr.adapt import mean_entropy
from asr.beam import DecodeConfig
from asr.lexicon import write_lexicon
from test_cli import run
from test_lm import HAVE_KENLM
from lm_fixtures import write_arpa


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    """A small word LM over the test sentences' words, and its lexicon."""
    from conftest import SENTENCES

    root = tmp_path_factory.mktemp("lm")
    words = sorted({w for s in SENTENCES for w in s.split()})
    write_arpa(root / "lm.arpa", {w: -1.5 for w in words}, {("<s>", "the"): -0.3})
    write_lexicon(root / "lexicon.txt", words)
    return root


def test_transcribe_with_lm_writes_every_format(capsys, tmp_path, tiny_model, speech, lm_dir):
    files = [p for p, _ in speech[:2]]
    for fmt in ("txt", "json", "srt", "vtt"):
        out_dir = tmp_path / fmt
        code, out, err = run(capsys, "transcribe", "--model", tiny_model, "--lm", lm_dir / "lm.arpa",
                             "--beam-size", 8, "--format", fmt, "--output-dir", out_dir, *files)
        assert code == 0 and out == "" and "wrote 2 file(s)" in err
        written = sorted(p.name for p in out_dir.iterdir())
        assert written == sorted(f.stem + "." + fmt for f in files)
    obj = json.loads((tmp_path / "json" / (files[0].stem + ".json")).read_text())
    assert set(obj) == {"file", "text", "duration", "segments", "words"}
    assert [w["word"] for w in obj["words"]] == obj["text"].split()
    assert all(0 <= w["start"] <= w["end"] <= obj["duration"] + 0.05 for w in obj["words"])
    list(srt.parse((tmp_path / "srt" / (files[0].stem + ".srt")).read_text()))  # parses (may have no cues)
    webvtt.read(str(tmp_path / "vtt" / (files[0].stem + ".vtt")))


def test_nbest_in_json(capsys, tiny_model, speech, lm_dir):
    code, out, _ = run(capsys, "transcribe", "--model", tiny_model, "--lm", lm_dir / "lm.arpa", "--format", "json",
                       "--nbest", 3, "--beam-size", 10, "--lm-weight", 0.5, "--word-score", 2, speech[0][0])
    obj = json.loads(out)
    assert code == 0 and 1 <= len(obj["nbest"]) <= 3 and obj["nbest"][0]["text"] == obj["text"]


def test_subtitles_for_several_files_need_an_output_dir(capsys, tiny_model, speech):
    code, out, err = run(capsys, "transcribe", "--model", tiny_model, "--format", "srt", speech[0][0], speech[1][0])
    assert code == 1 and "needs --output-dir" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "absent.bin", "no such language model file"),
    (lambda d: (d / "bad.bin").write_bytes(b"\x7fELF" * 64) and d / "bad.bin", "not a KenLM language model"),
])
def test_bad_lm_one_line_error(capsys, tmp_path, tiny_model, speech, lm_dir, make, reason):
    lm = make(tmp_path)
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech[0][0].parent / "x.jsonl",
                         "--lm", lm, "--lexicon", lm_dir / "lexicon.txt")
    assert code == 1 and err.count("\n") == 1 and reason in err and str(lm) in err


def test_lexicon_outside_vocabulary_one_line_error(capsys, tmp_path, tiny_model, speech, lm_dir):
    lex = tmp_path / "lexicon.txt"
    lex.write_text("naïve n a ï v e |\n")
    code, _, err = run(capsys, "transcribe", "--model", tiny_model, "--lm", lm_dir / "lm.arpa", "--lexicon", lex,
                       speech[0][0])
    assert code == 1 and f"{lex}:1: tokens outside the model's vocabulary: ï" in err


def test_tune_lm_writes_a_config_that_evaluate_loads(capsys, tmp_path, tiny_model, speech_manifest, lm_dir):
    out = tmp_path / "decode.yaml"
    code, text, err = run(capsys, "tune-lm", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                          lm_dir / "lm.arpa", "--out", out, "--lm-weights", 0, 1, "--word-scores", -1, 1,
                          "--beam-size", 8)
    assert code == 0
    rows = [line.split() for line in text.splitlines() if line.strip() and line.split()[0][0] in "-0123456789"]
    assert [(float(r[0]), float(r[1])) for r in rows] == [(0, -1), (0, 1), (1, -1), (1, 1)]
    config = DecodeConfig.load(out)
    assert config.lm == str(lm_dir / "lm.arpa") and config.beam.beam_size == 8
    assert (config.beam.lm_weight, config.beam.word_score) in [(0, -1), (0, 1), (1, -1), (1, 1)]
    cache = out.with_suffix(".dev-log-probs.pt")
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    code, _, _ = run(capsys, "tune-lm", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                     lm_dir / "lm.arpa", "--out", out, "--lm-weights", 2, "--word-scores", 0)
    assert code == 0 and cache.stat().st_mtime_ns == stamp  # the network did not run again
    code, text, _ = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest,
                        "--decode-config", out)
    assert code == 0 and "WER" in text and "+ LM" in text


def test_tune_lm_in_worker_processes_gives_the_serial_grid(capsys, tmp_path, tiny_model, speech_manifest, lm_dir):
    tables = {}
    for processes in (1, 2):
        out = tmp_path / f"decode{processes}.yaml"
        code, text, err = run(capsys, "tune-lm", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                              lm_dir / "lm.arpa", "--out", out, "--lm-weights", 0, 1, 3, "--word-scores", -2, 2,
                              "--beam-size", 8, "--processes", processes)
        assert code == 0, err
        tables[processes] = [line for line in text.splitlines() if line.strip()[0] in "-0123456789"]
        assert len(tables[processes]) == 6
    assert tables[1] == tables[2]  # every point's WER and CER, in grid order
    assert (tmp_path / "decode1.yaml").read_text() == (tmp_path / "decode2.yaml").read_text()


def test_evaluate_greedy_report_from_the_lm_pass(capsys, tmp_path, tiny_model, speech_manifest, lm_dir):
    lm = ["--lm", lm_dir / "lm.arpa", "--beam-size", 8, "--lm-weight", 1]
    code, _, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest,
                       "--report", tmp_path / "greedy.json")
    assert code == 0, err
    code, _, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, *lm,
                       "--report", tmp_path / "lm.json")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, *lm,
                         "--report", tmp_path / "both_lm.json", "--greedy-report", tmp_path / "both_greedy.json")
    assert code == 0, err
    assert [line.split("[")[-1] for line in out.splitlines() if "WER" in line] == \
        ["greedy]", "beam 8 + lexicon + LM (weight 1, word score 0)]"]
    read = lambda name: json.loads((tmp_path / name).read_text())
    for alone, together in (("greedy.json", "both_greedy.json"), ("lm.json", "both_lm.json")):
        assert read(alone)["utterances"] == read(together)["utterances"]  # same hypotheses, same errors
        assert read(alone)["wer"] == read(together)["wer"]
    assert read("greedy.json")["utterances"] != read("lm.json")["utterances"]  # two readings, not one twice


def test_tune_lm_with_adapt_tunes_on_the_adapted_reading(capsys, tmp_path, tiny_model, speech_manifest, lm_dir):
    out = tmp_path / "decode.yaml"
    grid = ["--lm-weights", 1, "--word-scores", 0, "--beam-size", 4]
    _, plain, _ = run(capsys, "tune-lm", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                      lm_dir / "lm.arpa", "--out", out, *grid)
    cache = out.with_suffix(".dev-log-probs.pt")
    before = torch.load(cache, weights_only=True)
    code, adapted, _ = run(capsys, "tune-lm", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                           lm_dir / "lm.arpa", "--out", out, "--adapt", *grid)
    after = torch.load(cache, weights_only=True)
    assert code == 0 and after["key"] != before["key"]  # the plain reading's cache is not reused
    assert not torch.allclose(after["log_probs"][0], before["log_probs"][0])
    # the adapted posteriors are the sharper ones
    assert mean_entropy(after["log_probs"][0]) < mean_entropy(before["log_probs"][0])
    assert "read adapted (10 steps)" in out.read_text().splitlines()[0]  # the config says how it was tuned


@pytest.mark.skipif(not HAVE_KENLM, reason="KenLM programs not built: run 'make kenlm'")
def test_lm_build_command(capsys, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("In the beginning God created the heaven and the earth.\n" * 3)
    code, out, err = run(capsys, "lm", "build", text, "--out", tmp_path / "lm", "--order", 3)
    assert code == 0 and "word 3-gram LM from 3 sentences" in out
    assert "heaven h e a v e n |" in (tmp_path / "lm" / "lexicon.txt").read_text()
    code, out, err = run(capsys, "lm", "build", tmp_path / "absent.txt", "--out", tmp_path / "lm2")
    assert code == 1 and "absent.txt: no such text file" in err


def test_vtln_with_beam_search_and_an_lm(capsys, tiny_model, speech_manifest, lm_dir):
    code, text, _ = run(capsys, "evaluate", "--model", tiny_model, "--manifest", speech_manifest, "--lm",
                        lm_dir / "lm.arpa", "--beam-size", 4, "--vtln")
    assert code == 0 and "[VTLN 0.80-1.25 + beam 4 + lexicon + LM" in text
