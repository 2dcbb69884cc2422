"""The Flight of the Amazon Queen reader (asr.corpora.games.queen) on a tiny game written here in its formats."""

import io
import struct

import av
import numpy as np
import pytest

from asr.corpora.games import GameDataError, ReadReport
from asr.corpora.games import queen

BANK = b"AmBk" + bytes(16)  # the 20-byte header before a DOG, CUT or JAS file's data
VERBS = ["Open", "Close", "Move", "Give", "Look at", "Pick up", "Talk to", "Use", "Walk to", "with", "to", "Skip"]


def be(*values):
    return struct.pack(f">{len(values)}h", *values)


class Data(bytearray):
    """A file's data, with strings padded as the game pads them (relative to the data's start)."""

    def string(self, text, align=2):
        self += bytes([len(text)]) + text.encode("latin-1")
        if text:
            self += bytes(-len(self) % align)
        return self


def mp3(seconds=0.5, rate=11025):
    """A tone encoded as the game's clips are: bare MPEG audio frames, 16 kbit/s mono, labelled 11,025 Hz."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 16000
        t = np.arange(int(seconds * rate)) / rate
        frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def jas():
    """QUEEN.JAS and QUEEN2.JAS of one room: object 1 "note" is a person whose actor is SPARKY-F; object 2 is
    a crate; TALK TO the note (command 1) opens SPARKY1.DOG (description 2)."""
    rooms, descriptions = 1, ["It's a crate.*03Empty.", "sparky1.DOG", "c1a.CUT"]
    names = ["note", "crate"]
    objects = [(1, 0, 0, 0, 0, 1, 0, -4), (2, 0, 0, 1, 0, 1, 0, 1)]  # name, x, y, desc, entry, room, state, image
    data = be(rooms, len(names), len(objects), len(descriptions))
    data += b"".join(be(*o) for o in objects) + be(0, 2) + be(0)  # room -> objects before it; room sound
    data += be(0) + be(0)  # no inventory items, no graphics
    data += be(2, 0) + bytes(8 * len(objects))  # walk areas of the room; object boxes
    data += be(0) + be(0)  # no walk-off points, no description sets
    data += be(1) + be(7, 1, 0, 0, 0, 0, 0, 1, 0, 0)  # command 1: TALK TO object 1, with conditions
    data += (be(0) + bytes(6)) * 3  # empty command tables still store one record
    data += be(1) + be(1, 0, 0, 2)  # command 1's game-state row: its text is description 2
    data += be(0) + be(0)  # entry object; no furniture
    data += be(1, 1, 1, 1) + be(1, 1, 1, 0, 0) + bytes(14)  # an actor: room 1, person 1, name 1 ("SPARKY-F")
    replies = [f"Reply {n}." for n in range(1, 41)]
    replies[0] = "It doesn't seem to open*03"
    text = descriptions + names + ["ROOM1"] + VERBS + replies + ["anim"] + ["SPARKY-F"] + ["SPARKY.ACT"]
    return {"QUEEN.JAS": BANK + bytes(data), "QUEEN2.JAS": "\r\n".join(text).encode() + b"\r\n"}


def dialogue(talk_key=5):
    """SPARKY1.DOG: Joe's opening line, one option (id 0x1A), the person's answer and the repeat lines."""
    joe = Data(be(0, 0)).string("Hi Sparky.", 4)  # 2 bytes, id 0 (Joe's opening), string
    joe += be(0, 0x1A)
    joe.string("*FLWhat's that?*03A bird?", 4)
    person = Data(be(0, 0)).string("Hello again.*02", 4)  # entry 0 repeats Joe's repeat line: never played
    person += be(0, 0x1A)
    person.string("*GDA plane.*01Here.", 4)  # Joe grabs, then Sparky answers in two parts
    person += be(0, 0x1B)
    person.string("0", 4)  # no line
    joe_at = 32 + 96
    person_at = joe_at + len(joe)
    cutaway_at = person_at + len(person)
    header = be(1, 9, talk_key, 2, 3) + bytes(12) + struct.pack(">3H", person_at, cutaway_at, cutaway_at + 4)
    data = Data(header + bytes(4) + bytes(96) + joe + person + bytes(4))
    data.string("Hi again, Joe.").string("0")
    return BANK + bytes(data)


def cutscene():
    """C1A.CUT: object 1 a crate animation (its frames follow it), 2 Joe, 3 the note (Sparky), 4 a caption."""
    crate = be(2, 0, 0, 0, 1, 1, *[0] * 11) + be(0) + be(5, *range(9)) + be(-2)  # anim list, execute; 1 frame
    joe, note = be(0, *[0] * 16) + be(0), be(1, *[0] * 16) + be(1, 1)  # number; people turned on
    caption = be(-3, *[0] * 16) + be(0)
    objects = crate + joe + note + caption
    states_at, sentences_at = 12 + len(objects), 12 + len(objects) + 6
    data = Data(be(0, 4, 0) + struct.pack(">3H", states_at, sentences_at, 0) + objects + bytes(6))
    data.string("*FL").string("").string("Look!*01*GDUp there!").string("*FLSQWAWK!").string("Meanwhile...*00")
    data[10:12] = struct.pack(">H", len(data))  # the bank names' offset
    data += be(1)
    data.string("").string("sparky1.dog")  # one (empty) bank name; the dialogue to start next
    data += be(1)  # ... with object 1
    return BANK + bytes(data)


def archive(files, retail=False):
    """A rebuilt queen.1c ("QTBL" table of contents first), or a retail queen.1 and its queen.tbl."""
    names = sorted(files)
    table_size = 0 if retail else 15 + 21 * len(names)
    toc, blob, offset = b"", b"", table_size
    for name in names:
        toc += struct.pack(">12sBII", name.encode(), 1, offset, len(files[name]))
        blob += files[name]
        offset += len(files[name])
    table = struct.pack(">H", len(names)) + toc
    if retail:
        return blob, b"QTBL" + struct.pack(">I", 3) + struct.pack(">H", 1) + bytes(21) + table
    return b"QTBL" + b"CEM10\0" + bytes(2) + b"\x01" + table + blob, None


def game(tmp_path, files=None, retail=False):
    """A package root holding the tiny game; returns it and the engine table's path."""
    files = files if files is not None else {**jas(), "SPARKY1.DOG": dialogue(), "C1A.CUT": cutscene()}
    folder = tmp_path / "root" / queen.GAME_DIR
    folder.mkdir(parents=True)
    blob, table = archive(files, retail)
    (folder / ("queen.1" if retail else "queen.1c")).write_bytes(blob)
    if table is not None:
        (tmp_path / "queen.tbl").write_bytes(table)
    return tmp_path / "root", tmp_path / "queen.tbl"


CLIPS = {  # clip -> (speaker, text) the game plays it with
    "05SSSSJ1": ("Joe", "Hi Sparky."),
    "05001AJ2": ("Joe", "What's that?"),  # segment 1 is the empty one before *FL
    "05001AJ3": ("Joe", "A bird?"),
    "05001AP2": ("Sparky", "A plane."),  # the actor's name, not the object's ("note")
    "05001AP3": ("Sparky", "Here."),
    "05XXXXP1": ("Sparky", "Hi again, Joe."),
    "C1A__021": ("Joe", "Look!"),
    "C1A__023": ("Joe", "Up there!"),
    "C1A__032": ("Sparky", "SQWAWK!"),
    "C1A__041": ("", "Meanwhile...*00"),  # a caption is played whole
    "JOE00011": ("Joe", "It doesn't seem to open"),
    "JOE00412": ("Joe", "Empty."),
}


def test_each_clip_gets_the_segment_and_speaker_the_game_plays_it_with(tmp_path):
    tone = mp3()
    extra = {"05001AJ1": tone, "C1A__022": tone, "1000SSSS": tone, "JOE00991": tone}  # none of them spoken
    root, table = game(tmp_path, {**jas(), "SPARKY1.DOG": dialogue(), "C1A.CUT": cutscene(),
                                  **{f"{stem}.SB": tone for stem in [*CLIPS, *extra]}})
    report = ReadReport()
    clips = list(queen.read(root, table, report))
    assert {c.clip_id: (c.speaker, c.text) for c in clips} == CLIPS
    assert report.clips == len(CLIPS)
    assert report.unmatched == {
        "clip: its segment has no text": 1,  # 05001AJ1: "" before *FL
        "clip: its segment is a gesture, not speech": 1,  # C1A__022: "" ended by *GD: Joe grabs
        "clip: not named like speech (sound effect or unused)": 1,
        "clip: named like speech, but no line plays it": 1,
        "line: no clip for it": 40 - 1 + 1,  # the other stock replies; the crate's first description
    }


def test_clips_decode_at_the_rate_the_game_plays_them(tmp_path):
    root, table = game(tmp_path, {**jas(), "SPARKY1.DOG": dialogue(), "C1A.CUT": cutscene(),
                                  "05SSSSJ1.SB": mp3(seconds=1.0)})
    clip, = queen.read(root, table, ReadReport())
    assert clip.sample_rate == queen.PLAYBACK_RATE == 11840  # labelled 11,025 Hz, played at 11,840 Hz
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1 and np.abs(clip.audio).max() <= 1.0
    assert 11025 <= len(clip.audio) < 11025 + 4 * 576  # a second of samples, + the encoder's padding (frames)
    assert np.abs(clip.audio).max() > 0.2


def test_a_retail_archive_takes_its_table_from_the_engine_data(tmp_path):
    pcm = struct.pack("<HH", 0, 104) + bytes(106) + bytes([128, 255, 0, 128])  # SB header, unsigned 8-bit
    root, table = game(tmp_path, {**jas(), "SPARKY1.DOG": dialogue(), "C1A.CUT": cutscene(), "05SSSSJ1.SB": pcm},
                       retail=True)
    clip, = queen.read(root, table, ReadReport())
    assert clip.clip_id == "05SSSSJ1" and clip.sample_rate == 11840
    assert np.allclose(clip.audio, [0, 127 / 128, -1, 0])
    table.unlink()
    with pytest.raises(GameDataError, match="queen.tbl: missing"):
        list(queen.read(root, table, ReadReport()))


@pytest.mark.parametrize("sentence,parts", [
    ("Hello.", [("Hello.", True)]),
    ("*FLHey!*01", [("", True), ("Hey!", True)]),
    ("Hm.*GDThere.", [("Hm.", False), ("There.", True)]),
    ("*XY00(237,112)Go.", [("", True), ("Go.", True)]),
])
def test_sentences_split_at_commands(sentence, parts):
    assert queen.segments(sentence) == parts


def test_engine_names_become_character_names():
    assert [queen.character(n) for n in ("SPARKY-F", "X10_RITA", "LOLA_SHOWER", "PRINCESS1", "JOE-H")] == [
        "Sparky", "Rita", "Lola", "Azura", "Joe"]


def test_missing_or_broken_files_are_named(tmp_path):
    with pytest.raises(GameDataError, match="no queen.1c or queen.1"):
        list(queen.read(tmp_path, tmp_path / "queen.tbl", ReadReport()))
    root, table = game(tmp_path / "cut")
    archive_path = root / queen.GAME_DIR / "queen.1c"
    archive_path.write_bytes(archive_path.read_bytes()[:-10])
    with pytest.raises(GameDataError, match=r"queen.1c: SPARKY1.DOG ends at byte \d+, past the end"):
        list(queen.read(root, table, ReadReport()))
    archive_path.write_bytes(archive_path.read_bytes()[:40])
    with pytest.raises(GameDataError, match="table of contents of 4 entries ends at byte"):
        list(queen.read(root, table, ReadReport()))
    root, table = game(tmp_path / "dog", {**jas(), "SPARKY1.DOG": dialogue()[:200], "C1A.CUT": cutscene()})
    with pytest.raises(GameDataError, match="SPARKY1.DOG is truncated or malformed"):
        list(queen.read(root, table, ReadReport()))
    root, table = game(tmp_path / "jas", {"QUEEN.JAS": jas()["QUEEN.JAS"]})
    with pytest.raises(GameDataError, match="QUEEN2.JAS is not in the archive"):
        list(queen.read(root, table, ReadReport()))
