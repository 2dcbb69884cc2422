import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.manifest import read_manifest
from asr.corpora.synthetic import SPLITS, Item, SyntheticConfig, assemble, degrade, plan, prepare, select_sentences
from asr.corpora.text_sources import split_clauses

SMALL = SyntheticConfig(train=6, dev=2, test=2, test_unseen_voice=2, test_neural_voice=2, test_long=1,
                        long_sentences=(2, 3), train_voices=("flite:kal16", "espeak:en-us"),
                        unseen_voices=("flite:awb",), jobs=2, chunk=3, multi_fraction=0.5, max_sentences=3,
                        edge_silence=(0.1, 0.3), neural_share=0.0)


def test_select_sentences_limits_vocabulary_and_length():
    raw = ["The cat sat.", "the cat ran", "a dog sat on the cat", "zebra quokka", "the the", "Cat sat"]
    got = select_sentences(raw, vocab_words=3, min_words=2, max_words=5)
    assert got == ["the cat sat", "the the", "cat sat"]


def test_split_clauses_at_commas_only_when_asked():
    verse = "And God said, Let there be light: and there was light."
    assert split_clauses(verse) == ["And God said", " Let there be light", " and there was light", ""]
    assert split_clauses(verse, split_commas=False) == ["And God said, Let there be light", " and there was light", ""]


def test_plan_keeps_splits_and_voices_apart():
    sentences = [f"sentence number {i}" for i in range(200)]
    cfg = replace(SMALL, train=60, dev=10, test=10, test_unseen_voice=10, test_neural_voice=10, test_long=3,
                  espeak_share=0.5, espeak_accents=("en-gb-scotland",), espeak_variants=("m1", "f2"))
    items = plan(cfg, sentences)
    by_split = {s: [it for it in items if it.split == s] for s in SPLITS}
    # Training sentences all placed, some files holding several; held-out splits one sentence a file.
    assert sum(len(it.texts) for it in by_split["train"]) == 60 and len(by_split["train"]) < 60
    assert [len(by_split[s]) for s in ("dev", "test", "test_unseen_voice", "test_neural_voice")] == [10] * 4
    assert [2 <= len(it.texts) <= 3 for it in by_split["test_long"]] == [True] * 3
    train_text = {t for it in by_split["train"] for t in it.texts}
    for split in SPLITS[1:]:
        assert not train_text & {t for it in by_split[split] for t in it.texts}
    assert {it.voice for it in by_split["test_unseen_voice"]} == {"flite:awb"}
    assert {it.voice for it in by_split["test_neural_voice"]} == {"piper:joe"}
    assert {it.pitch for it in by_split["test_neural_voice"]} == {0.0}  # the neural voice as it is
    train_voices = {it.voice for it in by_split["train"]}
    assert not train_voices & {"flite:awb", "piper:joe"}
    assert {"espeak:en-gb-scotland+m1", "espeak:en-gb-scotland+f2"} & train_voices
    assert {it.voice for it in by_split["test"]} <= set(cfg.train_voices)  # test keeps the fixed voices
    # Files shaped like recordings: a pause before, between and after the sentences.
    assert all(len(it.pauses) == len(it.texts) + 1 for it in items)
    assert all(it.pauses[0] == it.pauses[-1] == 0 for it in by_split["test"])
    assert plan(cfg, sentences) == items


def test_neural_training_voices_leave_the_test_splits_alone():
    sentences = [f"sentence number {i}" for i in range(400)]
    base = replace(SMALL, train=200, dev=10, test=20, test_unseen_voice=10, test_neural_voice=10, test_long=3,
                   multi_fraction=0.0)
    neural = replace(base, neural_share=0.5, neural_train_voices=("silero:*", "hibari:heart"))
    items = {cfg: plan(cfg, sentences) for cfg in (base, neural)}
    train_voices = [it.voice for it in items[neural] if it.split == "train"]
    share = sum(v.startswith(("silero:", "hibari:")) for v in train_voices) / len(train_voices)
    assert 0.35 < share < 0.65 and len({v for v in train_voices if v.startswith("silero:")}) > 50
    # The test splits (not dev, which is read like train) are the same files with or without neural voices.
    tests = [[it for it in items[cfg] if it.split.startswith("test")] for cfg in (base, neural)]
    assert tests[0] == tests[1] and len(tests[0]) == 43
    with pytest.raises(Exception, match="both a training voice and a held-out voice"):
        prepare(replace(neural, neural_train_voices=("piper:joe",)))
    with pytest.raises(Exception, match=r"'\*' stands for all voices of"):
        plan(replace(neural, neural_train_voices=("flite:*",)), sentences)


def test_kokoro_blends_make_new_speakers():
    sentences = [f"sentence number {i}" for i in range(400)]
    base = replace(SMALL, train=300, dev=10, test=20, test_unseen_voice=10, test_neural_voice=10, test_long=3,
                   multi_fraction=0.0, neural_share=0.8, neural_train_voices=("kokoro:*",))
    plain, blended = plan(base, sentences), plan(replace(base, kokoro_blend=0.5), sentences)
    voices = [it.voice for it in blended if it.split == "train" and it.voice.startswith("kokoro:")]
    blends = [v for v in voices if "+" in v]
    assert 0.3 < len(blends) / len(voices) < 0.7 and len(set(blends)) == len(blends)  # one speaker per file
    for blend in blends:
        (a, wa), (b, wb) = (part.split("*") for part in blend.partition(":")[2].split("+"))
        assert a != b and 0.24 < float(wa) < 0.76 and abs(float(wa) + float(wb) - 1) < 0.011
    # Blending changes the voice of some Kokoro files and nothing else: no other file of any split moves.
    changed = [(a, b) for a, b in zip(plain, blended) if a != b]
    assert len(changed) == sum("+" in it.voice for it in blended)
    assert all(replace(b, voice=a.voice) == a for a, b in changed)


def test_plan_refuses_too_few_sentences():
    with pytest.raises(Exception, match="only 3 sentences"):
        plan(SMALL, ["a b c"] * 3)


def test_degrade_reaches_the_snr():
    t = np.arange(16000) / 16000
    clean = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    item = Item("train", "x", ["x"], "flite:kal16", 1.0, 0.0, "white", 10.0, seed=3, pauses=[0.0, 0.0])
    noisy = degrade(torch.from_numpy(clean), item).numpy()
    scale = np.dot(noisy, clean) / np.dot(clean, clean)
    noise = noisy - scale * clean
    snr = 10 * np.log10(np.mean((scale * clean) ** 2) / np.mean(noise**2))
    assert abs(snr - 10) < 0.5
    assert np.abs(noisy).max() <= 0.95


def test_assemble_puts_silence_around_and_between():
    wave = assemble([torch.ones(100), 2 * torch.ones(50)], [0.01, 0.02, 0.005])
    assert wave.numel() == 160 + 100 + 320 + 50 + 80
    assert wave[:160].abs().sum() == 0 and wave[260:580].abs().sum() == 0 and wave[-80:].abs().sum() == 0


@pytest.mark.slow
def test_prepare_writes_manifests_resumes_and_skips(tmp_path):
    cfg = replace(SMALL, out_dir=str(tmp_path / "syn"))
    manifests = prepare(cfg, progress=False)
    utts = {s: read_manifest(p) for s, p in manifests.items()}
    assert sum(len(u.text.split()) for u in utts["train"]) > 6 * 3 - 1  # 6 sentences of >= 3 words
    assert [len(utts[s]) for s in SPLITS[1:]] == [2, 2, 2, 2, 1]
    assert len(utts["test_long"][0].text.split()) >= 6  # several sentences in one file
    # The general-English LM text holds no held-out sentence; the word list is large.
    lm_text = set((tmp_path / "syn" / "lm_text.txt").read_text().splitlines())
    assert len(lm_text) > 10_000 and not lm_text & {u.text for s in SPLITS[1:4] for u in utts[s]}
    assert len((tmp_path / "syn" / "words.txt").read_text().split()) > 50_000
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
    assert len(plan_rows) == sum(len(u) for u in utts.values())
    # Each utterance names its voice (asr evaluate gives each speaker's rates from it).
    voices = {row["id"]: row["voice"] for row in plan_rows}
    assert all(u.speaker == voices[Path(u.audio_filepath).stem] for split in utts.values() for u in split)
    # An option changes: files planned differently are made again, the others kept (test: voices in turn).
    test_before = {u.audio_filepath: os.stat(u.audio_filepath).st_mtime_ns for u in utts["test"]}
    prepare(replace(cfg, train_voices=("flite:kal16", "espeak:en-us+f3")), progress=False)
    remade = {a for a, t in test_before.items() if os.stat(a).st_mtime_ns != t}
    assert [a.rsplit("/", 1)[-1] for a in sorted(remade)] == ["test-000001.flac"]  # espeak:en-us -> en-us+f3


def test_shipped_corpus_configs_name_only_real_options():
    import yaml
    from dataclasses import fields
    from pathlib import Path

    names = {f.name for f in fields(SyntheticConfig)}
    for path in (Path(__file__).parent.parent / "recipes" / "synthetic").glob("corpus*.yaml"):
        options = yaml.safe_load(path.read_text())
        assert set(options) <= names, path
        assert replace(SyntheticConfig(), **{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
