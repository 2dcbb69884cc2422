"""The real-speech corpus: the games' clips fetched from Debian, read, cleaned up and split into manifests.

Stages, each re-runnable (a finished one is skipped, as icefall's preparation does):

1. fetch: ``apt-get download`` + ``dpkg-deb -x`` of each game's packages (:func:`asr.corpora.system.unpack`);
2. read: the game's reader pairs clips with their lines; each kept clip is written as 16 kHz FLAC and listed in
   ``OUT/games/<game>.jsonl``, each dropped one in ``OUT/games/<game>.dropped.tsv`` with its reason;
3. split: ``test_real`` = every clip of the test games (Drascula: never trained or tuned on), ``dev_real`` = the
   held-out speakers of the other games, ``train`` = the rest, and ``lm_text.txt`` = the train split's lines.

A game whose package is missing or whose files do not follow the format is named in one line and left out; the
others still build. Why clips are dropped and how many: recipes/games/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import soxr

from asr.audio import SAMPLE_RATE
from asr.corpora.games import Clip, GameDataError, ReadReport
from asr.corpora.spoken import spoken
from asr.corpora.system import unpack
from asr.errors import AsrError
from asr.manifest import Utterance, read_manifest, write_manifest
from asr.text import Vocabulary, normalize


@dataclass(frozen=True)
class Game:
    name: str
    title: str
    packages: tuple[str, ...]  # Debian packages; the first holds the speech
    version: str  # the Debian version of the first package the reader was written against
    licence: str  # the audio's licence, as the package's copyright file gives it


GAMES = {
    "drascula": Game("drascula", "Drascula: The Vampire Strikes Back", ("drascula", "scummvm-data"), "1.0+ds4-2",
                     "freeware: redistribution allowed, sale not (debian/copyright of drascula)"),
    # The subtitles' Huffman tree is not in the game's files but in ScummVM's program: read from Debian's binary.
    "sky": Game("sky", "Beneath a Steel Sky", ("beneath-a-steel-sky", "scummvm"), "0.0372-8",
                "freeware: redistribution allowed, sale not (debian/copyright of beneath-a-steel-sky)"),
    "queen": Game("queen", "Flight of the Amazon Queen", ("flight-of-the-amazon-queen", "scummvm-data"), "1.0.0-9",
                  "freeware: redistribution allowed, sale not (debian/copyright of flight-of-the-amazon-queen)"),
}


@dataclass(frozen=True)
class GamesConfig:
    out_dir: str = "data/games"
    games: tuple[str, ...] = ("drascula", "queen", "sky")
    test_games: tuple[str, ...] = ("drascula",)  # every clip is test_real: never trained or tuned on
    # dev_real: whole speakers of the training games held out (as "game:speaker"), for choosing and tuning.
    dev_speakers: tuple[str, ...] = ("queen:azura", "queen:frank")
    min_seconds: float = 0.4  # shorter clips are mostly sounds and one-word grunts
    max_seconds: float = 20.0  # longer ones exceed what training batches take (data.max_duration)
    # Characters (of the normalised text) a second outside this range, even allowing up to 0.5 s of silence
    # around the speech: the line and the clip do not match (a clip cut short, a line rewritten after recording, a
    # drawn-out laugh). Dialogue runs 10-20.
    chars_per_second: tuple[float, float] = (3.0, 28.0)
    # Characters who speak no English (the Queen's apes: "Ungh, chunga kunga"), as "game:speaker".
    leave_out_speakers: tuple[str, ...] = ("queen:ape", "queen:ape1")
    exclude: str | None = None  # a file of "game:clip_id" lines to leave out (the alignment clean-up's verdict)
    jobs: int = 0  # games read in parallel; 0 = one per core, at most one per game
    downloads: str | None = None  # where packages are unpacked (default OUT/downloads)

    @property
    def download_dir(self) -> Path:
        return Path(self.downloads or Path(self.out_dir) / "downloads")


def _readers() -> dict[str, Callable[[dict[str, Path], ReadReport], Iterator[Clip]]]:
    """Each game's reader, given the unpacked root of each of its packages (a module imported when it runs)."""
    from importlib import import_module

    data = "usr/share/scummvm"
    game = lambda name: import_module(f"asr.corpora.games.{name}")  # noqa: E731
    return {
        "drascula": lambda roots, report: game("drascula").read(
            roots["drascula"], roots["scummvm-data"] / data / "drascula.dat", report),
        "sky": lambda roots, report: game("sky").read(roots["beneath-a-steel-sky"], report, scummvm=roots["scummvm"]),
        "queen": lambda roots, report: game("queen").read(
            roots["flight-of-the-amazon-queen"], roots["scummvm-data"] / data / "queen.tbl", report),
    }


def speaker_id(game: str, speaker: str) -> str:
    """``game:speaker`` with the character's name lower-cased and spaces as underscores ("" -> "unknown")."""
    name = re.sub(r"\s+", "_", speaker.strip().lower()) or "unknown"
    return f"{game}:{name}"


def check(clip: Clip, cfg: GamesConfig, vocab: Vocabulary) -> tuple[str, str]:
    """``(normalised text, "")`` for a usable clip, or ``("", reason)`` for one left out. A test game's clips
    are all kept but for those with no text to score: the yardstick does not get easier by leaving out the hard
    lines (drawn-out words, sounds)."""
    test = clip.game in cfg.test_games
    text, reason = spoken(clip.text, strict=not test)
    if text is None:
        return "", reason
    text = normalize(text)
    if not text:
        return "", "empty"
    if vocab.unknown(text):
        return "", "outside vocabulary"
    if test:
        return text, ""
    if not cfg.min_seconds <= clip.duration <= cfg.max_seconds:
        return "", "too short" if clip.duration < cfg.min_seconds else "too long"
    if speaker_id(clip.game, clip.speaker) in cfg.leave_out_speakers:
        return "", "speaks no English"
    slowest, fastest = len(text) / max(clip.duration - 0.5, 0.25), len(text) / clip.duration
    if slowest < cfg.chars_per_second[0] or fastest > cfg.chars_per_second[1]:
        return "", "speaking rate out of range (text and audio differ)"
    return text, ""


def _to_16k(clip: Clip) -> np.ndarray:
    audio = clip.audio.astype(np.float32)
    if clip.sample_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, clip.sample_rate, SAMPLE_RATE, quality="HQ")
    return np.clip(audio, -1.0, 1.0)


def read_game(name: str, cfg: GamesConfig) -> dict:
    """Stage 1 and 2 for one game: its manifest and dropped list; returns the counts (see the module doc)."""
    out = Path(cfg.out_dir) / "games"
    done = out / f"{name}.json"
    if done.exists():
        return json.loads(done.read_text())
    roots = {}
    for package in GAMES[name].packages:
        roots[package], version = unpack(package, cfg.download_dir)
        if package == GAMES[name].packages[0] and version != GAMES[name].version:
            print(f"{name}: Debian has {package} {version}, the reader knows {GAMES[name].version}: reading it anyway")
    excluded = _excluded(cfg.exclude, name)
    report, utts, dropped = ReadReport(), [], []
    vocab = Vocabulary()
    audio_dir = out / "audio" / name
    audio_dir.mkdir(parents=True, exist_ok=True)
    for clip in _readers()[name](roots, report):
        text, reason = check(clip, cfg, vocab)
        if not reason and clip.clip_id in excluded:
            reason = "alignment score (text and audio differ)"
        if reason:
            dropped.append((clip.clip_id, clip.speaker, f"{clip.duration:.2f}", reason, clip.text))
            continue
        path = audio_dir / f"{clip.clip_id}.flac"
        audio = _to_16k(clip)
        sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
        utts.append(Utterance(str(path), round(len(audio) / SAMPLE_RATE, 3), text,
                              speaker=speaker_id(name, clip.speaker)))
    if not utts:
        raise GameDataError(f"{name}: no clip could be read and matched to its line")
    write_manifest(out / f"{name}.jsonl", utts)
    (out / f"{name}.dropped.tsv").write_text("".join("\t".join(map(str, row)).replace("\n", " ") + "\n"
                                                      for row in dropped))
    stats = _stats(name, report, utts, dropped)
    done.write_text(json.dumps(stats, indent=1) + "\n")  # last: marks the game as read
    return stats


def _excluded(path: str | None, game: str) -> set[str]:
    if not path:
        return set()
    lines = [ln.split("#")[0].strip() for ln in Path(path).read_text().splitlines()]
    return {ln.split(":", 1)[1] for ln in lines if ln.startswith(game + ":")}


def _stats(name: str, report: ReadReport, utts: list[Utterance], dropped: list[tuple]) -> dict:
    reasons: dict[str, int] = {}
    for row in dropped:
        reasons[row[3]] = reasons.get(row[3], 0) + 1
    return {"game": name, "clips_read": report.clips, "minutes_read": round(report.seconds / 60, 1),
            "unmatched": report.unmatched, "kept": len(utts),
            "minutes_kept": round(sum(u.duration for u in utts) / 60, 1),
            "speakers": len({u.speaker for u in utts}), "dropped": reasons}


def _read_one(job: tuple[str, GamesConfig]) -> tuple[str, dict | str]:
    name, cfg = job
    try:
        return name, read_game(name, cfg)
    except AsrError as e:  # one game's problem never stops the others
        return name, str(e)


def prepare(cfg: GamesConfig = GamesConfig()) -> dict[str, Path]:
    """Fetch, read and split every game of ``cfg``; returns the manifests written (split name -> path)."""
    unknown = sorted(set(cfg.games) - set(GAMES))
    if unknown:
        raise AsrError(f"games: unknown game(s) {', '.join(unknown)}; known: {', '.join(GAMES)}")
    jobs = min(cfg.jobs or os.cpu_count() or 1, len(cfg.games))
    with ProcessPoolExecutor(jobs) as pool:
        results = dict(pool.map(_read_one, [(g, cfg) for g in cfg.games]))
    for name, result in results.items():
        if isinstance(result, str):
            print(f"asr: error: {name} left out: {result}")
        else:
            print(f"{name}: {result['kept']} of {result['clips_read']} clips kept, {result['minutes_kept']} min, "
                  f"{result['speakers']} speakers" + (f"; dropped {result['dropped']}" if result['dropped'] else ""))
    read = [g for g in cfg.games if not isinstance(results[g], str)]
    if not read:
        raise AsrError("games: no game could be read (see the lines above)")
    return write_splits(cfg, read)


def write_splits(cfg: GamesConfig, games: list[str]) -> dict[str, Path]:
    """``test_real``, ``dev_real``, ``train`` and ``lm_text.txt`` from the games' manifests (module doc)."""
    out = Path(cfg.out_dir)
    splits: dict[str, list[Utterance]] = {"train": [], "dev_real": [], "test_real": []}
    for game in games:
        for u in read_manifest(out / "games" / f"{game}.jsonl"):
            split = "test_real" if game in cfg.test_games else "dev_real" if u.speaker in cfg.dev_speakers else "train"
            splits[split].append(u)
    paths = {}
    for split, utts in splits.items():
        if utts:
            paths[split] = out / f"{split}.jsonl"
            write_manifest(paths[split], utts)
            print(f"{paths[split]}: {len(utts)} utterances, {sum(u.duration for u in utts) / 3600:.2f} h, "
                  f"{len({u.speaker for u in utts})} speakers")
    lines = sorted({u.text for u in splits["train"]})
    (out / "lm_text.txt").write_text("".join(line + "\n" for line in lines))
    return paths
