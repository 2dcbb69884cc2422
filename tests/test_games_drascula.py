"""The Drascula reader on a drascula.dat and clips written here in the game's formats (never the game's data)."""

import struct

import numpy as np
import pytest

from asr.corpora.games import GameDataError, ReadReport
from asr.corpora.games.drascula import RECORD_SIZES, SPEECH_DIR, TABLES, read, read_tables

RATE = 11025


def table_block(strings):
    """One language's block of a text table: 2 zero bytes, then sized, NUL-ended strings padded to 4 bytes."""
    body = b""
    for s in strings:
        raw = (s if isinstance(s, bytes) else s.encode("cp850")) + b"\0"
        raw += b"\0" * (4 - (len(raw) + 2) % 4)  # 1-4 bytes, as the tool that builds drascula.dat pads
        body += struct.pack(">H", len(raw) + 2) + raw
    return struct.pack(">H", len(body) + 2) + b"\0\0" + body


def write_dat(path, languages, version=6):
    """A drascula.dat with one dummy record per record block and ``languages`` (name -> strings) text tables."""
    data = b"DRASCULA" + bytes([version])
    for size in RECORD_SIZES:
        data += struct.pack(">H", 1) + bytes(range(size))
    data += struct.pack(">H", len(languages))
    for name in TABLES:
        count = max(len(lang.get(name, [""])) for lang in languages)
        data += struct.pack(">H", count)
        for lang in languages:
            data += table_block((list(lang.get(name, [])) + [""] * count)[:count])
    path.write_bytes(data)
    return path


def tone(seconds, level, period=7):
    """Unsigned 8-bit samples of a square-ish wave, distinct per (level, period)."""
    n = int(seconds * RATE)
    return (128 + level * np.sign(np.sin(np.arange(n) * 2 * np.pi / period))).astype(np.uint8)


def wave_without_riff(samples, channels=1):
    """A WAVE file of 8-bit PCM with its first 4 bytes ("RIFF") missing, as the game's 190.ALS has it."""
    fmt = struct.pack("<HHIIHH", 1, channels, RATE, RATE * channels, channels, 8)
    data = samples.tobytes()
    chunks = b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return struct.pack("<I", len(chunks) + 4) + b"WAVE" + chunks + b"fact" + struct.pack("<I", 4) + b"\x80" * 4


ENGLISH = {
    "text": ["", "THE DOOR IS CLOSED", ""],
    "textd": ["", "", "I AM DRASCULA"] + [""] * 54 + ["HOW DO YOU KNOW?"] + [""] * 11 + ["HI FOREIGNER"]
    + [""] * 12 + ["NOTHING AT ALL", "BLA, BLA."],
    "textbj": ["", b"\xa8QU\x90?\xa7JOHNNY!"],  # cp850 bytes: "¿QUÉ?", 0xA7 word separator, "JOHNNY!"
    "texti": ["", "MASTER"],
}
OTHER = {name: ["X" * (i % 3) for i in range(len(lines))] for name, lines in ENGLISH.items()}
CLIPS = {"1": tone(1.0, 40), "D2": tone(2.0, 50, 5), "D57": tone(0.5, 20), "D69": tone(0.7, 30, 9),
         "D82": tone(0.3, 60, 3), "D83": tone(0.2, 10), "BJ1": tone(1.5, 45, 4),
         "S1": tone(0.3, 5), "2": tone(0.4, 5), "I9": tone(0.2, 5)}


@pytest.fixture
def game(tmp_path):
    folder = tmp_path / "pkg" / SPEECH_DIR
    folder.mkdir(parents=True)
    for stem, samples in CLIPS.items():
        (folder / f"{stem}.ALS").write_bytes(samples.tobytes())
    return tmp_path / "pkg", write_dat(tmp_path / "drascula.dat", [ENGLISH, OTHER])


def test_each_clip_gets_its_line_speaker_and_own_audio(game):
    report = ReadReport()
    clips = {c.clip_id: c for c in read(*game, report)}
    assert {k: (c.speaker, c.text) for k, c in clips.items()} == {
        "1": ("John Hacker", "THE DOOR IS CLOSED"), "D2": ("Drascula", "I AM DRASCULA"),
        "D57": ("John Hacker", "HOW DO YOU KNOW?"), "D69": ("blind man", "HI FOREIGNER"),
        "D82": ("bartender", "NOTHING AT ALL"), "D83": ("trunk", "BLA, BLA."), "BJ1": ("B.J.", "¿QUÉ? JOHNNY!")}
    for stem, clip in clips.items():
        assert clip.game == "drascula" and clip.sample_rate == RATE and clip.audio.dtype == np.float32
        np.testing.assert_array_equal(clip.audio, (CLIPS[stem].astype(np.float32) - 128) / 128)
    assert report.clips == 7 and abs(report.seconds - 6.2) < 1e-3
    assert report.unmatched == {"clip prefix without a text table (S, F: sound effects)": 1,
                                "clip whose line is empty in its text table": 1,
                                "clip number past the end of its text table": 1}


def test_english_is_the_first_language(game):
    tables = read_tables(game[1])
    assert set(tables) == set(TABLES) and tables["texti"] == ["", "MASTER"]


def test_a_wave_headed_clip_gives_its_data_chunk_and_3_als_its_played_part(game):
    root, dat = game
    folder = root / SPEECH_DIR
    (folder / "1.ALS").write_bytes(wave_without_riff(CLIPS["1"]))
    played = np.resize(tone(1.0, 50, 5), 117158 - 73959)  # the part the engine plays
    silent = np.full(145166, 128, dtype=np.uint8)
    silent[73959:117158] = played
    (folder / "3.ALS").write_bytes(silent.tobytes())
    write_dat(dat, [{**ENGLISH, "text": ["", "THE DOOR IS CLOSED", "", "ABANDONED"]}])
    clips = {c.clip_id: c for c in read(root, dat, ReadReport())}
    np.testing.assert_array_equal(clips["1"].audio, (CLIPS["1"].astype(np.float32) - 128) / 128)
    np.testing.assert_array_equal(clips["3"].audio, (played.astype(np.float32) - 128) / 128)
    (folder / "1.ALS").write_bytes(wave_without_riff(np.repeat(CLIPS["1"], 2), channels=2))
    with pytest.raises(GameDataError, match=r"1\.ALS: WAVE header is not 8-bit mono PCM"):
        list(read(root, dat, ReadReport()))


def one_line_error(root, dat):
    with pytest.raises(GameDataError) as caught:
        list(read(root, dat, ReadReport()))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_truncated_or_garbled_dat_is_named(game):
    root, dat = game
    whole = dat.read_bytes()
    for cut in (5, 12, 100, len(whole) - 3):
        dat.write_bytes(whole[:cut])
        assert one_line_error(root, dat).startswith(f"{dat}: ") and f"ends at byte {cut}" in one_line_error(root, dat)
    at = whole.index(b"THE DOOR IS CLOSED") - 2
    dat.write_bytes(whole[:at] + b"\xff\xff" + whole[at + 2:])
    assert "table text: its block ends" in one_line_error(root, dat)
    dat.write_bytes(whole[:at] + b"\x00\x02" + whole[at + 2:])
    assert "table text: string 1 (size 2" in one_line_error(root, dat)
    dat.write_bytes(whole + b"\0")
    assert "1 unknown bytes after the last text table" in one_line_error(root, dat)
    dat.write_bytes(b"NOTDRASC" + whole[8:])
    assert "not a drascula.dat" in one_line_error(root, dat)
    write_dat(dat, [ENGLISH], version=7)
    assert "version 7, this reader knows version 6" in one_line_error(root, dat)


def test_missing_files_are_named(game, tmp_path):
    root, dat = game
    assert one_line_error(tmp_path / "nothing", dat) == (
        f"{tmp_path / 'nothing' / SPEECH_DIR}: not found (Debian package drascula)")
    assert "missing.dat: not found (Debian package scummvm-data)" in one_line_error(root, tmp_path / "missing.dat")
    for clip in (root / SPEECH_DIR).iterdir():
        clip.unlink()
    assert "no .ALS speech clips" in one_line_error(root, dat)
