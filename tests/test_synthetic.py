import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.manifest import read_manifest
from asr.corpora.synthetic import Item, SyntheticConfig, degrade, plan, prepare, select_sentences, split_clauses

SMALL = SyntheticConfig(train=6, dev=2, test=2, test_unseen_voice=2, train_voices=("flite:kal16", "espeak:en-us"),
                        unseen_voices=("flite:awb",), jobs=2, chunk=3)


def test_select_sentences_limits_vocabulary_and_length():
    raw = ["The cat sat.", "the cat ran", "a dog sat on the cat", "zebra quokka", "the the", "Cat sat"]
    got = select_sentences(raw, vocab_words=3, min_words=2, max_words=5)
    assert got == ["the cat sat", "the the", "cat sat"]


def test_split_clauses_at_commas_only_when_asked():
    verse = "And God said, Let there be light: and there was light."
    assert split_clauses(verse) == ["And God said", " Let there be light", " and there was light", ""]
    assert split_clauses(verse, split_commas=False) == ["And God said, Let there be light", " and there was light", ""]


def test_plan_keeps_splits_and_voices_apart():
    sentences = [f"sentence number {i}" for i in range(100)]
    items = plan(replace(SMALL, train=60, dev=10, test=10, test_unseen_voice=10), sentences)
    by_split = {s: [it for it in items if it.split == s] for s in ("train", "dev", "test", "test_unseen_voice")}
    assert [len(v) for v in by_split.values()] == [60, 10, 10, 10]
    train_text = {it.text for it in by_split["train"]}
    for split in ("dev", "test", "test_unseen_voice"):
        assert not train_text & {it.text for it in by_split[split]}
    assert {it.voice for it in by_split["test_unseen_voice"]} == {"flite:awb"}
    assert not {it.voice for it in by_split["train"]} & {"flite:awb"}
    assert plan(replace(SMALL, train=60, dev=10, test=10, test_unseen_voice=10), sentences) == items


def test_plan_refuses_too_few_sentences():
    with pytest.raises(Exception, match="only 3 sentences"):
        plan(SMALL, ["a b c"] * 3)


def test_degrade_reaches_the_snr():
    t = np.arange(16000) / 16000
    clean = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    item = Item("train", "x", "x", "flite:kal16", 1.0, 0.0, "white", 10.0, seed=3)
    noisy = degrade(torch.from_numpy(clean), item).numpy()
    scale = np.dot(noisy, clean) / np.dot(clean, clean)
    noise = noisy - scale * clean
    snr = 10 * np.log10(np.mean((scale * clean) ** 2) / np.mean(noise**2))
    assert abs(snr - 10) < 0.5
    assert np.abs(noisy).max() <= 0.95


def test_prepare_writes_manifests_resumes_and_skips(tmp_path):
    cfg = replace(SMALL, out_dir=str(tmp_path / "syn"))
    manifests = prepare(cfg, progress=False)
    utts = {s: read_manifest(p) for s, p in manifests.items()}
    assert [len(utts[s]) for s in ("train", "dev", "test", "test_unseen_voice")] == [6, 2, 2, 2]
    audio = utts["test"][0].audio_filepath
    assert sf.info(audio).samplerate == 16000 and sf.info(audio).channels == 1
    assert all(abs(u.duration - sf.info(u.audio_filepath).duration) < 0.01 for u in utts["train"])
    # Interrupted run: a file lost and the marker gone; the next run remakes only that file.
    before = {u.audio_filepath: (tmp_path / u.audio_filepath).stat().st_mtime_ns for u in utts["train"]}
    lost = utts["train"][0].audio_filepath
    (tmp_path / "syn" / ".done").unlink()
    import os

    os.remove(lost)
    prepare(cfg, progress=False)
    after = {u.audio_filepath: os.stat(u.audio_filepath).st_mtime_ns for u in read_manifest(manifests["train"])}
    assert os.path.exists(lost)
    assert [k for k in after if after[k] != before[k]] == [lost]
    # Finished: a third run does nothing.
    stamp = manifests["train"].stat().st_mtime_ns
    prepare(cfg, progress=False)
    assert manifests["train"].stat().st_mtime_ns == stamp
    plan_rows = [json.loads(line) for line in (tmp_path / "syn" / "plan.jsonl").read_text().splitlines()]
    assert len(plan_rows) == 12
