"""Flight of the Amazon Queen (Debian ``flight-of-the-amazon-queen``, the freeware CD version): voiced lines.

Written from the format as ScummVM's ``queen`` engine reads it (read, not copied: ScummVM is GPL-2). All numbers
are big-endian; offsets and sizes are in bytes.

**The archive** ``queen.1c`` (``queen.1`` for the retail release) holds every game file. The Debian one is a
"rebuilt" archive with its own table of contents: ``"QTBL"``, a 6-byte version string (``"CEM10\\0"``: CD,
English), 2 unused bytes, 1 byte compression (1 = MP3 speech), then uint16 ``n`` and ``n`` entries of 21 bytes:
name (12, NUL-padded, e.g. ``"C100A052.SB"``), bundle (1), offset (uint32), size (uint32). A retail ``queen.1``
has no table: ScummVM's ``queen.tbl`` (``"QTBL"``, uint32 table version, then one such uint16 + entries block per
known release) holds it, and the block whose entries end exactly at the archive's size is this release's.

**Speech** ``*.SB``: one clip per spoken segment. In the rebuilt archive a clip is a bare MPEG-2.5 layer III
stream (16 kbit/s, mono, labelled 11,025 Hz); in a retail one it is an SB file: 2 bytes, uint16 *little-endian*
header version (104: 110-byte header, 110: 122-byte header), then unsigned 8-bit PCM. The game plays all PC
speech at 11,840 Hz; the MP3s say 11,025 only because the tool that made them assumed so, so a clip labelled
11,025 Hz is given its true rate, 11,840 Hz (ScummVM does the same).

**Text.** A string is a length byte and that many characters (English: ASCII), the next string starting at the
next multiple of ``align`` (2, or 4 in a dialogue's option lists) unless it is empty. A sentence is cut into
segments at ``*`` commands: ``*`` and two characters (``*XY`` takes 11 more, a position) end the segment before
them; segment ``i`` (from 0, empty ones included) plays clip ``<prefix><i+1 as hex>``. A segment ended by a
gesture (``*GD``, ``*GM``) is not played. The game shows each segment as its own subtitle with its own clip, so
each clip is paired with its segment's text.

- Dialogue ``*.DOG`` (20-byte header skipped): int16 levels (negative: cannot quit), unique key, talk key,
  ``jMax``, ``pMax``, 12 bytes of conditions, uint16 offsets of the person's lines, the cutscene and the repeat
  lines; from byte 32, ``levels`` x 96 bytes of dialogue tree, then Joe's ``jMax`` options. An option or person
  line is 2 bytes, int16 id and a string (align 4); Joe's first entry (id 0) is his opening line. Clip prefixes:
  ``"%2d%4xJ"`` (talk key, id) for Joe, ``"%2d%4xP"`` for the person, ``"%2dSSSSJ"`` for the opening and
  ``"%2dXXXXP"`` / ``"%2dXXXXJ"`` for the two repeat lines (spaces as ``0``, upper case), e.g. ``3700FFP1``.
- Cutscene ``*.CUT`` (20-byte header skipped): uint16 panel, int16 object count (sign: skippable), int16 flags,
  uint16 offsets of the game states, the sentences and the bank names; then per object 17 int16 (object number,
  ..., anim list, execute, ..., from-object, ...), int16 ``n`` + ``n`` int16 people, and, for an animation, 10-int16
  frames up to a -2. The sentences: an entry line, then one per object; object ``k``'s clips are named by the
  file's stem (first 5 characters, ``_``-padded) and ``k`` in 2 digits: ``C100A05`` + segment. After the bank
  names come the name of a dialogue to start and its person (an object number).
- ``QUEEN.JAS`` (20-byte header skipped): uint16 rooms, names, objects, descriptions; the objects (16 bytes:
  name index, x, y, description, entry, room, state, image; -3 and -4 mark a person); then rooms, items, walk
  areas, commands (a TALK TO whose game-state row has a ".DOG" description opens that dialogue) and the actors
  (24 bytes: room, person number in the room, name index, game-state slot and value, ...). ``QUEEN2.JAS`` is
  text, one string a line: descriptions, object names, room names, 12 verbs, Joe's 40 stock replies, actor
  animations, actor names, actor files. Joe says reply ``n`` as clip ``JOE%04d`` and description ``n`` as
  ``JOE%04d`` of ``n + 40``.

Speakers: "Joe", or the person the game animates for the speaking object: its actor's engine name with pose
variants merged ("SPARKY-F", "X5_SPARKY" -> "Sparky"), since object names were reused for people ("note" is
Faye); the object's name where no actor is found; "" for captions (narration).
"""

from __future__ import annotations

import io
import re
import struct
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from asr.corpora.games import Clip, GameDataError, ReadReport

GAME_DIR = "usr/share/scummvm/flight-of-the-amazon-queen"
ARCHIVES = ("queen.1c", "queen.1")  # the rebuilt (compressed) archive first, as ScummVM looks for them
ENTRY = struct.Struct(">12sBII")  # table of contents entry: name, bundle, offset, size
HEADER = 20  # bytes of "AmBk" bank header before a DOG, CUT or QUEEN.JAS file's data
PLAYBACK_RATE = 11840  # Hz: the rate the game plays PC speech at
MISLABELLED_RATE = 11025  # Hz: what the MP3 clips claim
SB_HEADERS = {104: 110, 110: 122}  # SB header version -> header bytes (retail, uncompressed clips)
JOE = "Joe"
JOE_REPLIES = 40  # Joe's stock replies in QUEEN2.JAS; descriptions are numbered after them in clip names
ALIASES = {"PRINCESS1": "AZURA", "PRINCESS2": "AZURA", "ANDSON": "ANDERSON"}  # one character, several names
SILENT = ("GD", "GM")  # commands that make Joe grab instead of speaking: their segment plays no clip
VERBS = 12  # verb names in QUEEN2.JAS
# The shapes of the clip names the game's speech code builds (anything else is a sound effect or unused).
SPEECH_NAME = re.compile(r"\d\d([0-9A-F]{4}|SSSS|XXXX)[PJ][0-9A-F]|JOE\d{4}[0-9A-F]|C\w{4}\d\d[0-9A-F]")


@dataclass(frozen=True)
class Line:
    """One segment of a spoken sentence: who says it and the subtitle the game shows with its clip."""

    speaker: str
    text: str
    played: bool = True  # False for a segment ended by a gesture command: the game plays no clip for it


@dataclass
class Archive:
    """``queen.1c``'s bytes and table of contents (name -> offset, size)."""

    path: Path
    blob: bytes
    toc: dict[str, tuple[int, int]]

    def data(self, name: str) -> bytes:
        if name not in self.toc:
            raise GameDataError(f"{self.path}: {name} is not in the archive")
        offset, size = self.toc[name]
        return self.blob[offset:offset + size]


@dataclass
class World:
    """What QUEEN.JAS / QUEEN2.JAS say about objects, people and Joe's lines."""

    names: list[str]  # per object number (0: none), the name the game shows for it
    images: list[int]  # per object number: its image (-3, -4: a person)
    rooms: list[int]  # per object number: its room
    first: list[int]  # per room: the number of the object before its first one
    actors: list[tuple[int, int, str, bool]]  # room, person number in the room, engine name, there from the start
    descriptions: list[str]
    replies: list[str]
    dialogues: dict[str, str] = field(default_factory=dict)  # "SPARKY1.DOG" -> the person's name

    def speaker(self, number: int) -> str:
        """Who an object is when it talks: the character the game animates for it, else the object's name."""
        if not 0 < number < len(self.names):
            return ""
        room = self.rooms[number]
        if self.images[number] in (-3, -4) and 0 < room < len(self.first):
            # The game finds a person's actor by room and by how many people precede it in the room; the
            # actor's name is right where object names were reused ("note", "torch" for people).
            nth = sum(1 for n in range(self.first[room] + 1, number + 1) if self.images[n] in (-3, -4))
            found = [(character(name), initial) for r, n, name, initial in self.actors if (r, n) == (room, nth)]
            # Several: who it is depends on the game's state. Prefer the one the object is named for, then the
            # one there from the start (whose state value is 0, as every state is when a game begins).
            found.sort(key=lambda f: (f[0].lower() not in self.names[number].lower(), not f[1]))
            if found:
                return found[0][0]
        return self.names[number]


def character(actor: str) -> str:
    """A person's engine name as a character's name: "SPARKY-F", "X5_SPARKY" -> "Sparky"."""
    name = re.sub(r"^X\d+_|[-_](H|E|F|STAND|SHOWER)$", "", actor)  # the same person in a close-up, another pose
    return ALIASES.get(name, name).replace("_", " ").title()


def _u16(buf: bytes, pos: int) -> int:
    return struct.unpack_from(">H", buf, pos)[0]


def _i16(buf: bytes, pos: int) -> int:
    return struct.unpack_from(">h", buf, pos)[0]


def _string(buf: bytes, pos: int, align: int = 2) -> tuple[str, int]:
    """The string at ``pos`` and where the next one starts."""
    length = buf[pos]
    pos += 1
    if not length:  # an empty string takes its length byte only: no padding
        return "", pos
    if pos + length > len(buf):
        raise IndexError(f"string at byte {pos - 1} runs past the end")
    text = buf[pos:pos + length].decode("latin-1")
    return text, (pos + length + align - 1) & ~(align - 1)


def _entries(blob: bytes, pos: int, path: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """A table of contents block at ``pos``: bundle-1 entries by name, and where the block ends."""
    count = _u16(blob, pos)
    end = pos + 2 + count * ENTRY.size
    if end > len(blob):
        raise GameDataError(f"{path}: table of contents of {count} entries ends at byte {end}, past the end")
    toc = {}
    for i in range(count):
        name, bundle, offset, size = ENTRY.unpack_from(blob, pos + 2 + i * ENTRY.size)
        if bundle == 1:  # PC releases have one bundle; other numbers are Amiga disks
            toc[name.split(b"\0")[0].decode("latin-1")] = (offset, size)
    return toc, end


def _engine_toc(size: int, engine_table: Path) -> dict[str, tuple[int, int]]:
    """The table of a retail archive of ``size`` bytes from ScummVM's queen.tbl."""
    if not engine_table.is_file():
        raise GameDataError(f"{engine_table}: missing (the archive has no table of its own)")
    blob = engine_table.read_bytes()
    if blob[:4] != b"QTBL" or len(blob) < 10:
        raise GameDataError(f"{engine_table}: not a queen.tbl (no QTBL header)")
    pos = 8
    while pos + 2 <= len(blob):
        toc, pos = _entries(blob, pos, engine_table)
        if toc and max(offset + length for offset, length in toc.values()) == size:
            return toc
    raise GameDataError(f"{engine_table}: lists no release whose archive is {size} bytes")


def open_archive(package_root: Path, engine_table: Path) -> Archive:
    """The package's archive with its table of contents; every entry is checked to lie inside the file."""
    folder = Path(package_root) / GAME_DIR
    path = next((folder / name for name in ARCHIVES if (folder / name).is_file()), None)
    if path is None:
        raise GameDataError(f"{folder}: no {' or '.join(ARCHIVES)} (is {GAME_DIR} unpacked here?)")
    blob = path.read_bytes()
    if blob[:4] == b"QTBL":
        if len(blob) < 15:
            raise GameDataError(f"{path}: truncated in its 15-byte header")
        toc, _ = _entries(blob, 13, path)
    else:
        toc = _engine_toc(len(blob), Path(engine_table))
    for name, (offset, size) in toc.items():
        if offset + size > len(blob):
            raise GameDataError(f"{path}: {name} ends at byte {offset + size}, past the end ({len(blob)} bytes)")
    return Archive(path, blob, toc)


def segments(sentence: str) -> list[tuple[str, bool]]:
    """A sentence cut at its ``*`` commands: (text, played) per segment, segment ``i`` playing clip ``i + 1``."""
    parts, start, i = [], 0, 0
    while i < len(sentence):
        if sentence[i] != "*":
            i += 1
            continue
        command = sentence[i + 1:i + 3]
        parts.append((sentence[start:i], command not in SILENT))
        i += 3 + (11 if command == "XY" else 0)  # "*XY00(237,112)": a walk, with its position
        start = i
    if start < len(sentence):
        parts.append((sentence[start:], True))
    return parts


def _add(lines: dict[str, Line], prefix: str, speaker: str, sentence: str, how: str = "split") -> None:
    """The clips ``prefix``1, 2, ... of one sentence, cut at its commands, or ``how`` = "whole" (one clip,
    commands and all) or "shown" (not played)."""
    prefix = prefix[:8].replace(" ", "0").upper()  # the game zero-fills the first 8 characters of a clip name
    parts = segments(sentence) if how == "split" else [(sentence, how == "whole")]
    for i, (text, played) in enumerate(parts):
        lines.setdefault(f"{prefix}{i + 1:X}", Line(speaker, text, played))


def _skip_table(jas: bytes, pos: int, record: int, command: bool = False) -> int:
    """Skips a JAS table of uint16 count and records; returns where the next starts. An empty command table
    still stores one (blank) record."""
    count = _u16(jas, pos)
    return pos + 2 + record * (max(count, 1) if command else count)


def _tables(jas: bytes, objects: int, rooms: int) -> tuple[int, int, int]:
    """Offsets in QUEEN.JAS of the command list, the command game-state table and the actor counts."""
    pos = 8 + 16 * objects + 2 * (rooms + 1) + 2 * rooms  # objects, room -> first object, room sound effects
    pos = _skip_table(jas, pos, 10)  # inventory items
    pos = _skip_table(jas, pos, 10)  # graphics
    for _ in range(rooms):  # walk areas: uint16 object count, uint16 area count, 16 bytes per area
        pos += 4 + 16 * _u16(jas, pos + 2)
    pos += 8 * objects  # object boxes
    pos = _skip_table(jas, pos, 6)  # walk-off points
    pos = _skip_table(jas, pos, 8)  # description sets
    commands = pos
    for record in (20, 6, 6, 6):  # commands; the areas, objects and inventory items they change
        pos = _skip_table(jas, pos, record, command=True)
    states = pos
    pos = _skip_table(jas, pos, 8, command=True) + 2  # game states commands test and set; the entry object
    return commands, states, pos + 2 + 4 * _u16(jas, pos)  # furniture: room, object


def _talk_targets(jas: bytes, commands: int, states: int, descriptions: list[str]) -> dict[str, int]:
    """Which object's TALK TO opens which dialogue (a command's game-state row names the .DOG as its text)."""
    targets = {}
    for i in range(_u16(jas, states)):
        command, _slot, _value, speak = struct.unpack_from(">hhhH", jas, states + 2 + 8 * i)
        text = descriptions[speak - 1].upper() if 0 < speak <= len(descriptions) else ""
        if text.endswith(".DOG") and 0 < command:
            target = _i16(jas, commands + 2 + 20 * (command - 1) + 2)  # the command's first object
            if target > 0:
                targets.setdefault(text, target)
    return targets


def read_world(archive: Archive) -> World:
    """Objects, people, Joe's replies and descriptions, and each dialogue's person."""
    jas = archive.data("QUEEN.JAS")[HEADER:]
    rooms, name_count, objects, desc_count = struct.unpack_from(">4H", jas, 0)
    commands, states, actors_at = _tables(jas, objects, rooms)
    actor_count, anim_count, actor_names = struct.unpack_from(">3H", jas, actors_at)
    text = [line.decode("latin-1") for line in re.split(rb"\r?\n", archive.data("QUEEN2.JAS"))]
    replies_at = desc_count + name_count + rooms + VERBS  # descriptions, object names, room names, verbs
    names_at = replies_at + JOE_REPLIES + anim_count  # then Joe's replies, actor animations, actor names
    if len(text) < names_at + actor_names:
        raise GameDataError(f"{archive.path}: QUEEN2.JAS has {len(text)} lines, QUEEN.JAS asks for more")
    object_names = text[desc_count:desc_count + name_count]
    records = [struct.unpack_from(">h8xH2xh", jas, 8 + 16 * i) for i in range(objects)]  # name, room, image
    actors = []
    for i in range(actor_count):  # 24 bytes: room, person number, name, game state slot and value it needs, ...
        room, nth, name, _slot, value = struct.unpack_from(">hhHhh", jas, actors_at + 8 + 24 * i)
        actors.append((room, nth, text[names_at + name - 1] if 0 < name <= actor_names else "", value == 0))
    world = World(names=[""] + [object_names[abs(r[0]) - 1] if 0 < abs(r[0]) <= name_count else "" for r in records],
                  images=[0] + [r[2] for r in records], rooms=[0] + [r[1] for r in records],
                  first=[0] + list(struct.unpack_from(f">{rooms}H", jas, 8 + 16 * objects)), actors=actors,
                  descriptions=text[:desc_count], replies=text[replies_at:replies_at + JOE_REPLIES])
    for dog, number in _talk_targets(jas, commands, states, world.descriptions).items():
        world.dialogues[dog] = world.speaker(number)
    return world


def dialogue_lines(dog: bytes, person: str, lines: dict[str, Line]) -> None:
    """The lines of one dialogue file (data after its 20-byte header) into ``lines`` by clip name."""
    levels, key, joe_count, person_count = abs(_i16(dog, 0)), _i16(dog, 4), _i16(dog, 6), _i16(dog, 8)
    person_at, repeat_at = _u16(dog, 22), _u16(dog, 26)
    for speaker, side, pos, count in ((JOE, "J", 32 + levels * 96, joe_count), (person, "P", person_at, person_count)):
        for i in range(count):
            ident = _i16(dog, pos + 2)
            sentence, pos = _string(dog, pos + 4, 4)
            if sentence == "0" or (side == "P" and ident == 0):  # "0": no line; the person's entry 0 copies
                continue  # Joe's repeat line, which the game plays as his XXXX line
            if side == "J" and i == 0 and ident == 0:  # Joe's opening line, said on the first visit
                _add(lines, f"{key:2d}SSSSJ", JOE, sentence)
            else:
                _add(lines, f"{key:2d}{ident:4x}{side}", speaker, sentence)
    again, pos = _string(dog, repeat_at)  # what the person and Joe say on later visits
    joe_again, _ = _string(dog, pos)
    for prefix, speaker, sentence in ((f"{key:2d}XXXXP", person, again), (f"{key:2d}XXXXJ", JOE, joe_again)):
        if sentence != "0":
            _add(lines, prefix, speaker, sentence)


def _has_frames(number: int, anims: int, execute: int, from_object: int, images: list[int]) -> bool:
    """Whether a cutscene object is an animation, whose frames follow it in the file (the game's own rule)."""
    if number <= -2 or from_object > 0:  # captions; a copy of another object
        return False
    person = number == 0 or (0 < number < len(images) and images[number] in (-3, -4))  # Joe is 0
    if not anims and person:  # a person with no frames: it talks
        return False
    return bool(execute)  # an object's animation is only stored, and played, when it is to be run


def _cut_speakers(cut: bytes, count: int, world: World) -> list[tuple[str, str]]:
    """Per cutscene object: who speaks its sentence and how: "split" at commands, "whole" (a spoken caption,
    one clip) or "shown" (a caption the game does not play)."""
    speakers, pos, copied = [], 12, {}
    for _ in range(count):
        number, anims, execute, from_object = struct.unpack_from(">h6xhh12xh", cut, pos)
        number = 0 if number == -1 else number  # -1: Joe, after a room fade
        if from_object > 0 and number > 0:  # the object becomes a copy of another, name and all, from here on
            copied[number] = copied.get(from_object, from_object)
        pos += 34
        pos += 2 + 2 * _i16(cut, pos)  # int16 count + the people turned on
        if _has_frames(number, anims, execute, from_object, world.images):
            while _i16(cut, pos) != -2:  # frames of an int16 header and 9 int16 each, up to a -2
                pos += 20
            pos += 2
        if number == 0:
            speakers.append((JOE, "split"))
        elif number > 0:
            speakers.append((world.speaker(copied.get(number, number)), "split"))
        else:  # -2, -3: a caption spoken by nobody on screen, played whole; -4: shown, not spoken
            speakers.append(("", "shown" if number == -4 else "whole"))
    return speakers


def cutscene_lines(name: str, cut: bytes, world: World, lines: dict[str, Line]) -> None:
    """The lines of one cutscene file (data after its 20-byte header); notes which dialogue it starts."""
    count, sentences, banks = abs(_i16(cut, 2)), _u16(cut, 8), _u16(cut, 10)
    try:
        speakers = _cut_speakers(cut, count, world)
    except (struct.error, IndexError):  # objects the reader cannot walk: the sentences still pair by number
        speakers = [("", "split")] * count
    base = Path(name).stem.upper()[:5].ljust(5, "_")
    _, pos = _string(cut, sentences)  # the entry line: Joe's facing, never spoken
    for k, (speaker, how) in enumerate(speakers, start=1):
        sentence, pos = _string(cut, pos)
        if sentence and sentence != "*" and not sentence.startswith("#"):  # "*": nothing, "#": credits
            _add(lines, f"{base}{k:02d}"[:7], speaker, sentence, how)
    pos = banks + 2
    for _ in range(_u16(cut, banks)):
        _, pos = _string(cut, pos)
    dog, pos = _string(cut, pos)
    target = _i16(cut, pos) if pos + 2 <= len(cut) else 0
    if dog.upper().endswith(".DOG") and 0 < target:
        world.dialogues.setdefault(dog.upper(), world.speaker(target))


@contextmanager
def _reading(archive: Archive, name: str) -> Iterator[None]:
    """Turns running off the end of a game file, or into nonsense, into a one-line GameDataError."""
    try:
        yield
    except (struct.error, IndexError) as e:
        raise GameDataError(f"{archive.path}: {name} is truncated or malformed ({e})") from None


def read_lines(archive: Archive) -> dict[str, Line]:
    """Every spoken segment the game can play, by the clip name it plays it with."""
    with _reading(archive, "QUEEN.JAS"):
        world = read_world(archive)
    lines: dict[str, Line] = {}
    cutscenes = sorted(name for name in archive.toc if name.endswith(".CUT"))
    dialogues = sorted(name for name in archive.toc if name.endswith(".DOG"))
    for name in cutscenes:  # first: they name some dialogues' people
        with _reading(archive, name):
            cutscene_lines(name, archive.data(name)[HEADER:], world, lines)
    for name in dialogues:
        with _reading(archive, name):
            dialogue_lines(archive.data(name)[HEADER:], world.dialogues.get(name, ""), lines)
    for number, reply in enumerate(world.replies, start=1):
        _add(lines, f"JOE{number:04d}", JOE, reply)
    for number, description in enumerate(world.descriptions, start=JOE_REPLIES + 1):
        if not description.upper().endswith((".CUT", ".DOG")):  # those start a scene instead
            _add(lines, f"JOE{number:04d}", JOE, description)
    return lines


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """One .SB clip as float32 mono in [-1, 1] and the rate the game plays it at (Hz)."""
    if len(data) >= 4 and data[0] != 0xFF and struct.unpack_from("<H", data, 2)[0] in SB_HEADERS:
        data = data[SB_HEADERS[struct.unpack_from("<H", data, 2)[0]]:]
        if not (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):  # raw unsigned 8-bit PCM
            return (np.frombuffer(data, np.uint8).astype(np.float32) - 128.0) / 128.0, PLAYBACK_RATE
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    # MP3 decoding overshoots full scale a little on loud clips (peaks up to 1.3): clipped back to [-1, 1].
    return np.clip(audio.mean(axis=1), -1.0, 1.0), PLAYBACK_RATE if rate == MISLABELLED_RATE else rate


def _unpaired(stem: str, line: Line | None) -> str:
    """Why a clip is left out ("" if it is not)."""
    if line is None:
        if SPEECH_NAME.fullmatch(stem):
            return "clip: named like speech, but no line plays it"
        return "clip: not named like speech (sound effect or unused)"
    if not line.played:
        return "clip: its segment is a gesture, not speech"
    return "" if line.text.strip() else "clip: its segment has no text"


def read(package_root: Path, engine_table: Path, report: ReadReport) -> Iterator[Clip]:
    """Every speech clip of the game paired with its subtitle; the others are counted in ``report``.

    ``engine_table`` (ScummVM's queen.tbl) is read only for an archive without a table of its own."""
    archive = open_archive(package_root, engine_table)
    lines = read_lines(archive)
    stems = sorted(name[:-3] for name in archive.toc if name.endswith(".SB"))
    for stem in stems:
        line = lines.get(stem)
        reason = _unpaired(stem, line)
        if not reason:
            try:
                audio, rate = decode(archive.data(stem + ".SB"))
            except (RuntimeError, ValueError):  # libsndfile's errors are RuntimeErrors
                reason = "clip: audio does not decode"
        if reason:
            report.skip(reason)
            continue
        yield report.add(Clip("queen", stem, line.speaker, line.text, audio, rate))
    have = set(stems)
    silent = sum(1 for stem, line in lines.items() if stem not in have and line.played and line.text.strip())
    if silent:
        report.skip("line: no clip for it", silent)
