"""Beneath a Steel Sky (Debian ``beneath-a-steel-sky`` 0.0372, the freeware CD version): every voiced line with its
subtitle and, where the game's scripts say who speaks it, its speaker.

Written from the formats as ScummVM's sky engine reads them (read, not copied: ScummVM is GPL-2). Integers are
little-endian unless said otherwise. Files: ``usr/share/scummvm/beneath-a-steel-sky/sky.{dnr,dsk,cpt}``.

**Directory** ``sky.dnr``: a uint32 entry count, then 8 bytes an entry: uint16 resource number; a uint24 whose low 23
bits are the resource's offset in ``sky.dsk``, in 16-byte units when bit 23 is set, else in bytes; a uint24 whose low
22 bits are its stored size in bytes, bit 22 "the unpacked resource leaves out its header", bit 23 "stored as is".

**Resources** ``sky.dsk``: one that is not "stored as is" starts with a 22-byte header (11 uint16; bit 7 of the first
says "packed") followed, when packed, by an RNC method-1 stream. RNC (header big-endian): "RNC", 1, uint32 unpacked
size, uint32 packed size, uint16 CRC of each, a leeway byte, a chunk count byte; then a bit stream read least
significant bit first from 16-bit words, with the literal bytes stored in between: a run of them starts where the
next unread word would. After 2 unused bits, each chunk has three Huffman tables (a 5-bit symbol count, a 4-bit code
length per symbol; canonical codes by length then symbol, sent bit-reversed) for literal run lengths, match distances
and match lengths, then a 16-bit count of (literal run, match) pairs, the last without its match. A symbol s < 2 is
the value s, else 2^(s-1) plus s-1 more bits. A match copies (length + 2) bytes from (distance + 1) bytes back. The
CRCs are not checked (pure Python would take minutes over 60 MB); the unpacked size is.

**Speech**: resources 50000 + n, n < 9326: 8-bit unsigned mono PCM at 11,025 Hz after the 22-byte header (whose
bytes are not sound: the unpacked stream is exactly the samples). Clip n speaks text number ``(s << 12) | (n -
FIRST_CLIP[s])``, s the last text section with ``FIRST_CLIP[s] <= n``. (The CD intro's voice-over, resources 59494
on, has no subtitles in the game's data and is not read.)

**Text**: resources 60600 + 8 * language + section, 8 sections a language (language 0: British English, the cast's).
Text number ``(s << 12) | i`` is line i of section s. A section: uint16 offset of its length table, uint16 offset of
its bit data, a uint16 per block of 32 lines but the last (the block's size in 2-bit units), then a length byte per
line (bit 7 set: (byte & 0x7F) * 8 units, else the byte), then the lines: each starts on a 2-bit boundary and is a
run of Huffman codes read most significant bit first, ended by the code for NUL. Characters are the game font's
codes: ASCII below 0x80, a few font-specific signs above (decoded as Latin-1 to keep the text as stored; no English
voiced line has one).

**Huffman tree**: not in the game's files (the original DOS executable held it; the package ships without it).
ScummVM keeps each game version's tree in its code, as an array of 3-byte nodes (left child, right child, value) in
preorder: node 0 the root, an inner node's left child right after it, a leaf (0, 0, character). :func:`find_trees`
finds every such array in Debian's compiled ``scummvm`` (package ``scummvm``, ``usr/games/scummvm``) by that shape;
:func:`choose_tree` keeps the one that decodes every line of every text section to the length the section records
for it (neighbouring versions share most of the shape, so every language is checked). Two versions' trees differ in
one leaf that no voiced line uses; the tie goes to the tree whose leaves are all distinct, as a Huffman code's are.
The tree is read at run time: nothing of ScummVM's is stored in this project.

**Speakers**: ``sky.cpt`` (the game's objects, as ScummVM ships them with the game): uint16 version (0), uint16 list
count L, L uint16 list lengths, uint32 word count of the objects, uint32 word count W of their records, W uint16
records (per object of each list: a size in words, and when not 0 a type and that many words), uint32 byte count and
the objects' NUL-ended names in order, then uint16 count of aliases, (alias number, object number) pairs whose names
follow the objects'. Object number = (list << 12) | index; object 0xBC is the talk table (talk animation object by
animation number, 0: none). Script modules (resources 60400 + m) are uint16 bytecode; a speech call pushes three
values (opcode 2 + a constant, or another opcode + operand) and calls routine 35-38 (opcode 11, argument count 3,
routine * 4): speaker object, text number, talk animation. A dialogue choice (the player's line) calls routine 70
with text number and talk animation. The speaker is the object's name, its room prefix ``scNN_`` dropped, when the
call pushes a constant one; else the talk animation's owner: the one object that every constant-speaker call using
that animation names, or else the character (type-1 object) its talk animation object is named after
(``lamb_normal``: lamb; a room's animation, ``sc81_...``, only a character of that room). Animation 0 (none) names
nobody. A line whose calls do not all give one name gets "".
"""

from __future__ import annotations

import array
import re
import struct
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.corpora.games import Clip, GameDataError, ReadReport

SAMPLE_RATE = 11025  # Hz
GAME_DIR = "usr/share/scummvm/beneath-a-steel-sky"
ENGINE = "usr/games/scummvm"  # in Debian's scummvm package: holds the text's Huffman tree
PACKAGE = "Debian package beneath-a-steel-sky"
HEADER = 22  # bytes of a resource's header
SPEECH = 50000  # resource number of clip 0
FIRST_CLIP = (0, 600, 1100, 2430, 3380, 4530, 5080, 5230)  # clip number of each text section's line 0
CLIPS = FIRST_CLIP[-1] + 4096  # clip numbers below this map to a text number (12 bits of line)
TEXT = 60600  # resource number of language 0's section 0
SECTIONS = 8  # text sections a language
LANGUAGES = 8
MODULE = 60400  # resource number of script module 0
MODULES = 16
SPEAK = {35 * 4, 36 * 4, 37 * 4, 38 * 4}  # speak-me, speak-me-dir, speak-wait, speak-wait-dir (routine * 4)
ASK = 70 * 4  # a dialogue choice: text number and talk animation
TALK_TABLE = 0xBC  # sky.cpt object: talk animation object by animation number
MIN_LEAVES = 32  # a text alphabet's tree has letters; smaller tree-shaped byte runs are chance


class _Disk:
    """The resources of ``sky.dsk``, found through ``sky.dnr`` (module doc)."""

    def __init__(self, folder: Path):
        self.dnr, self.dsk = folder / "sky.dnr", folder / "sky.dsk"
        for path in (self.dnr, self.dsk):
            if not path.is_file():
                raise GameDataError(f"{path}: not found ({PACKAGE})")
        table = self.dnr.read_bytes()
        count = struct.unpack_from("<I", table)[0] if len(table) >= 4 else -1
        if len(table) != 4 + 8 * count:
            raise GameDataError(f"{self.dnr}: {len(table)} bytes, not a 4-byte count and that many 8-byte entries")
        self.entries = {}
        for i in range(count):
            number, offset, flags = struct.unpack_from("<H3s3s", table, 4 + 8 * i)
            offset, flags = int.from_bytes(offset, "little"), int.from_bytes(flags, "little")
            start = (offset & 0x7FFFFF) << (4 if offset & 0x800000 else 0)
            self.entries[number] = (start, flags & 0x3FFFFF, flags)
        self.data = self.dsk.read_bytes()

    def raw(self, number: int) -> tuple[bytes, int]:
        """Resource ``number`` as stored, and its directory flags."""
        if number not in self.entries:
            raise GameDataError(f"{self.dnr}: no resource {number}")
        start, size, flags = self.entries[number]
        if start + size > len(self.data):
            raise GameDataError(f"{self.dsk}: resource {number} (bytes {start}-{start + size}) runs past the end "
                                f"({len(self.data)} bytes)")
        return self.data[start:start + size], flags

    def resource(self, number: int) -> bytes:
        """Resource ``number`` unpacked, with its header unless the directory leaves it out (module doc)."""
        raw, flags = self.raw(number)
        if not _packed(raw, flags):
            return raw
        body = unpack_rnc(raw[HEADER:], f"{self.dsk}: resource {number}")
        return body if flags & 0x400000 else raw[:HEADER] + body

    def samples(self, number: int) -> bytes:
        """The 8-bit samples of speech resource ``number``: the resource without its header."""
        raw, flags = self.raw(number)
        return unpack_rnc(raw[HEADER:], f"{self.dsk}: resource {number}") if _packed(raw, flags) else raw[HEADER:]


def _packed(raw: bytes, flags: int) -> bool:
    # The engine, too, takes a resource flagged packed but without RNC data as stored.
    stored = flags & 0x800000 or len(raw) < HEADER + 4 or not raw[0] & 0x80
    return not stored and raw[HEADER:HEADER + 4] == b"RNC\x01"


# --- RNC method 1 ---------------------------------------------------------------------------------------------------

class _Bits:
    """The RNC bit stream: ``buf`` holds ``nbuf`` unread bits (next lowest), ``pos`` the next unloaded byte."""

    def __init__(self, src: bytes):
        self.src, self.buf, self.nbuf, self.pos = src, 0, 0, 18

    def take(self, k: int) -> int:
        if self.nbuf < k:
            self.buf |= int.from_bytes(self.src[self.pos:self.pos + 4], "little") << self.nbuf
            self.pos, self.nbuf = self.pos + 4, self.nbuf + 32
        value = self.buf & ((1 << k) - 1)
        self.buf >>= k
        self.nbuf -= k
        return value

    def table(self, previous: tuple[list, int]) -> tuple[list, int]:
        """A Huffman table as (lookup by the next ``width`` bits -> (code length, symbol), width)."""
        count = self.take(5)
        if not count:
            return previous  # an empty table keeps the last chunk's, as the game's unpacker does
        lengths = [self.take(4) for _ in range(count)]
        width = max(lengths)
        lookup: list = [None] * (1 << width)
        code = 0  # canonical code, left-aligned in 16 bits
        for length in range(1, 17):
            for symbol, n in enumerate(lengths):
                if n == length:
                    sent = int(format(code >> (16 - length), f"0{length}b")[::-1], 2)  # sent bit-reversed
                    for high in range(0, 1 << width, 1 << length):
                        lookup[sent | high] = (length, symbol)
                    code += 1 << (16 - length)
        return lookup, width


def unpack_rnc(data: bytes, what: str) -> bytes:
    """The unpacked bytes of an RNC method-1 stream (module doc); ``what`` names it in errors."""
    if len(data) < 18 or data[:4] != b"RNC\x01":
        raise GameDataError(f"{what}: not an RNC method-1 stream")
    size, packed = struct.unpack_from(">II", data, 4)
    if 18 + packed > len(data):
        raise GameDataError(f"{what}: {packed} packed bytes announced, {len(data) - 18} there")
    # The unpacker loads whole words: the last may lie past the data (its unused bits are then zeros).
    bits, out, end = _Bits(data[:18 + packed] + bytes(8)), bytearray(), 18 + packed
    bits.take(2)
    tables: list = [([], 0)] * 3
    try:
        for _ in range(data[17]):
            tables = [bits.table(t) for t in tables]
            _rnc_pairs(bits, tables, bits.take(16), out, end, size)
    except (IndexError, TypeError, ValueError):  # a code not in a table, a copy from before the start
        raise GameDataError(f"{what}: packed data does not decode") from None
    if len(out) != size:
        raise GameDataError(f"{what}: unpacks to {len(out)} bytes, its header says {size}")
    return bytes(out)


def _rnc_pairs(bits: _Bits, tables: list, pairs: int, out: bytearray, end: int, size: int) -> None:
    """Append one chunk's ``pairs`` (literal run, match) pairs to ``out``: the hot loop, unrolled in locals."""
    src, buf, nbuf, pos, load = bits.src, bits.buf, bits.nbuf, bits.pos, int.from_bytes
    (runs, run_w), (dists, dist_w), (lens, len_w) = tables
    run_m, dist_m, len_m = (1 << run_w) - 1, (1 << dist_w) - 1, (1 << len_w) - 1
    for left in range(pairs, 0, -1):
        if nbuf < 32:  # a code (<= 16 bits) and its extra bits (<= 15) then fit
            buf, pos, nbuf = buf | load(src[pos:pos + 4], "little") << nbuf, pos + 4, nbuf + 32
        n, run = runs[buf & run_m]
        buf, nbuf = buf >> n, nbuf - n
        if run >= 2:
            run -= 1
            buf, nbuf, run = buf >> run, nbuf - run, (buf & ((1 << run) - 1)) | 1 << run
        if run:
            # The literals start where the next unread word would: give back the whole words loaded ahead.
            pos, nbuf = pos - 2 * (nbuf >> 4), nbuf & 15
            buf &= (1 << nbuf) - 1
            if pos + run > end:
                raise ValueError
            out += src[pos:pos + run]
            pos += run
        if left == 1:
            break  # the chunk's last pair has no match
        # The distance and the length are read by the same steps, written out twice on purpose: this is the hot
        # loop of unpacking 2 h of audio, and a function call per value costs more than the copy.
        if nbuf < 32:
            buf, pos, nbuf = buf | load(src[pos:pos + 4], "little") << nbuf, pos + 4, nbuf + 32
        n, dist = dists[buf & dist_m]
        buf, nbuf = buf >> n, nbuf - n
        if dist >= 2:
            dist -= 1
            buf, nbuf, dist = buf >> dist, nbuf - dist, (buf & ((1 << dist) - 1)) | 1 << dist
        if nbuf < 32:
            buf, pos, nbuf = buf | load(src[pos:pos + 4], "little") << nbuf, pos + 4, nbuf + 32
        n, length = lens[buf & len_m]
        buf, nbuf = buf >> n, nbuf - n
        if length >= 2:
            length -= 1
            buf, nbuf, length = buf >> length, nbuf - length, (buf & ((1 << length) - 1)) | 1 << length
        start, length = len(out) - dist - 1, length + 2
        if start < 0 or len(out) + length > size:
            raise ValueError
        chunk = out[start:start + length]  # shorter than length when the copy overlaps itself: repeat it
        out += chunk if len(chunk) == length else (chunk * (length // len(chunk) + 1))[:length]
    bits.buf, bits.nbuf, bits.pos = buf, nbuf, pos


# --- text -----------------------------------------------------------------------------------------------------------

Tree = tuple[tuple[int, int, int], ...]  # (left child, right child, value) per node, preorder

_ROOT = re.compile(rb"\x01[\x02-\xff]\x00(?=\x02|\x00\x00)", re.DOTALL)  # node 0 inner, node 1 inner or a leaf


def find_trees(binary: bytes) -> list[Tree]:
    """Every text Huffman tree in a program's bytes: arrays of 3-byte preorder nodes (module doc)."""
    trees = []
    for match in _ROOT.finditer(binary):
        nodes = _tree_size(binary, match.start())
        if nodes:
            start = match.start()
            trees.append(tuple(tuple(binary[start + 3 * i:start + 3 * i + 3]) for i in range(nodes)))
    return trees


def _tree_size(binary: bytes, start: int) -> int:
    """How many nodes the preorder tree at ``start`` has, or 0 when the bytes there are not one."""
    pending, node, leaves = [], 0, set()  # pending: right children still to visit, in order
    while True:
        at = start + 3 * node
        if node > 255 or at + 3 > len(binary):
            return 0
        left, right, value = binary[at:at + 3]
        if left == right == 0:
            leaves.add(value)
            if not pending:
                return node + 1 if len(leaves) >= MIN_LEAVES and 0 in leaves else 0
            if pending[-1] != node + 1:
                return 0  # a right child must follow its sibling's subtree
            node = pending.pop()
        elif left == node + 1 and right > left and value == 0:
            pending.append(right)
            node = left
        else:
            return 0


def section_lines(data: bytes, what: str) -> list[tuple[int, int]]:
    """(first bit, bits given) of each line of a text section (module doc)."""
    if len(data) < 6:
        raise GameDataError(f"{what}: {len(data)} bytes, too short for a text section")
    lengths_at, bits_at = struct.unpack_from("<HH", data)
    blocks = (lengths_at - 4) // 2  # sizes of all blocks but the last
    if not 4 <= lengths_at <= bits_at <= len(data) or not blocks * 32 < bits_at - lengths_at <= blocks * 32 + 32:
        raise GameDataError(f"{what}: tables at bytes {lengths_at} and {bits_at} do not fit {len(data)} bytes")
    sizes = struct.unpack_from(f"<{blocks}H", data, 4)
    lines, unit = [], 0
    for i, byte in enumerate(data[lengths_at:bits_at]):
        if i % 32 == 0:
            unit = sum(sizes[:i // 32])
        units = (byte & 0x7F) << 3 if byte & 0x80 else byte
        lines.append((bits_at * 8 + 2 * unit, 2 * units))
        unit += units
    return lines


def decode_line(bits: str, start: int, tree: Tree) -> tuple[bytes, int]:
    """The characters of the line whose codes start at ``bits[start]`` ("0"/"1" string), and the bits they took."""
    out, node, i = bytearray(), 0, start
    while True:
        node = tree[node][1] if bits[i] == "1" else tree[node][0]  # IndexError: ran off the data
        i += 1
        left, right, value = tree[node]
        if left == right == 0:
            if value == 0:
                return bytes(out), i - start
            out.append(value)
            node = 0


def _as_bits(data: bytes) -> str:
    return format(int.from_bytes(data, "big"), f"0{8 * len(data)}b")


def _fits(data: bytes, lines: list[tuple[int, int]], tree: Tree) -> bool:
    """Whether ``tree`` decodes every line to the length it is given (less than 16 bits of padding)."""
    bits = _as_bits(data)
    for start, given in lines:
        try:
            used = decode_line(bits, start, tree)[1]
        except IndexError:
            return False
        if not given - 16 < used <= given:
            return False
    return True


def choose_tree(disk: _Disk, trees: list[Tree], where: Path) -> Tree:
    """The tree (from ``where``) that fits every text section of every language in ``disk`` (module doc)."""
    left = list(trees)
    for number in range(TEXT, TEXT + SECTIONS * LANGUAGES):
        if number not in disk.entries:
            if number < TEXT + SECTIONS:
                raise GameDataError(f"{disk.dnr}: no resource {number} (English text section {number - TEXT})")
            continue
        data = disk.resource(number)
        lines = section_lines(data, f"{disk.dsk}: resource {number}")
        left = [tree for tree in left if _fits(data, lines, tree)]
        if not left:
            raise GameDataError(f"{where}: none of its {len(trees)} Huffman trees decodes {disk.dsk}'s text")
    distinct = [tree for tree in left if len({v for a, b, v in tree if a == b == 0}) == (len(tree) + 1) // 2]
    return (distinct or left)[0]


def read_lines(disk: _Disk, tree: Tree, language: int = 0) -> dict[int, str]:
    """Every line of one language's text (0: British English), by text number."""
    lines = {}
    for section in range(SECTIONS):
        number = TEXT + SECTIONS * language + section
        data = disk.resource(number)
        bits = _as_bits(data)
        for i, (start, _) in enumerate(section_lines(data, f"{disk.dsk}: resource {number}")):
            try:
                text = decode_line(bits, start, tree)[0]
            except IndexError:
                raise GameDataError(f"{disk.dsk}: resource {number}: line {i} runs past the end") from None
            lines[section << 12 | i] = text.decode("latin-1")
    return lines


# --- speakers -------------------------------------------------------------------------------------------------------

@dataclass
class Objects:
    """What ``sky.cpt`` says of the game's objects (module doc)."""

    names: dict[int, str]  # object number -> name
    characters: set[str]  # names of the objects of type 1 (people, robots, things to click on)
    talk: tuple[int, ...]  # the talk table: object number of the talk animation, by animation number (0: none)


_ROOM = re.compile(r"^sc\d+_")  # "sc36_babs": Babs, in room 36


def read_cpt(path: Path) -> Objects:
    """The objects of ``sky.cpt`` (module doc)."""
    if not path.is_file():
        raise GameDataError(f"{path}: not found ({PACKAGE})")
    data = path.read_bytes()
    try:
        version, lists = struct.unpack_from("<HH", data)
        lengths = struct.unpack_from(f"<{lists}H", data, 4)
        at = 4 + 2 * lists + 4  # past the lengths and the objects' word count
        words = struct.unpack_from("<I", data, at)[0]
        records = array.array("H", data[at + 4:at + 4 + 2 * words])
        at += 4 + 2 * words
        size = struct.unpack_from("<I", data, at)[0]
        names = [n.decode("latin-1") for n in data[at + 4:at + 4 + size].split(b"\0")]
        aliases = struct.unpack_from(f"<{2 * struct.unpack_from('<H', data, at + 4 + size)[0]}H", data, at + 6 + size)
    except struct.error:
        raise GameDataError(f"{path}: ends inside its tables") from None
    if version != 0 or len(records) != words:
        raise GameDataError(f"{path}: not a version-0 sky.cpt ({len(records)} of {words} record words)")
    found, kinds, talk, r, n = {}, {}, (), 0, 0  # r: next record word, n: next name
    for number in (i << 12 | e for i in range(lists) for e in range(lengths[i])):
        size = records[r] if r < len(records) else 0
        if size:
            found[number], kinds[number], n = names[n] if n < len(names) else "", records[r + 1], n + 1
            talk = tuple(records[r + 2:r + 2 + size]) if number == TALK_TABLE else talk
        r += 2 + size if size else 1
    for alias in aliases[::2]:
        found[alias], n = names[n] if n < len(names) else "", n + 1
    return Objects(found, {found[k] for k, kind in kinds.items() if kind == 1}, talk)


def _calls(words: array.array) -> Iterator[tuple[int | None, int, int | None]]:
    """(speaker or None, text number, talk animation or None) of each speech or choice call with a constant text."""
    def const(i: int) -> int | None:  # the operand of a push_number (opcode 2), else unknown
        return words[i + 1] if words[i] == 2 else None

    for i in range(6, len(words) - 2):
        if words[i] != 11:
            continue
        if words[i + 1] == 3 and words[i + 2] in SPEAK and words[i - 4] == 2:
            yield const(i - 6), words[i - 3], const(i - 2)
        elif words[i + 1] == 2 and words[i + 2] == ASK and words[i - 4] == 2:
            yield None, words[i - 3], const(i - 2)


def _animation_owners(calls: list, objects: Objects) -> dict[int, str]:
    """The object name each talk animation belongs to (module doc)."""
    users: dict[int, set] = {}
    for who, _, animation in calls:
        if who in objects.names and animation:
            users.setdefault(animation, set()).add(objects.names[who])
    owners = {animation: next(iter(names)) for animation, names in users.items() if len(names) == 1}
    for animation, number in enumerate(objects.talk):
        if animation in owners or not animation or not number:
            continue
        talk = objects.names.get(number, "")
        # Named after a character: "lamb_normal" is lamb's, "barman_talk" sc36_barman's. One named for a room
        # is only that room's character's: "sc81_dad_tlk" is not the lobby's dad's.
        named = [c for c in objects.characters if c and (re.match(re.escape(c) + r"(_|\d|$)", talk) or (
            not _ROOM.match(talk) and re.match(re.escape(_ROOM.sub("", c)) + r"(_|\d|$)", talk)))]
        if named:
            owners[animation] = min(named, key=lambda c: len(_ROOM.sub("", c)))
    return owners


def speakers(disk: _Disk, objects: Objects) -> dict[int, str]:
    """Who speaks each text number, where the scripts say (module doc); lines they leave open are not listed."""
    calls = []
    for module in range(MODULE, MODULE + MODULES):
        if module in disk.entries:
            data = disk.resource(module)
            calls += _calls(array.array("H", data[:len(data) // 2 * 2]))
    owners = _animation_owners(calls, objects)
    said: dict[int, set] = {}
    for who, text, animation in calls:
        name = objects.names.get(who) if who is not None else owners.get(animation)
        said.setdefault(text, set()).add(name)
    # The room prefix is not part of a name: sc36_gallagher (at the club) is gallagher (later, his body).
    return {text: _ROOM.sub("", next(iter(who))) for text, who in said.items() if len(who) == 1 and None not in who}


# --- clips ----------------------------------------------------------------------------------------------------------

def text_number(clip: int) -> int:
    """The text number clip ``clip`` (0-based, resource SPEECH + clip) speaks (module doc)."""
    section = bisect_right(FIRST_CLIP, clip) - 1
    return section << 12 | (clip - FIRST_CLIP[section])


def _engine(package_root: Path, scummvm: Path | None) -> Path:
    path = Path(scummvm) if scummvm is not None else Path(package_root) / ENGINE
    path = path / ENGINE if path.is_dir() else path
    if not path.is_file():
        raise GameDataError(f"{path}: not found (Debian package scummvm: it holds the text's Huffman tree)")
    return path


def read(package_root: Path, report: ReadReport, scummvm: Path | None = None) -> Iterator[Clip]:
    """Every speech clip paired with its English line and speaker (module doc); unpaired ones counted.

    ``scummvm``: Debian's ``scummvm`` binary, or the folder its package was extracted into (default: under
    ``package_root``, for both packages extracted into one folder).
    """
    folder = Path(package_root) / GAME_DIR
    disk = _Disk(folder)
    engine = _engine(package_root, scummvm)
    trees = find_trees(engine.read_bytes())
    if not trees:
        raise GameDataError(f"{engine}: no Huffman tree found in it (not ScummVM with its sky engine?)")
    lines = read_lines(disk, choose_tree(disk, trees, engine))
    who = speakers(disk, read_cpt(folder / "sky.cpt"))
    clips = sorted(n for n in disk.entries if SPEECH <= n < SPEECH + CLIPS)
    if not clips:
        raise GameDataError(f"{disk.dnr}: no speech resources ({SPEECH} on)")
    for number in clips:
        text = text_number(number - SPEECH)
        if text not in lines:
            report.skip("clip: no text line of that number")
            continue
        if not lines[text].strip():
            report.skip("clip: its text line is empty")
            continue
        raw = disk.samples(number)
        if not raw:
            report.skip("clip: no samples")
            continue
        audio = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
        yield report.add(Clip("sky", str(number), who.get(text, ""), lines[text], audio, SAMPLE_RATE))
