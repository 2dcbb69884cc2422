"""Every real-corpus recipe, run for real on a tiny fake archive with the official layout and file formats."""

import csv
import importlib.util
import io
import tarfile
from pathlib import Path

import pytest
import soundfile as sf

from asr.manifest import read_manifest
from asr.errors import AsrError
from tests.conftest import tone

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def recipe(name):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / name / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def audio_bytes(fmt: str, seconds: float = 0.5, rate: int = 16000, subtype=None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, rate), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def make_tar(path: Path, files: dict[str, bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "w:bz2" if path.name.endswith(".bz2") else "w:gz"
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def manifests(data_dir: Path, *names) -> dict:
    return {n: read_manifest(data_dir / f"{n}.jsonl") for n in names}


def librispeech_files(subset: str, speakers=(("19", "198"), ("26", "495"))) -> dict:
    files = {}
    for spk, ch in speakers:
        base = f"LibriSpeech/{subset}/{spk}/{ch}"
        lines = []
        for i in range(2):
            uid = f"{spk}-{ch}-{i:04d}"
            files[f"{base}/{uid}.flac"] = audio_bytes("FLAC", 0.4 + 0.1 * i)
            lines.append(f"{uid} NORTHANGER ABBEY'S CHAPTER ONE" if i else f"{uid} THE CAT SAT")
        files[f"{base}/{spk}-{ch}.trans.txt"] = "\n".join(lines) + "\n"
    return files


def test_librispeech(tmp_path):
    downloads = tmp_path / "dl"
    for subset in ("train-clean-100", "dev-clean"):
        make_tar(downloads / f"{subset}.tar.gz", librispeech_files(subset))
    args = ["--subsets", "train-clean-100,dev-clean", "--data_dir", str(tmp_path / "data"),
            "--download_dir", str(downloads), "--skip_checksum"]
    assert recipe("librispeech").main(args) == 0
    m = manifests(tmp_path / "data", "train-clean-100", "dev-clean", "train")
    assert len(m["train"]) == 4 and len(m["dev-clean"]) == 4
    texts = sorted(u.text for u in m["train"])
    assert texts[0] == "northanger abbey's chapter one" and "the cat sat" in texts
    assert all(Path(u.audio_filepath).is_file() and 0.35 < u.duration < 0.55 for u in m["train"])
    stamp = (tmp_path / "data" / "train.jsonl").read_text()
    assert recipe("librispeech").main(args) == 0  # idempotent: nothing extracted again, same manifests
    assert (tmp_path / "data" / "train.jsonl").read_text() == stamp


def test_librispeech_refuses_unknown_subset(tmp_path):
    with pytest.raises(SystemExit):
        recipe("librispeech").main(["--subsets", "train-clean-1000", "--data_dir", str(tmp_path)])


def test_librispeech_checksum_mismatch_is_refused(tmp_path):
    make_tar(tmp_path / "dl" / "dev-clean.tar.gz", librispeech_files("dev-clean"))
    with pytest.raises(AsrError, match="sha256 checksum mismatch"):
        recipe("librispeech").main(["--subsets", "dev-clean", "--data_dir", str(tmp_path / "data"),
                                    "--download_dir", str(tmp_path / "dl")])
    assert not (tmp_path / "dl" / "dev-clean.tar.gz").exists()  # the bad copy is gone: the next run re-fetches


def test_mini_librispeech(tmp_path):
    downloads = tmp_path / "dl"
    make_tar(downloads / "train-clean-5.tar.gz", librispeech_files("train-clean-5"))
    make_tar(downloads / "dev-clean-2.tar.gz", librispeech_files("dev-clean-2", (("84", "121123"),)))
    assert recipe("mini_librispeech").main(["--data_dir", str(tmp_path / "data"), "--download_dir", str(downloads),
                                            "--skip_checksum"]) == 0
    m = manifests(tmp_path / "data", "train", "dev")
    assert len(m["train"]) == 4 and len(m["dev"]) == 2


def test_an4(tmp_path):
    files, ids, trans = {}, {"train": [], "test": []}, {"train": [], "test": []}
    words = ["YES", "NO", "ENTER SIX", "RUBOUT", "G E O R G E", "ERASE C Q"]
    for split, folder in (("train", "an4_clstk"), ("test", "an4test_clstk")):
        n = 40 if split == "train" else 3
        for i in range(n):
            spk = f"sp{i % 3}"
            fileid = f"{folder}/{spk}/an{i}-{spk}-b"
            files[f"an4/wav/{fileid}.sph"] = audio_bytes("NIST", 0.3, subtype="PCM_16")
            ids[split].append(fileid)
            trans[split].append(f"<s> {words[i % len(words)]} </s> (an{i}-{spk}-b)")
    for split in ("train", "test"):
        files[f"an4/etc/an4_{split}.fileids"] = "\n".join(ids[split]) + "\n"
        files[f"an4/etc/an4_{split}.transcription"] = "\n".join(trans[split]) + "\n"
    make_tar(tmp_path / "dl" / "an4_sphere.tar.gz", files)
    assert recipe("an4").main(["--data_dir", str(tmp_path / "data"), "--download_dir", str(tmp_path / "dl"),
                               "--skip_checksum"]) == 0
    m = manifests(tmp_path / "data", "train", "dev", "test")
    assert (len(m["train"]), len(m["dev"]), len(m["test"])) == (38, 2, 3)
    assert m["test"][2].text == "enter six" and m["train"][4].text == "g e o r g e"
    assert 0.25 < m["test"][0].duration < 0.35


def test_ljspeech(tmp_path):
    files, lines = {}, []
    for i in range(20):
        uid = f"LJ001-{i:04d}"
        files[f"LJSpeech-1.1/wavs/{uid}.wav"] = audio_bytes("WAV", 0.3, rate=22050)
        lines.append(f"{uid}|Printing, in 1840 the only sense|Printing, in eighteen forty the only sense")
    files["LJSpeech-1.1/metadata.csv"] = "\n".join(lines) + "\n"
    make_tar(tmp_path / "dl" / "LJSpeech-1.1.tar.bz2", files)
    assert recipe("ljspeech").main(["--data_dir", str(tmp_path / "data"), "--download_dir", str(tmp_path / "dl"),
                                    "--skip_checksum"]) == 0
    m = manifests(tmp_path / "data", "train", "dev", "test")
    assert (len(m["train"]), len(m["dev"]), len(m["test"])) == (16, 2, 2)
    assert m["train"][0].text == "printing in eighteen forty the only sense"  # the normalised column
    assert Path(m["test"][-1].audio_filepath).name == "LJ001-0019.wav"  # the held-out lines are the last ones


def test_commonvoice(tmp_path):
    files = {}
    base = "cv-corpus-17.0-2024-03-15/en"
    header = ["client_id", "path", "sentence_id", "sentence", "up_votes", "down_votes"]
    sentences = {"train": ["Hello world.", "It's fine, thanks!", "Ça va très bien"], "dev": ["Good morning"],
                 "test": ["See you soon", "Bye"]}
    for split, texts in sentences.items():
        out = io.StringIO()
        w = csv.writer(out, delimiter="\t", lineterminator="\n")
        w.writerow(header)
        for i, t in enumerate(texts):
            name = f"common_voice_en_{split}{i}.mp3"
            files[f"{base}/clips/{name}"] = audio_bytes("MP3", 0.6, rate=48000, subtype="MPEG_LAYER_III")
            w.writerow(["abc", name, "s1", t, "2", "0"])
        files[f"{base}/{split}.tsv"] = out.getvalue()
    archive = make_tar(tmp_path / "cv-corpus-17.0-2024-03-15-en.tar.gz", files)
    assert recipe("commonvoice").main(["--archive", str(archive), "--language", "en", "--data_dir",
                                       str(tmp_path / "data"), "--jobs", "2"]) == 0
    out = tmp_path / "data" / "17.0-2024-03-15" / "en"
    m = manifests(out, "train", "dev", "test")
    assert [u.text for u in m["train"]] == ["hello world", "it's fine thanks", "ca va tres bien"]
    assert len(m["test"]) == 2
    info = sf.info(m["train"][0].audio_filepath)
    assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")


def test_tedlium3(tmp_path):
    files = {}
    for split, talks in (("train", ["TalkA", "TalkB"]), ("dev", ["TalkC"]), ("test", ["TalkD"])):
        for talk in talks:
            files[f"TEDLIUM_release-3/legacy/{split}/sph/{talk}.sph"] = audio_bytes("NIST", 6.0, subtype="PCM_16")
            files[f"TEDLIUM_release-3/legacy/{split}/stm/{talk}.stm"] = (
                f"{talk} 1 {talk} 0.50 2.25 <o,f0,male> so it 's a <unk> story {{NOISE}}\n"
                f"{talk} 1 inter_segment_gap 2.25 3.00 <o,,unknown> ignore_time_segment_in_scoring\n"
                f"{talk} 1 {talk} 3.00 5.50 <o,f0,male> we 've been there\n")
    make_tar(tmp_path / "dl" / "TEDLIUM_release-3.tgz", files)
    assert recipe("tedlium3").main(["--data_dir", str(tmp_path / "data"), "--download_dir", str(tmp_path / "dl"),
                                    "--skip_checksum"]) == 0
    m = manifests(tmp_path / "data", "train", "dev", "test")
    assert len(m["train"]) == 4 and len(m["dev"]) == 2
    first = m["dev"][0]
    assert first.text == "so it's a story" and (first.offset, first.duration) == (0.5, 1.75)
    assert m["dev"][1].text == "we've been there" and m["dev"][1].offset == 3.0
    from asr.audio import load_audio

    wave = load_audio(first.audio_filepath, first.offset, first.duration)  # only that span is read
    assert abs(wave.numel() - 1.75 * 16000) <= 2


def test_folder_every_layout(tmp_path):
    src = tmp_path / "mine"
    (src / "a").mkdir(parents=True)
    for i in range(30):
        sf.write(src / "a" / f"u{i}.wav", tone(0.3), 16000)
        (src / "a" / f"u{i}.txt").write_text(f"utterance {'abcdefghij'[i % 10] * (1 + i // 10)}\n" if i != 5 else "")
    prep = recipe("folder")
    prep.main(["--input", str(src), "--data_dir", str(tmp_path / "d1"), "--dev_fraction", "0.2",
               "--test_fraction", "0.2"])
    got = [u for n in ("train", "dev", "test") if (tmp_path / "d1" / f"{n}.jsonl").exists()
           for u in read_manifest(tmp_path / "d1" / f"{n}.jsonl")]
    assert len(got) == 29  # the empty transcript is left out
    assert len(read_manifest(tmp_path / "d1" / "train.jsonl")) < 29  # some went to dev / test

    with open(src / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text"])
        w.writerows([(f"a/u{i}.wav", f"row {w}") for i, w in enumerate(["one", "two", "three"])])
    prep.main(["--input", str(src / "list.csv"), "--data_dir", str(tmp_path / "d2"), "--dev_fraction", "0",
               "--test_fraction", "0"])
    assert [u.text for u in read_manifest(tmp_path / "d2" / "train.jsonl")] == ["row one", "row two", "row three"]

    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    sf.write(tmp_path / "long.wav", tone(4.0), 16000)
    (kaldi / "wav.scp").write_text(f"rec1 {tmp_path / 'long.wav'}\n")
    (kaldi / "segments").write_text("utt1 rec1 0.0 1.5\nutt2 rec1 2.0 3.25\n")
    (kaldi / "text").write_text("utt1 HELLO THERE\nutt2 GENERAL KENOBI\n")
    prep.main(["--input", str(kaldi), "--data_dir", str(tmp_path / "d3"), "--dev_fraction", "0",
               "--test_fraction", "0"])
    utts = read_manifest(tmp_path / "d3" / "train.jsonl")
    assert [(u.text, u.offset, u.duration) for u in utts] == [("hello there", 0.0, 1.5), ("general kenobi", 2.0, 1.25)]

    prep.main(["--input", str(tmp_path / "d3" / "train.jsonl"), "--data_dir", str(tmp_path / "d4"),
               "--dev_fraction", "0", "--test_fraction", "0"])
    assert read_manifest(tmp_path / "d4" / "train.jsonl") == utts


def test_folder_kaldi_pipes_are_refused(tmp_path):
    (tmp_path / "wav.scp").write_text("rec1 sph2pipe -f wav a.sph |\n")
    (tmp_path / "text").write_text("rec1 HI\n")
    with pytest.raises(AsrError, match=r"wav.scp:1: piped commands are not supported"):
        recipe("folder").main(["--input", str(tmp_path), "--data_dir", str(tmp_path / "out")])
