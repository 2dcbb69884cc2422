"""The real-speech corpus builder (asr.corpora.games.build) on clips made here; each reader has its own tests."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.games import Clip, GameDataError
from asr.corpora.games import build
from asr.corpora.games.build import GamesConfig, check, speaker_id
from asr.corpora.system import unpack
from asr.errors import AsrError
from asr.manifest import read_manifest
from asr.text import Vocabulary


def clip(clip_id, text, seconds=2.0, speaker="Joey", game="sky"):
    audio = 0.1 * np.sin(np.arange(int(seconds * 11025)) * 0.3).astype(np.float32)
    return Clip(game, clip_id, speaker, text, audio, 11025)


@pytest.mark.parametrize("c,reason", [
    (clip("1", "Hello there, Foster."), ""),
    (clip("2", "HIC! Another one."), "sound with no spelling"),
    (clip("3", "(sighs)"), "stage direction only"),
    (clip("4", "Hi.", seconds=0.2), "too short"),
    (clip("5", "Fine.", seconds=25), "too long"),
    (clip("6", "A very long line that the actor never said in this tiny clip at all", seconds=1.0),
     "speaking rate out of range (text and audio differ)"),
    (clip("7", "Ça va, señor? 你好"), "outside vocabulary"),
])
def test_each_clip_is_kept_or_left_out_with_its_reason(c, reason):
    text, why = check(c, GamesConfig(), Vocabulary())
    assert why == reason and bool(text) == (reason == "")


def test_speakers_are_named_by_game_and_character():
    assert speaker_id("queen", "Joe  King") == "queen:joe_king"
    assert speaker_id("sky", "") == "sky:unknown"


def fake_games(monkeypatch, tmp_path, broken=()):
    clips = {
        "drascula": [clip("D1", "I am Drascula.", game="drascula", speaker="Drascula"),
                     clip("D2", "Hmm.", game="drascula")],
        "sky": [clip("50001", "Where am I?", speaker="Foster"),
                clip("50002", "In the city, 42 floors up.", speaker="Joey"), clip("50003", "(beep)", speaker="Joey")],
        "queen": [clip("C1", "Joe King, pilot.", game="queen", speaker="Joe"),
                  clip("C2", "Thank you.", game="queen", speaker="Frank")],
    }

    def reader(name):
        def read(roots, report):
            if name in broken:
                raise GameDataError(f"{name}.dat: truncated")
            for c in clips[name]:
                yield report.add(c)
        return read

    monkeypatch.setattr(build, "_readers", lambda: {name: reader(name) for name in clips})
    monkeypatch.setattr(build, "unpack", lambda package, folder: (tmp_path / package, build.GAMES["queen"].version
                                                                 if package.startswith("flight") else "0"))
    return GamesConfig(out_dir=str(tmp_path / "games"), games=("drascula", "sky", "queen"),
                       dev_speakers=("queen:frank",), jobs=1)


def test_splits_hold_the_test_game_the_held_out_speakers_and_the_rest(monkeypatch, tmp_path):
    cfg = fake_games(monkeypatch, tmp_path)
    for name in cfg.games:
        build.read_game(name, cfg)
    paths = build.write_splits(cfg, list(cfg.games))
    test, dev, train = (read_manifest(paths[s]) for s in ("test_real", "dev_real", "train"))
    # The test game keeps even the line with a sound in it: the yardstick scores every clip that has words.
    assert [u.text for u in test] == ["i am drascula", "hmm"] and test[0].speaker == "drascula:drascula"
    assert [u.speaker for u in dev] == ["queen:frank"]
    assert sorted(u.text for u in train) == ["in the city forty two floors up", "joe king pilot", "where am i"]
    assert sf.info(train[0].audio_filepath).samplerate == 16000
    assert abs(train[0].duration - 2.0) < 0.01
    # The LM's text is the train split's alone: never a test or dev line.
    assert (tmp_path / "games" / "lm_text.txt").read_text().splitlines() == sorted(u.text for u in train)
    dropped = (tmp_path / "games" / "games" / "sky.dropped.tsv").read_text()
    assert dropped.startswith("50003\tJoey\t2.00\tstage direction only\t(beep)")
    stats = json.loads((tmp_path / "games" / "games" / "sky.json").read_text())
    assert stats["kept"] == 2 and stats["clips_read"] == 3 and stats["dropped"] == {"stage direction only": 1}


def test_a_broken_game_is_named_in_one_line_and_the_others_still_build(monkeypatch, tmp_path, capsys):
    cfg = fake_games(monkeypatch, tmp_path, broken=("sky",))
    monkeypatch.setattr(build, "ProcessPoolExecutor", _Serial)
    paths = build.prepare(cfg)
    out = capsys.readouterr().out
    assert "asr: error: sky left out: sky.dat: truncated" in out
    assert {u.speaker for u in read_manifest(paths["train"])} == {"queen:joe"}


def test_excluded_clips_are_left_out_with_the_reason(monkeypatch, tmp_path):
    cfg = fake_games(monkeypatch, tmp_path)
    (tmp_path / "x.txt").write_text("sky:50002  # 3.1 in the city\nqueen:C9\n")
    cfg = GamesConfig(**{**cfg.__dict__, "exclude": str(tmp_path / "x.txt")})
    stats = build.read_game("sky", cfg)
    assert stats["dropped"] == {"alignment score (text and audio differ)": 1, "stage direction only": 1}


def test_a_package_debian_does_not_have_is_named_in_one_line(tmp_path):
    with pytest.raises(AsrError, match=r"^Debian package no-such-game-xyz: could not download it \(") as e:
        unpack("no-such-game-xyz", tmp_path)
    assert "\n" not in str(e.value)


def _unpack_in_a_process(args):
    return unpack(*args)


def test_games_in_parallel_fetch_a_shared_package_once(tmp_path, monkeypatch):
    """Drascula and the Queen both read scummvm-data, in two processes: both get it, downloaded once."""
    from concurrent.futures import ProcessPoolExecutor

    bin_dir, log = tmp_path / "bin", tmp_path / "downloads.log"
    bin_dir.mkdir()
    # A slow apt-get, so every process asks before the first one has finished; dpkg-deb makes the package's tree.
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$4" >> {log}\nsleep 1\ntouch "$4_2.7.0_all.deb"\n')
    (bin_dir / "dpkg-deb").write_text('#!/bin/sh\nmkdir -p "$3/usr/share" && cp "$2" "$3/usr/share/data"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_unpack_in_a_process, [("scummvm-data", tmp_path / "dl")] * 3))
    assert [version for _, version in results] == ["2.7.0"] * 3
    assert (tmp_path / "dl" / "scummvm-data" / "usr" / "share" / "data").exists()
    assert log.read_text().split() == ["scummvm-data"]


class _Serial:
    """ProcessPoolExecutor's map in this process, so the fake readers patched in here are used."""

    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)
