import json
import random
import shutil

import pytest
import soundfile as sf

from asr.errors import AsrError
from asr.manifest import ManifestError, Utterance, read_manifest, write_manifest
from asr.text import Vocabulary
from asr.training.datamodule import mixed
from asr.training.dataset import UtteranceDataset, collate
from asr.training.sampler import DurationBatchSampler


def write_lines(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_read_resolves_relative_paths_and_normalises(tmp_path, speech):
    audio, _ = speech[0]
    (tmp_path / "a.wav").write_bytes(audio.read_bytes())
    m = write_lines(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "duration": 1.5, "text": "Hello, World!"},
        {"audio_filepath": str(tmp_path / "a.wav"), "duration": 0.5, "text": "x", "offset": 0.25},
    ])
    utts = read_manifest(m)
    assert utts[0] == Utterance(str(tmp_path / "a.wav"), 1.5, "hello world", 0.0)
    assert utts[1].offset == 0.25


def test_every_bad_line_is_listed(tmp_path, speech):
    audio = str(speech[0][0])
    m = write_lines(tmp_path / "bad.jsonl", [
        {"audio_filepath": audio, "duration": 1.0, "text": "fine"},
        {"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0, "text": "missing"},
        {"audio_filepath": audio, "duration": 1.0, "text": " ?! "},
        {"audio_filepath": audio, "duration": 1.0, "text": "caf\u00e9 42 \u4e2d"},
        "{not json",
        {"audio_filepath": audio, "text": "no duration"},
    ])
    with pytest.raises(ManifestError) as err:
        read_manifest(m)
    msg = str(err.value)
    assert msg.startswith(f"{m}: 5 bad line(s)")
    assert "line 2: audio file not found" in msg and "gone.wav" in msg
    assert "line 3: empty text" in msg
    assert "line 4: characters outside the vocabulary: '24\u4e2d'" in msg
    assert "line 5: not valid JSON" in msg
    assert "line 6: missing field 'duration'" in msg
    assert "line 1" not in msg


def test_one_reader_serves_training_transcription_and_preparation(tmp_path, speech):
    """Training's reader, transcribe-corpus's plan and `asr prepare`'s NeMo layout read a line alike: the same
    absolute audio path from a relative one, the same span, and the same one-line complaint about a bad line."""
    from asr.bulk.plan import plan
    from asr.corpora.layouts import FormatError, nemo

    (tmp_path / "sub").mkdir()
    audio = tmp_path / "sub" / "a.wav"
    shutil.copy(speech[0][0], audio)
    folder = tmp_path / "m"
    folder.mkdir()
    good = write_lines(folder / "good.jsonl", [
        {"audio_filepath": "../sub/a.wav", "duration": 0.5, "offset": 0.25, "text": "Hello there", "speaker": "x"}])
    utt, = read_manifest(good)
    item, = [i for part in plan([str(good)]).parts for i in part]
    row, = nemo(good)
    assert utt.audio_filepath == item.audio_filepath == row.audio == str(audio)
    assert (utt.offset, utt.duration) == (item.offset, item.duration) == (row.offset, row.duration) == (0.25, 0.5)
    assert utt.text == item.text == "hello there"
    bad = write_lines(folder / "bad.jsonl", [{"audio_filepath": "../sub/a.wav", "duration": "long", "text": "x"}])
    for read in (read_manifest, lambda m: plan([str(m)]), lambda m: list(nemo(m))):
        with pytest.raises(AsrError, match=r"(?s)bad.jsonl.*line 1: not an object with audio_filepath"):
            read(bad)
    with pytest.raises(FormatError, match="line 1: missing field 'text'"):
        list(nemo(write_lines(folder / "untexted.jsonl", [{"audio_filepath": "../sub/a.wav"}])))


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "none.jsonl")


def test_write_read_round_trip(tmp_path, speech):
    utts = [Utterance(str(p), 1.0, t) for p, t in speech]
    write_manifest(tmp_path / "sub" / "m.jsonl", utts)
    assert read_manifest(tmp_path / "sub" / "m.jsonl") == utts
    first = json.loads((tmp_path / "sub" / "m.jsonl").read_text().splitlines()[0])
    assert not first["audio_filepath"].startswith("/") and "offset" not in first


def test_dataset_and_collate(speech):
    ds = UtteranceDataset([Utterance(str(p), 1.0, t) for p, t in speech[:3]])
    batch = collate([ds[i] for i in range(3)])
    assert batch["waves"].shape[0] == 3 and batch["waves"].shape[1] == batch["wave_lengths"].max()
    assert batch["targets"].shape == (3, int(batch["target_lengths"].max()))
    assert batch["target_lengths"].tolist() == [len(t) for _, t in speech[:3]]


def durations(n=500, seed=0):
    rng = random.Random(seed)
    return [rng.uniform(0.5, 15.0) for _ in range(n)]


def test_sampler_covers_each_utterance_once_within_budget():
    d = durations()
    sampler = DurationBatchSampler(d, max_seconds=60.0, seed=1)
    batches = list(sampler)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(d)))
    assert all(max(d[i] for i in b) * len(b) <= 60.0 or len(b) == 1 for b in batches)
    padded = sum(max(d[i] for i in b) * len(b) for b in batches)
    assert 1 - sum(d) / padded < 0.1  # bucketing keeps padding low
    assert len(sampler) == len(batches)


def test_sampler_epochs_differ_and_are_reproducible():
    d = durations()
    a, b = DurationBatchSampler(d, 60.0, seed=1), DurationBatchSampler(d, 60.0, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    assert list(DurationBatchSampler(d, 60.0, shuffle=False)) == list(DurationBatchSampler(d, 60.0, shuffle=False))


def test_sampler_ranks_are_disjoint_and_equal_length():
    d = durations()
    ranks = [list(DurationBatchSampler(d, 60.0, seed=2, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    seen = [i for r in ranks for b in r for i in b]
    assert len(seen) == len(set(seen))


def test_lightning_sets_the_epoch_through_the_batch_sampler():
    # Lightning's _set_sampler_epoch looks at dataloader.batch_sampler.sampler: our sampler must be reached.
    from lightning_fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    sampler = DurationBatchSampler(durations(), 60.0, seed=1)
    seen = []
    sampler.on_epoch = seen.append
    loader = DataLoader(list(range(200)), batch_sampler=sampler)
    _set_sampler_epoch(loader, 7)
    assert sampler.epoch == 7 and seen == [7]


def test_validation_sharding_keeps_every_batch():
    d = durations(n=50)
    full = list(DurationBatchSampler(d, 60.0, shuffle=False))
    shards = [list(DurationBatchSampler(d, 60.0, shuffle=False, num_replicas=3, rank=r, drop_uneven=False))
              for r in range(3)]
    assert sorted(i for s in shards for b in s for i in b) == sorted(i for b in full for i in b)


def test_resume_skips_the_finished_batches_of_that_epoch_only():
    d = durations()
    whole = DurationBatchSampler(d, 60.0, seed=5)
    whole.set_epoch(2)
    resumed = DurationBatchSampler(d, 60.0, seed=5)
    resumed.resume_at(2, 3)
    resumed.set_epoch(2)
    assert list(resumed) == list(whole)[3:]
    assert list(resumed) == list(whole)[3:]  # torch iterates twice on start-up: both passes skip
    assert len(resumed) == len(whole)  # Lightning counts the epoch's batches from len()
    resumed.set_epoch(3)
    whole.set_epoch(3)
    assert list(resumed) == list(whole)


def test_speed_perturbation_buckets_by_perturbed_duration():
    from asr.training.wave_augment import WaveAugmentConfig, speed_factor

    d = durations()
    speeds = (0.9, 1.0, 1.1)
    sampler = DurationBatchSampler(d, 60.0, seed=1, augment=WaveAugmentConfig(speeds=speeds))
    sampler.set_epoch(1)
    actual = [d[i] / speed_factor(speeds, 1, 1, i) for i in range(len(d))]
    batches = list(sampler)
    assert all(max(actual[i] for i in b) * len(b) <= 60.0 or len(b) == 1 for b in batches)
    padded = sum(max(actual[i] for i in b) * len(b) for b in batches)
    assert 1 - sum(actual) / padded < 0.1


def test_sortagrad_orders_the_first_epoch_by_duration_only():
    d = durations()
    sampler = DurationBatchSampler(d, 60.0, seed=1, sortagrad=True, jitter=0.0)
    longest = [max(d[i] for i in b) for b in sampler]
    assert longest == sorted(longest)
    sampler.set_epoch(1)
    longest = [max(d[i] for i in b) for b in sampler]
    assert longest != sorted(longest)


def test_speaker_labels_round_trip(tmp_path, speech):
    utts = [Utterance(str(p), 1.0, t, speaker=s) for (p, t), s in zip(speech[:3], ["flite:kal16", "", "espeak:en"])]
    write_manifest(tmp_path / "m.jsonl", utts)
    assert read_manifest(tmp_path / "m.jsonl") == utts
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [r.get("speaker") for r in rows] == ["flite:kal16", None, "espeak:en"]  # no empty field written


def test_manifests_mix_with_weights(tmp_path, speech):
    utts = [Utterance(str(p), sf.info(str(p)).duration, t) for p, t in speech]
    write_manifest(tmp_path / "a.jsonl", utts[:4])
    write_manifest(tmp_path / "b.jsonl", utts[4:])
    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    one = mixed(a, None, Vocabulary())
    assert one.utts == read_manifest(a) and one.epoch(0) is None
    both = mixed([a, b], [0.5, 2], Vocabulary(), seed=3)
    epochs = [[both.utts[i].text for i in both.epoch(e)] for e in range(6)]
    for texts in epochs:  # b twice, and half of a
        assert len(texts) == 2 + 2 * len(utts[4:]) and all(texts.count(u.text) == 2 for u in utts[4:])
        assert sum(texts.count(u.text) for u in utts[:4]) == 2
    halves = {frozenset(t for t in texts if t in {u.text for u in utts[:4]}) for texts in epochs}
    assert len(halves) > 1  # a different half of a in different epochs, so all of it is heard
    again = mixed([a, b], [0.5, 2], Vocabulary(), seed=3)
    assert [again.epoch(e) for e in range(6)] == [both.epoch(e) for e in range(6)]  # reproducible from the seed
    sampler = DurationBatchSampler([u.duration for u in both.utts], 100.0, subset=both.epoch)
    for e in range(3):
        sampler.set_epoch(e)
        assert sorted(i for batch in sampler for i in batch) == sorted(both.epoch(e))  # the sampler batches that share
    assert len(mixed([a, b], [1, 1], Vocabulary(), max_duration=0).utts) == 0
    with pytest.raises(AsrError, match="one per train_manifest"):
        mixed([a, b], [1.0], Vocabulary())
