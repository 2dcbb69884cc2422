"""Drascula: The Vampire Strikes Back (Debian ``drascula``, English): every voiced line with its subtitle.

Written from the formats as ScummVM's drascula engine and its ``create_drascula`` tool use them (read, not
copied: ScummVM is GPL-2). Integers are big-endian; offsets and sizes are in bytes.

**Speech** ``usr/share/scummvm/drascula/en/<PREFIX><N>.ALS``: one clip per spoken line, unsigned 8-bit mono PCM
at 11,025 Hz (0x80 is silence), samples from the first byte to the last: no header. Two files differ:
``190.ALS`` starts with a 40-byte WAVE header that lacks its ``"RIFF"`` tag (8-bit mono PCM at 11,025 Hz, then
a ``data`` chunk, whose samples are taken), and ``3.ALS`` (145,166 bytes) is 6.7 s of digital silence, the line,
then 2.5 s more: the engine plays only bytes 73,959 to 117,158 of it, and so does this reader. (ScummVM also
skips 32 bytes at each end of every clip; here those are ordinary samples, 3 ms, and are kept.)

The prefix picks the text table and so the speaker, ``N`` the line in that table:

=========  ==========  =====================================================================
prefix     table       speaker
=========  ==========  =====================================================================
(none)     ``text``    John Hacker, the hero
D          ``textd``   Drascula; but D56-D67 John Hacker and D68-D78 the blind man (their
                       scene), D82 the bartender, D83 the trunk (engine: talk_hacker,
                       talk_blind, talk_bartender's special case, talk_trunk)
I          ``texti``   Igor
T          ``textt``   the bartender
BJ         ``textbj``  B.J.
P          ``textp``   the pianist
B          ``textb``   the drunkard
VB         ``textvb``  Von Braun
L          ``textl``   the werewolf
E          ``texte``   Desiderio, the talking skeleton (the drunkard's late uncle)
=========  ==========  =====================================================================

Clips with another prefix (S, F: sound effects) and clips whose line is empty or missing in its table are counted
as unmatched, by reason.

**Text** ``usr/share/scummvm/drascula.dat`` (Debian ``scummvm-data``): ``"DRASCULA"``, a version byte (6), then
13 blocks of fixed-size records, each a uint16 count and that many records: font map (4 bytes a record), item
positions (4), polygon x/y (4), verb bar x (2), menu x/y (4), frame x (2), candle x/y (4), pianist x (2), drunk
x (2), room pre-updates (20), room updates (20), room actions (10), talk sequences (8). Then a uint16 language
count (English first) and 15 text tables in the order of :data:`TABLES`: a uint16 string count, then per
language a uint16 block size and the block: 2 zero bytes, then each string as a uint16 size (its own 2 bytes
included, a multiple of 4), the characters, a NUL, and 1-4 NULs of padding. Nothing follows the last table.

Characters are DOS code page 850 (the Russian table alone uses cp1251; it is not read): the English text is
upper-case ASCII but for one ``0x90`` (``É``, "TOUPEÉ" in line 429). ``0xA7`` (``º``) is the original data's
word separator, which the engine draws as a space, so it is read as a space; nothing else is changed.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Iterator

import numpy as np

from asr.corpora.games import Clip, GameDataError, ReadReport

SAMPLE_RATE = 11025  # Hz
SPEECH_DIR = "usr/share/scummvm/drascula/en"
VERSION = 6
RECORD_SIZES = (4, 4, 4, 2, 4, 2, 4, 2, 2, 20, 20, 10, 8)  # bytes a record, blocks before the text, in file order
TABLES = ("text", "textd", "textb", "textbj", "texte", "texti", "textl", "textp", "textt", "textvb", "textsys",
          "texthis", "textverbs", "textmisc", "textd1")
HERO = "John Hacker"
PREFIXES = {"": ("text", HERO), "D": ("textd", "Drascula"), "I": ("texti", "Igor"), "T": ("textt", "bartender"),
            "BJ": ("textbj", "B.J."), "P": ("textp", "pianist"), "B": ("textb", "drunkard"),
            "VB": ("textvb", "Von Braun"), "L": ("textl", "werewolf"), "E": ("texte", "Desiderio")}
# textd is not all Drascula's: the engine plays these of its lines (first, last) with other characters' talk code.
D_SPEAKERS = ((56, 67, HERO), (68, 78, "blind man"), (82, 82, "bartender"), (83, 83, "trunk"))
# Clips the engine plays only part of: stem -> (file size it applies to, first byte, end byte).
CROPS = {"3": (145166, 73959, 117158)}
_NAME = re.compile(r"([A-Z]*)(\d+)")


class _Cursor:
    """Big-endian reads from ``data``; running out raises an error naming ``path`` and what was being read."""

    def __init__(self, data: bytes, path: Path, where: str = ""):
        self.data, self.path, self.where, self.pos = data, path, where, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise GameDataError(f"{self.path}: {self.where}ends at byte {len(self.data)}, inside {what} "
                                f"(byte {self.pos}, {n} bytes wanted)")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def u16(self, what: str) -> int:
        return struct.unpack(">H", self.take(2, what))[0]


def read_tables(path: Path) -> dict[str, list[str]]:
    """Every English text table of ``drascula.dat`` (module doc), by name, as lists of strings."""
    if not path.is_file():
        raise GameDataError(f"{path}: not found (Debian package scummvm-data)")
    data = path.read_bytes()
    cur = _Cursor(data, path)
    if cur.take(8, "the header") != b"DRASCULA":
        raise GameDataError(f"{path}: not a drascula.dat (does not start with DRASCULA)")
    version = cur.take(1, "the header")[0]
    if version != VERSION:
        raise GameDataError(f"{path}: drascula.dat version {version}, this reader knows version {VERSION}")
    for number, size in enumerate(RECORD_SIZES, start=1):
        cur.take(cur.u16(f"record block {number}") * size, f"record block {number}")
    languages = cur.u16("the language count")
    if languages == 0:
        raise GameDataError(f"{path}: no languages in its text tables")
    tables = {}
    for name in TABLES:
        count = cur.u16(f"table {name}")
        blocks = [cur.take(cur.u16(f"table {name}"), f"table {name}") for _ in range(languages)]
        tables[name] = _strings(blocks[0], count, path, name)  # English is the first language
    if cur.pos != len(data):
        raise GameDataError(f"{path}: {len(data) - cur.pos} unknown bytes after the last text table")
    return tables


def _strings(block: bytes, count: int, path: Path, table: str) -> list[str]:
    """The ``count`` strings of one language's block of ``table`` (module doc), decoded."""
    cur, out = _Cursor(block, path, f"table {table}: its block "), []
    cur.take(2, "the padding")
    for i in range(count):
        size = cur.u16(f"string {i}")
        raw = cur.take(size - 2, f"string {i}") if size > 2 else b""
        if b"\0" not in raw:
            raise GameDataError(f"{path}: table {table}: string {i} (size {size}, ending at byte {cur.pos} of "
                                "its block) is not NUL-terminated")
        out.append(decode(raw[:raw.index(b"\0")]))
    if cur.pos != len(block):
        raise GameDataError(f"{path}: table {table}: its {count} strings end at byte {cur.pos} "
                            f"of a {len(block)}-byte block")
    return out


def decode(raw: bytes) -> str:
    """One dat string as text: code page 850, with 0xA7 read as the space the engine draws for it."""
    return raw.decode("cp850").replace("\u00ba", " ")


def read_clip(path: Path) -> np.ndarray:
    """The samples of one ``.ALS`` clip (module doc) as float32 in [-1, 1)."""
    data = path.read_bytes()
    if b"WAVEfmt " in (data[4:12], data[8:16]):  # 190.ALS: a WAVE file missing its first 4 bytes
        data = _wave_samples(data, path)
    size, start, end = CROPS.get(path.stem.upper(), (-1, 0, len(data)))
    if len(data) == size:
        data = data[start:end]
    if not data:
        raise GameDataError(f"{path}: no samples (empty clip)")
    return (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0


def _wave_samples(data: bytes, path: Path) -> bytes:
    """The ``data`` chunk of a WAVE clip, which must hold the same 8-bit mono 11,025 Hz PCM as the raw ones."""
    pos, fmt = data.index(b"WAVEfmt ") + 4, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if tag == b"fmt " and len(body) >= 16:
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif tag == b"data":
            if fmt is None or (fmt[0], fmt[1], fmt[2], fmt[5]) != (1, 1, SAMPLE_RATE, 8):
                raise GameDataError(f"{path}: WAVE header is not 8-bit mono PCM at {SAMPLE_RATE} Hz ({fmt})")
            return body
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
    raise GameDataError(f"{path}: WAVE header without a data chunk")


def pair(stem: str, tables: dict[str, list[str]]) -> tuple[str, str] | str:
    """``(speaker, line)`` for the clip named ``stem`` (module doc), or the reason it has none."""
    match = _NAME.fullmatch(stem.upper())
    if not match or match.group(1) not in PREFIXES:
        return "clip prefix without a text table (S, F: sound effects)"
    prefix, number = match.group(1), int(match.group(2))
    table, speaker = PREFIXES[prefix]
    if number >= len(tables[table]):
        return "clip number past the end of its text table"
    if not tables[table][number].strip():
        return "clip whose line is empty in its text table"
    if prefix == "D":
        speaker = next((name for first, last, name in D_SPEAKERS if first <= number <= last), speaker)
    return speaker, tables[table][number]


def read(package_root: Path, engine_data: Path, report: ReadReport) -> Iterator[Clip]:
    """Every English clip paired with its line and speaker (module doc); the rest counted in ``report``."""
    folder = Path(package_root) / SPEECH_DIR
    if not folder.is_dir():
        raise GameDataError(f"{folder}: not found (Debian package drascula)")
    clips = sorted(p for p in folder.iterdir() if p.suffix.upper() == ".ALS")
    if not clips:
        raise GameDataError(f"{folder}: no .ALS speech clips")
    tables = read_tables(Path(engine_data))
    for path in clips:
        found = pair(path.stem, tables)
        if isinstance(found, str):
            report.skip(found)
            continue
        speaker, text = found
        yield report.add(Clip("drascula", path.stem, speaker, text, read_clip(path), SAMPLE_RATE))
