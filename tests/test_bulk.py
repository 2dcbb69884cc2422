"""Corpus-scale transcription: a deterministic plan of parts, part files that exist only when complete, reruns
that do only what is left, a merge in input order that scores references, pseudo-labels by confidence; and
Lightning's predict loop over one or two CPU processes giving the same rows as ``asr evaluate``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from asr.bulk import plan as bulk
from asr.bulk.merge import MERGED_FILE, SUMMARY_FILE, merge
from asr.bulk.pseudo import Confidence, pseudo_manifest, select
from asr.cli import main
from asr.errors import AsrError
from asr.lexicon import write_lexicon
from lm_fixtures import write_arpa


def manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def spans(speech, tmp_path_factory) -> Path:
    """Each test sentence as a whole file and as two spans of it: 24 utterances, about 35 s of audio."""
    rows = []
    for p, text in speech:
        seconds = sf.info(str(p)).duration
        rows.append({"audio_filepath": str(p), "duration": seconds, "text": text})
        rows.append({"audio_filepath": str(p), "offset": 0.1, "duration": seconds / 2})
        rows.append({"audio_filepath": str(p), "offset": seconds / 2, "duration": seconds / 2 - 0.05})
    return manifest(tmp_path_factory.mktemp("spans") / "spans.jsonl", rows)


def test_the_plan_is_deterministic_and_keeps_the_input_order(spans, speech, tmp_path):
    folder = tmp_path / "audio"
    folder.mkdir()
    for p, _ in speech[:2]:
        shutil.copy(p, folder / Path(p).name)
    a, b = bulk.plan([str(spans), str(folder)], part_hours=5 / 3600), bulk.plan([str(spans), str(folder)], 5 / 3600)
    assert a == b and a.fingerprint == b.fingerprint
    items = [i for s in a.parts for i in s]
    assert len(items) == 26 and len({i.id for i in items}) == 26  # the folder's files are new ids
    assert all(sum(i.seconds for i in s) <= 5 or len(s) == 1 for s in a.parts)  # about 5 s a part
    assert [i.text for i in items[:3]] == [speech[0][1], None, None]
    assert bulk.plan([str(spans)], 1.0).fingerprint != a.fingerprint
    twice = manifest(tmp_path / "twice.jsonl", [json.loads(line) for line in spans.read_text().splitlines()] * 2)
    assert bulk.plan([str(twice)], 1.0).items == 24  # an utterance listed twice is transcribed once


def test_a_folder_holds_one_plan_and_merge_needs_every_part(spans, tmp_path):
    plan = bulk.plan([str(spans)], 5 / 3600)
    bulk.check_folder(tmp_path, plan)
    with pytest.raises(AsrError, match="other inputs"):
        bulk.check_folder(tmp_path, bulk.plan([str(spans)], 1.0))
    with pytest.raises(AsrError, match="parts are not done"):
        merge(tmp_path)


def test_merge_orders_deduplicates_scores_and_lists_what_was_skipped(tmp_path):
    (tmp_path / bulk.PLAN_FILE).write_text(json.dumps({"fingerprint": "x", "parts": 2, "items": 4}))
    base = {"model": "m@1", "offset": 0.0, "seconds": 1.0, "words": [], "avg_logprob": -0.1, "no_speech_prob": 0.5}
    bulk.write_part(tmp_path, 1, [{**base, "id": "c", "audio_filepath": "c", "text": "a b", "reference": "a c"},
                                     {**base, "id": "d", "audio_filepath": "d", "text": "", "error": "d: unreadable"}])
    bulk.write_part(tmp_path, 0, [{**base, "id": "a", "audio_filepath": "a", "text": "x y", "reference": "x y"},
                                     {**base, "id": "c", "audio_filepath": "c", "text": "a b", "reference": "a c"}])
    summary = merge(tmp_path)
    rows = [json.loads(line) for line in (tmp_path / MERGED_FILE).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "c", "d"]
    assert summary["skipped"] == [{"id": "d", "part": "part-00001.jsonl", "error": "d: unreadable"}]
    assert summary["wer"] == pytest.approx(1 / 4) and summary["scored"] == 2 and summary["transcribed"] == 2


def test_pseudo_labels_keep_only_the_confident_rows(tmp_path):
    (tmp_path / bulk.PLAN_FILE).write_text(json.dumps({"fingerprint": "x", "parts": 1, "items": 3}))
    word = {"word": "w", "start": 0.0, "end": 0.1, "confidence": 0.9}
    rows = [{"id": "a", "audio_filepath": "a.wav", "offset": 0.0, "seconds": 2.0, "text": "sure thing",
             "words": [word], "avg_logprob": -0.05, "no_speech_prob": 0.5, "model": "m"},
            {"id": "b", "audio_filepath": "b.wav", "offset": 1.5, "seconds": 2.0, "text": "maybe",
             "words": [word], "avg_logprob": -0.9, "no_speech_prob": 0.5, "model": "m"},
            {"id": "c", "audio_filepath": "c.wav", "offset": 0.0, "seconds": 2.0, "text": "", "error": "bad"}]
    bulk.write_part(tmp_path, 0, rows)
    assert main(["filter", str(tmp_path), "--manifest", str(tmp_path / "pseudo.jsonl"), "--min-logprob", "-0.5"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "pseudo.jsonl").read_text().splitlines()]
    assert lines == [{"audio_filepath": "a.wav", "duration": 2.0, "text": "sure thing"}]


# -- Lightning's predict loop, one and two CPU processes -----------------------------------------------------

def transcribe_corpus(model: Path, out: Path, *inputs: str, extra: tuple = (), wait: bool = True):
    command = [sys.executable, "-m", "asr", "transcribe-corpus", "--model", str(model), "--out", str(out),
               "--part-hours", str(4 / 3600), "--num-workers", "0", "--trainer.accelerator", "cpu", *extra, *inputs]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MERGED_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def one_process(tiny_model, spans, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "out"
    result = transcribe_corpus(tiny_model, out, str(spans))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_one_process_gives_what_asr_evaluate_gives(one_process, tiny_model, speech_manifest, tmp_path):
    rows = rows_of(one_process)
    assert len(rows) == 24 and all(r["model"].startswith("model.pt@") for r in rows)
    assert all({"text", "words", "avg_logprob", "no_speech_prob", "seconds"} <= set(r) for r in rows)
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", str(speech_manifest), "--report",
                 str(report)]) == 0
    evaluated = [u["hypothesis"] for u in json.loads(report.read_text())["utterances"]]
    assert [r["text"] for r in rows[::3]] == evaluated  # the whole files, as asr evaluate reads them
    summary = json.loads((one_process / SUMMARY_FILE).read_text())
    assert summary["scored"] == 8 and summary["utterances"] == 24


@pytest.mark.slow
def test_two_processes_give_the_same_rows_and_a_killed_run_resumes_where_it_was(one_process, tiny_model, spans,
                                                                                 tmp_path, speech):
    # A FIFO in place of the first file of rank 1's last part: that rank blocks reading it, its earlier parts
    # done but for the one Lightning's loop holds while it fetches the next (it fetches one batch ahead).
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    plan = bulk.plan([str(spans)], 4 / 3600)
    stuck = max(k for k in range(len(plan.parts)) if k % 2 == 1)
    assert stuck >= 5
    victim = sum(len(s) for s in plan.parts[:stuck])  # its row: the plan keeps the manifest's order
    original = rows[victim]["audio_filepath"]
    blocked = tmp_path / "blocked.wav"
    os.mkfifo(blocked)
    rows[victim] = {**rows[victim], "audio_filepath": str(blocked)}
    inputs = manifest(tmp_path / "inputs.jsonl", rows)
    assert [len(s) for s in bulk.plan([str(inputs)], 4 / 3600).parts] == [len(s) for s in plan.parts]
    out = tmp_path / "out"
    proc = transcribe_corpus(tiny_model, out, str(inputs), extra=("--trainer.devices", "2"), wait=False)
    expected = {bulk.part_file(out, k).name for k in range(len(plan.parts)) if k % 2 == 0 or k < stuck - 2}
    deadline = time.monotonic() + 120
    while {p.name for p in out.glob("part-*.jsonl")} != expected:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, sorted(p.name for p in out.glob("part-*.jsonl"))
        time.sleep(0.2)
    time.sleep(1.0)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.jsonl")}
    assert set(before) == expected  # nothing more comes: the blocked rank waits on the pipe
    os.killpg(proc.pid, signal.SIGKILL)  # both ranks, mid-part
    proc.wait()
    blocked.unlink()
    shutil.copy(original, blocked)  # the same audio as the original item
    result = transcribe_corpus(tiny_model, out, str(inputs), extra=("--trainer.devices", "2"))
    assert result.returncode == 0, result.stderr[:3000]
    shares = [int(n) for n in re.findall(r"rank \d/2: (\d+) of", result.stderr)]
    assert len(shares) == 2 and sum(shares) == len(plan.parts) - len(before)  # only what was left, spread
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.jsonl")}
    assert all(after[name] == mtime for name, mtime in before.items())  # complete parts were not redone
    merged, reference = rows_of(out), rows_of(one_process)
    ids = [r["id"] for r in reference]
    ids[victim] = ids[victim].replace(original, str(blocked))
    assert [r["id"] for r in merged] == ids  # each utterance once, in input order
    same = lambda r: (r["text"], r["words"], r["avg_logprob"], r["no_speech_prob"])  # noqa: E731
    assert [same(r) for r in merged] == [same(r) for r in reference]  # the pipe's stand-in: the same audio


@pytest.mark.slow
def test_beam_search_with_an_lm_in_worker_processes_gives_what_asr_evaluate_gives(tiny_model, spans,
                                                                                  speech_manifest, tmp_path):
    from conftest import SENTENCES

    words = sorted({w for s in SENTENCES for w in s.split()})
    write_arpa(tmp_path / "lm.arpa", {w: -1.5 for w in words}, {("<s>", "the"): -0.3})
    write_lexicon(tmp_path / "lexicon.txt", words)
    config = tmp_path / "decode.yaml"
    config.write_text(yaml.safe_dump({"lm": "lm.arpa", "lexicon": "lexicon.txt", "beam_size": 20, "lm_weight": 2}))
    out = tmp_path / "out"
    result = transcribe_corpus(tiny_model, out, str(spans), extra=(
        "--decode-config", str(config), "--decode-threads", "2", "--num-workers", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", str(speech_manifest), "--decode-config",
                 str(config), "--report", str(report)]) == 0
    evaluated = [u["hypothesis"] for u in json.loads(report.read_text())["utterances"]]
    rows = rows_of(out)
    assert [r["text"] for r in rows[::3]] == evaluated and len(rows) == 24
    assert all(set(r["text"].split()) <= set(words) for r in rows)  # the lexicon's words only: the LM decoded


@pytest.mark.slow
def test_unreadable_inputs_are_listed_and_the_rest_is_transcribed(tiny_model, speech, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + b"\0" * 40)
    rows = [{"audio_filepath": str(speech[0][0]), "text": speech[0][1]},
            {"audio_filepath": str(tmp_path / "missing.wav"), "duration": 2.0},
            {"audio_filepath": str(tmp_path / "broken.wav"), "duration": 2.0},
            {"audio_filepath": str(speech[1][0])}]
    result = transcribe_corpus(tiny_model, tmp_path / "out", str(manifest(tmp_path / "m.jsonl", rows)))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("asr: error: ")]
    assert len(errors) == 2 and "missing.wav" in errors[0] and "broken.wav" in errors[1]
    assert all("part-0000" in e and "(skipped)" in e for e in errors)
    assert "2 of 4 utterances transcribed" in result.stdout
