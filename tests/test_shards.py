"""Sharded training data: a manifest written into Lhotse Shar shards and read back; every rank and loader worker
its own shards, together the epoch; bad shards and utterances reported and left out while the rest trains."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from asr.audio import read_audio
from asr.cli import main
from asr.corpora import shar
from asr.manifest import read_manifest
from asr.text import Vocabulary
from asr.training.dataset import Unreadable, collate
from asr.training.shards import ShardBatchSampler, ShardDataset, ShardIndex


@pytest.fixture(scope="module")
def utterances(speech, tmp_path_factory) -> Path:
    """Each test sentence whole and as two spans of it: 24 utterances."""
    rows = []
    for p, text in speech:
        seconds = sf.info(str(p)).duration
        words = text.split()
        rows.append({"audio_filepath": str(p), "duration": seconds, "text": text})
        rows.append({"audio_filepath": str(p), "offset": 0.1, "duration": seconds / 2, "text": words[0]})
        rows.append({"audio_filepath": str(p), "offset": seconds / 2, "duration": seconds / 2 - 0.05,
                     "text": words[-1]})
    path = tmp_path_factory.mktemp("utts") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def shards(utterances, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shar") / "train"
    assert main(["shard", str(utterances), "--out", str(out), "--shard-size", "3"]) == 0
    return out


def test_a_corpus_written_and_read_back_gives_the_same_utterances_durations_and_texts(utterances, shards):
    utts = read_manifest(utterances)
    index = ShardIndex(shards, Vocabulary())
    assert len(index.shards) == 8 and len(index) == 24
    dataset = ShardDataset(index)
    seen = {}
    for i in range(len(index)):
        k, p = index.locate(i)
        line = int(index.shards[k].ids[p])  # the manifest line: ids are stable
        wave, tokens = dataset[i]
        utt = utts[line]
        expected = read_audio(utt.audio_filepath, *utt.span)
        assert wave.numel() == expected.size and index.shards[k].durations[p] == pytest.approx(expected.size / 16000)
        assert np.abs(wave.numpy() - expected).max() < 2 / 32768  # 16-bit FLAC: lossless to the quantisation
        assert Vocabulary().decode(tokens.tolist()) == utt.text == index.shards[k].texts[p]
        seen[line] = k
    assert sorted(seen) == list(range(24))
    assert seen != {line: line // 3 for line in range(24)}  # shuffled once before sharding: shards mix sources


def test_a_rerun_writes_only_the_missing_shards_and_other_settings_are_refused(utterances, tmp_path):
    out = tmp_path / "train"
    shar.write(utterances, out, shard_size=5)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    shar.cuts_file(out, 2).unlink()  # as a kill between the tar and the cuts file leaves it
    summary = shar.write(utterances, out, shard_size=5)
    assert summary["shards"] == 5 and summary["utterances"] == 24
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    changed = {name for name in stamps if after[name] != stamps[name]}
    assert changed == {"cuts.000002.jsonl.gz", "recording.000002.tar", shar.SUMMARY_FILE}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    assert main(["shard", str(utterances), "--out", str(out), "--shard-size", "4"]) == 1


class WhoReads(Dataset):
    """Which worker reads each utterance."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return torch.utils.data.get_worker_info().id, i


def test_two_ranks_by_two_workers_read_disjoint_shards_that_cover_the_epoch(shards):
    index = ShardIndex(shards, Vocabulary())
    epoch_sets = []
    for epoch in (0, 1):
        read_by: dict[tuple[int, int], set[int]] = {}
        counts, dropped = [], 0
        for rank in (0, 1):
            sampler = ShardBatchSampler(index, 3.0, slots=2, seed=7, num_replicas=2, rank=rank)
            sampler.set_epoch(epoch)
            loader = DataLoader(WhoReads(), batch_sampler=sampler, num_workers=2, collate_fn=list,
                                multiprocessing_context="fork")
            batches = list(loader)
            counts.append(len(batches))
            dropped += sum(len(b) for w in range(2) for b in sampler.slot_batches(2 * rank + w)) - \
                sum(len(b) for b in batches)
            for batch in batches:
                for worker, i in batch:
                    read_by.setdefault((rank, worker), set()).add(i)
        assert counts[0] == counts[1]  # DDP ranks step together
        slots = list(read_by.values())
        assert len(slots) == 4 and all(a.isdisjoint(b) for n, a in enumerate(slots) for b in slots[n + 1:])
        # each worker reads whole shards of its own: two slots never share a shard
        shards_of = [{index.locate(i)[0] for i in s} for s in slots]
        assert all(a.isdisjoint(b) for n, a in enumerate(shards_of) for b in shards_of[n + 1:])
        assert sum(map(len, slots)) + dropped == 24 and dropped < 12  # the epoch, but what evens the slots
        epoch_sets.append(shards_of)
    assert epoch_sets[0] != epoch_sets[1]  # shards are dealt anew every epoch


def test_the_plan_is_the_same_from_the_seed_and_resumes_mid_epoch(shards):
    index = ShardIndex(shards, Vocabulary())

    def plan(seed, epoch, skip=0, slots=2):
        sampler = ShardBatchSampler(index, 3.0, slots=slots, seed=seed)
        sampler.set_epoch(epoch)
        if skip:
            sampler.resume_at(epoch, skip)
        return list(sampler)

    assert plan(1, 0) == plan(1, 0) and plan(1, 0) != plan(2, 0) and plan(1, 0) != plan(1, 1)
    assert plan(1, 1, skip=3) == plan(1, 1)[3:]
    assert sorted(i for b in plan(1, 0, slots=1) for i in b) == list(range(24))  # one slot: the whole epoch


def rewrite_member(tar_path: Path, name_suffix: str, data: bytes) -> str:
    """Replace the first member ending in ``name_suffix`` with ``data``; returns its name."""
    members = []
    with tarfile.open(tar_path) as t:
        for m in t.getmembers():
            members.append((m, t.extractfile(m).read()))
    target = next(m.name for m, _ in members if m.name.endswith(name_suffix))
    with tarfile.open(tar_path, "w") as t:
        for m, content in members:
            content = data if m.name == target else content
            m.size = len(content)
            t.addfile(m, io.BytesIO(content))
    return target


def test_bad_shards_and_utterances_are_named_and_the_rest_is_read(utterances, tmp_path, capsys):
    rows = [json.loads(line) for line in utterances.read_text().splitlines()]
    rows[4]["audio_filepath"] = str(tmp_path / "missing.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "train"
    assert main(["shard", str(manifest), "--out", str(out), "--shard-size", "3"]) == 1
    err = capsys.readouterr().err
    assert err.count("asr: error:") == 1 and "missing.wav: no such file (skipped)" in err
    summary = json.loads((out / shar.SUMMARY_FILE).read_text())
    assert summary["utterances"] == 23 and [s["line"] for s in summary["skipped"]] == [5]

    bad_flac = rewrite_member(shar.recording_file(out, 0), ".flac", b"fLaC" + b"\0" * 64)
    truncated = shar.recording_file(out, 1)
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) // 2)
    with gzip.open(shar.cuts_file(out, 2), "rb") as f:
        raw = f.read()
    shar.cuts_file(out, 2).write_bytes(gzip.compress(raw)[:40])  # a cut file cut short

    index = ShardIndex(out, Vocabulary())
    err = capsys.readouterr().err
    assert len(index.shards) == 7 and "cuts.000002.jsonl.gz: unreadable, shard left out" in err
    dataset = ShardDataset(index)
    items = [dataset[i] for i in range(len(index))]
    err = capsys.readouterr().err.splitlines()
    broken = bad_flac.split(".")[0]
    assert any(f"recording.000000.tar: {broken}: does not decode" in line for line in err)
    assert any("recording.000001.tar: unreadable after" in line and "left out" in line for line in err)
    assert len(err) == 2  # one line each
    lost = [item for item in items if isinstance(item, Unreadable)]
    assert 2 <= len(lost) <= 4 and len(items) - len(lost) >= 17  # the rest of every shard is read
    assert all(("recording.000000.tar" in r or "recording.000001.tar" in r) for r in lost)
    batch = collate(items)
    assert batch["waves"].shape[0] == len(items) - len(lost) and batch["skipped"] == [str(r) for r in lost]
    empty = collate(lost)
    assert float(empty["weight"]) == 0.0 and empty["target_lengths"].tolist() == [0] and empty["skipped"]


@pytest.mark.slow
def test_training_goes_on_past_a_truncated_shard_and_lists_what_it_left_out(speech_manifest, tmp_path):
    import subprocess
    import sys

    import yaml

    out = tmp_path / "shards"
    shar.write(speech_manifest, out, shard_size=2)
    truncated = shar.recording_file(out, 1)
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) // 3)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"network": {"hidden_size": 16, "num_layers": 1, "conv_channels": 4}},
        "data": {"train_shards": str(out), "val_manifest": str(speech_manifest), "max_batch_seconds": 4,
                 "num_workers": 1},
        "trainer": {"max_epochs": 2, "default_root_dir": str(tmp_path / "run"), "enable_progress_bar": False,
                    "limit_val_batches": 1}}))
    result = subprocess.run([sys.executable, "-m", "asr", "train", "--config", str(config)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "recording.000001.tar: unreadable after" in result.stderr
    assert "training utterances could not be read and were left out" in result.stdout
    listed = (tmp_path / "run" / "skipped.txt").read_text().splitlines()
    assert listed and all("recording.000001.tar" in line for line in listed)
    assert {line.split(":")[0] for line in listed} == {"epoch 0", "epoch 1"}  # every epoch meets it again
    assert (tmp_path / "run" / "model.pt").is_file()
