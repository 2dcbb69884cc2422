"""The Beneath a Steel Sky reader on sky.dnr / sky.dsk / sky.cpt, script modules and a ScummVM-like binary written
here in the game's formats (never the game's data, nor ScummVM's tree)."""

import struct

import numpy as np
import pytest

from asr.corpora.games import GameDataError, ReadReport
from asr.corpora.games.sky import (ENGINE, GAME_DIR, SAMPLE_RATE, _Disk, choose_tree, find_trees, read,
                                   section_lines, text_number, unpack_rnc)

STORED = 0x800000  # directory flag: stored as is
ALPHABET = [0] + list(range(32, 127))  # NUL and printable ASCII: 96 leaves, 191 nodes


# --- writers ---------------------------------------------------------------------------------------------------------

def huffman(symbols):
    """A balanced Huffman tree over ``symbols`` as preorder (left, right, value) nodes, and each symbol's code."""
    nodes, codes = [], {}

    def walk(syms, code):
        at = len(nodes)
        nodes.append(None)
        if len(syms) == 1:
            nodes[at], codes[syms[0]] = (0, 0, syms[0]), code
            return
        walk(syms[:len(syms) // 2], code + "0")
        right = len(nodes)
        walk(syms[len(syms) // 2:], code + "1")
        nodes[at] = (at + 1, right, 0)

    walk(list(symbols), "")
    return tuple(nodes), codes


def tree_bytes(nodes):
    return bytes(b for node in nodes for b in node)


def text_section(lines, codes):
    """A text section: offsets, block sizes, line lengths and the lines' codes (padded as the game's tool pads)."""
    bits, lengths, units_of = "", [], []
    for line in lines:
        code = "".join(codes[c] for c in line.encode("latin-1") + b"\0")
        units = (len(code) + 1) // 2
        if units >= 128:  # long form: a multiple of 8 units
            units = (len(code) + 15) // 16 * 8
            lengths.append(0x80 | units >> 3)
        else:
            lengths.append(units)
        bits += code.ljust(2 * units, "0")
        units_of.append(units)
    blocks = [sum(units_of[i:i + 32]) for i in range(0, len(lines), 32)][:-1]  # all but the last
    lengths_at = 4 + 2 * len(blocks)
    bits += "0" * (-len(bits) % 8)
    data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    return struct.pack(f"<HH{len(blocks)}H", lengths_at, lengths_at + len(lines), *blocks) + bytes(lengths) + data


class BitWriter:
    """RNC's bit stream: bits least significant first in 16-bit LE words, literal bytes placed after the word in use."""

    def __init__(self):
        self.out, self.word, self.used = bytearray(), 0, 16

    def bits(self, value, k):
        for i in range(k):
            if self.used == 16:
                self.word, self.used = len(self.out), 0
                self.out += b"\0\0"
            if value >> i & 1:
                self.out[self.word + self.used // 8] |= 1 << self.used % 8
            self.used += 1

    def value(self, v):
        """A value through the fixed table (16 symbols of 4 bits; symbol i's code is i, sent bit-reversed)."""
        symbol = v if v < 2 else v.bit_length()
        self.bits(int(f"{symbol:04b}"[::-1], 2), 4)
        if symbol >= 2:
            self.bits(v - (1 << (symbol - 1)), symbol - 1)


def rnc(chunks):
    """An RNC method-1 stream of ``chunks``, each a list of (literal bytes, (distance, length) or None) pairs; and
    the bytes it unpacks to."""
    w, out = BitWriter(), bytearray()
    w.bits(0, 2)
    for pairs in chunks:
        for _ in range(3):  # run, distance and length tables: 16 symbols, all 4 bits long
            w.bits(16, 5)
            for _ in range(16):
                w.bits(4, 4)
        w.bits(len(pairs), 16)
        for literal, match in pairs:
            w.value(len(literal))
            w.out += literal
            out += literal
            if match:
                distance, length = match
                w.value(distance - 1)
                w.value(length - 2)
                for _ in range(length):
                    out.append(out[-distance])
    header = b"RNC\x01" + struct.pack(">II", len(out), len(w.out)) + bytes(5) + bytes([len(chunks)])
    return header + bytes(w.out), bytes(out)


def packed_clip(samples):
    """A speech resource: its header (flag 0x81: packed; size) and the samples RNC-packed in 2 chunks, the leading
    silence as an overlapping match."""
    assert samples[:40] == b"\x80" * 40
    half = len(samples) // 2
    stream, out = rnc([[(samples[:1], (1, 39)), (samples[40:half], None)], [(samples[half:], None)]])
    assert out == samples
    return struct.pack("<11H", 0x81, *[0x8080] * 5, (len(out) + 22) & 0xFFFF, *[0x8080] * 4) + stream


def write_disk(folder, resources):
    """sky.dnr and sky.dsk holding ``resources`` (number -> (bytes, directory flags)); offsets alternate units."""
    dsk, dnr = bytearray(), struct.pack("<I", len(resources))
    for i, (number, (data, flags)) in enumerate(sorted(resources.items())):
        dsk += bytes(-len(dsk) % 16)
        offset = len(dsk) >> 4 | 0x800000 if i % 2 else len(dsk)  # 16-byte units, or bytes
        dnr += struct.pack("<H", number) + offset.to_bytes(3, "little") + (len(data) | flags).to_bytes(3, "little")
        dsk += data
    (folder / "sky.dsk").write_bytes(bytes(dsk))
    (folder / "sky.dnr").write_bytes(dnr)


def write_cpt(path, objects):
    """A sky.cpt with one list of objects (index -> (name, type, words)), no aliases."""
    length = max(objects) + 1
    records, names, words = [], b"", 0
    for index in range(length):
        if index in objects:
            name, kind, data = objects[index]
            records += [len(data), kind, *data]
            names += name.encode() + b"\0"
            words += len(data)
        else:
            records.append(0)
    head = struct.pack("<HHHII", 0, 1, length, words, len(records))  # version, lists, list length, word counts
    body = struct.pack(f"<{len(records)}H", *records) + struct.pack("<I", len(names)) + names
    path.write_bytes(head + body + struct.pack("<H", 0))  # no aliases


def speak(target, text, animation, routine=35):
    """A speech call: push speaker (a constant, or script variable 120), text and animation; call ``routine``."""
    who = [2, target] if target is not None else [0, 480]
    return who + [2, text, 2, animation, 11, 3, routine * 4]


# --- the fake game ---------------------------------------------------------------------------------------------------

FOSTER, JOEY, BABS, BABS_TALK, TALK_TABLE = 3, 1, 5, 10, 0xBC
SKEWED = huffman([0] + list(range(32, 127)) + list(range(160, 190)))[0]  # other code lengths: does not fit
LINES = {  # text number -> line
    0x0000: "I had to INSPECT it.", 0x0001: "Well, hello YOURSELF.", 0x0002: "It's a 30 millimetre wrench...",
    0x0003: "`Travelco tours - one adult.'", 0x0004: "What's the PROBLEM?", 0x0005: "", 0x0006: "Yes?!",
}
SECTION_0 = [LINES.get(i, f"line {i} of a long section, long enough to need the long form of its length byte "
                          f"{i}") for i in range(40)]
SCRIPT = (speak(FOSTER, 0x0000, 9) + speak(None, 0x0001, 20, 37) + speak(None, 0x0002, 9, 36)
          + speak(JOEY, 0x0003, 0) + speak(FOSTER, 0x0003, 9) + [2, 0x0004, 2, 9, 11, 2, 70 * 4])
CLIPS = {50000: 0x0000, 50001: 0x0001, 50002: 0x0002, 50003: 0x0003, 50004: 0x0004, 50006: 0x0006, 50600: 0x1000}
SPEAKERS = {50000: "foster", 50001: "babs", 50002: "foster", 50003: "", 50004: "foster", 50006: "", 50600: ""}


def samples(number, n=400):
    rng = np.random.default_rng(number)
    return bytes([128] * 40) + rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def make_game(root, tree_first=b""):
    """A package root with the fake game and a ScummVM-like binary under it; returns the texts' codes."""
    folder = root / GAME_DIR
    folder.mkdir(parents=True)
    nodes, codes = huffman(ALPHABET)
    engine = root / ENGINE
    engine.parent.mkdir(parents=True)
    engine.write_bytes(b"\x7fELF junk \x01\x05\x00\x02" + tree_first + bytes(7) + tree_bytes(nodes) + b"more junk")
    resources = {}
    for section in range(8):
        lines = SECTION_0 if section == 0 else [f"Section {section} says hello."]
        resources[60600 + section] = (text_section(lines, codes), STORED)
    resources[60400] = (struct.pack(f"<{len(SCRIPT)}H", *SCRIPT), STORED)
    for number in [*CLIPS, 50005, 50601, 59500]:  # 50005: its line is empty; 50601: section 1 has 1 line; 59500:
        resources[number] = (packed_clip(samples(number)), 0)  # the intro's voice-over, not a dialogue clip
    resources[50006] = (bytes(22) + samples(50006), STORED)  # a clip stored as is
    write_disk(folder, resources)
    talk = [0] * 40
    talk[20] = BABS_TALK
    write_cpt(folder / "sky.cpt", {JOEY: ("joey", 1, [0] * 3), FOSTER: ("foster", 1, [0] * 3),
                                   BABS: ("sc36_babs", 1, [0] * 3), BABS_TALK: ("sc36_babs_talk", 4, [1, 2, 3]),
                                   TALK_TABLE: ("data_7", 4, talk)})
    return codes


# --- tests ------------------------------------------------------------------------------------------------------------

def test_rnc_round_trip_with_overlapping_matches_and_two_chunks():
    stream, out = rnc([[(b"abcdef", (3, 10)), (b"xy", (1, 7)), (b"", None)], [(b"tail", (4, 4)), (b"!", None)]])
    assert out == b"abcdefdefdefdefdxyyyyyyyy" + b"tailtail!"
    assert unpack_rnc(stream, "test") == out


def test_rnc_errors_name_the_stream():
    stream, _ = rnc([[(b"hello", (5, 20)), (b"", None)]])
    with pytest.raises(GameDataError, match="clip 7: not an RNC"):
        unpack_rnc(b"XYZ" + stream[3:], "clip 7")
    with pytest.raises(GameDataError, match="packed bytes announced"):
        unpack_rnc(stream[:-2], "clip 7")
    bad = stream[:4] + struct.pack(">I", 99) + stream[8:]  # header lies about the unpacked size
    with pytest.raises(GameDataError, match="clip 7"):
        unpack_rnc(bad, "clip 7")


def test_find_trees_by_shape():
    nodes, _ = huffman(ALPHABET)
    small, _ = huffman([0, 65, 66])  # too few leaves to be a text alphabet
    binary = b"\x01\x09\x00\x02 junk" + tree_bytes(small) + b"xx" + tree_bytes(nodes) + b"\x01\x02\x00"
    assert find_trees(binary) == [nodes]


def test_text_section_lines_and_clip_numbers():
    _, codes = huffman(ALPHABET)
    lines = section_lines(text_section(SECTION_0, codes), "section 0")
    assert len(lines) == 40 and lines[1][0] - lines[0][0] == lines[0][1]
    assert [text_number(n) for n in (0, 599, 600, 1100, 5230, 5300)] == [0, 599, 0x1000, 0x2000, 0x7000, 0x7046]
    with pytest.raises(GameDataError, match="section 0: tables"):
        section_lines(b"\x30\x00\x02\x00" + bytes(10), "section 0")


def test_read_pairs_clips_with_lines_and_speakers(tmp_path):
    make_game(tmp_path)
    report = ReadReport()
    clips = {c.clip_id: c for c in read(tmp_path, report)}
    assert sorted(clips) == [str(n) for n in sorted(CLIPS)]
    for number, text in CLIPS.items():
        clip = clips[str(number)]
        expected = LINES.get(text, "Section 1 says hello.")
        assert (clip.game, clip.text, clip.speaker, clip.sample_rate) == ("sky", expected, SPEAKERS[number],
                                                                           SAMPLE_RATE)
        raw = np.frombuffer(samples(number), dtype=np.uint8)  # the header is not sound
        assert clip.audio.dtype == np.float32 and np.array_equal(clip.audio, (raw.astype(np.float32) - 128) / 128)
    assert report.clips == len(CLIPS)
    assert report.unmatched == {"clip: its text line is empty": 1, "clip: no text line of that number": 1}


def test_read_chooses_the_tree_that_fits(tmp_path):
    nodes, _ = huffman(ALPHABET)
    # A copy whose leaf for "~" (in no line) repeats "e": fits as well, but a Huffman code has no repeated leaf.
    twin = tuple((0, 0, ord("e")) if node == (0, 0, ord("~")) else node for node in nodes)
    make_game(tmp_path, tree_first=tree_bytes(SKEWED) + tree_bytes(twin))
    trees = find_trees((tmp_path / ENGINE).read_bytes())
    assert trees == [SKEWED, twin, nodes]
    assert choose_tree(_Disk(tmp_path / GAME_DIR), trees, tmp_path / ENGINE) == nodes
    assert [c.text for c in read(tmp_path, ReadReport())][:2] == [LINES[0], LINES[1]]


def test_scummvm_binary_given_as_file_or_folder(tmp_path):
    make_game(tmp_path / "game")
    (tmp_path / "game" / ENGINE).rename(tmp_path / "scummvm")
    assert len(list(read(tmp_path / "game", ReadReport(), scummvm=tmp_path / "scummvm"))) == len(CLIPS)
    with pytest.raises(GameDataError, match="scummvm"):
        list(read(tmp_path / "game", ReadReport()))


def one_line_error(root, match):
    with pytest.raises(GameDataError, match=match) as error:
        list(read(root, ReadReport()))
    assert "\n" not in str(error.value)


def test_missing_and_truncated_files(tmp_path):
    make_game(tmp_path)
    folder = tmp_path / GAME_DIR
    dsk, dnr, cpt = ((folder / name).read_bytes() for name in ("sky.dsk", "sky.dnr", "sky.cpt"))
    (folder / "sky.dsk").write_bytes(dsk[:len(dsk) // 2])
    one_line_error(tmp_path, r"sky\.dsk: resource \d+ .* runs past the end")
    (folder / "sky.dsk").write_bytes(dsk)
    (folder / "sky.dnr").write_bytes(dnr[:-3])
    one_line_error(tmp_path, r"sky\.dnr: .* bytes")
    (folder / "sky.dnr").unlink()
    one_line_error(tmp_path, r"sky\.dnr: not found")
    (folder / "sky.dnr").write_bytes(dnr)
    (folder / "sky.cpt").write_bytes(cpt[:30])
    one_line_error(tmp_path, r"sky\.cpt: ")
    (folder / "sky.cpt").unlink()
    one_line_error(tmp_path, r"sky\.cpt: not found")


def test_no_tree_or_none_that_fits(tmp_path):
    make_game(tmp_path)
    engine = tmp_path / ENGINE
    engine.write_bytes(b"no tree in here")
    one_line_error(tmp_path, "no Huffman tree found")
    engine.write_bytes(tree_bytes(SKEWED))
    one_line_error(tmp_path, "none of its 1 Huffman trees decodes")


def test_corrupt_clip(tmp_path):
    make_game(tmp_path)
    folder = tmp_path / GAME_DIR
    dsk = bytearray((folder / "sky.dsk").read_bytes())
    at = dsk.index(b"RNC\x01")  # the first clip's stream: claim a larger unpacked size
    dsk[at + 4:at + 8] = struct.pack(">I", 100000)
    (folder / "sky.dsk").write_bytes(bytes(dsk))
    one_line_error(tmp_path, r"sky\.dsk: resource 50000: ")


def test_choose_tree_needs_every_english_section(tmp_path):
    make_game(tmp_path)
    disk = _Disk(tmp_path / GAME_DIR)
    del disk.entries[60603]
    with pytest.raises(GameDataError, match="no resource 60603"):
        choose_tree(disk, [huffman(ALPHABET)[0]], tmp_path / ENGINE)
