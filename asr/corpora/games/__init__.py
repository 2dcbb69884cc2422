"""Real English speech with its text, read out of the voiced dialogue of freeware games in Debian.

Each game has a reader module of its own (one format each, written from the format's description in ScummVM's
engines, which we read but do not copy: ScummVM is GPL-2, this project Apache-2.0):

- ``drascula``: Drascula: The Vampire Strikes Back (raw 8-bit clips + text tables in ScummVM's drascula.dat)
- ``sky``: Beneath a Steel Sky (sky.dsk / sky.dnr: 8-bit PCM clips + Huffman-compressed text)
- ``queen``: Flight of the Amazon Queen (queen.1c: MP3 clips + dialogue and cutscene text)

A reader takes the folder a package was extracted into and yields :class:`Clip` s; what it cannot match is
counted in a :class:`ReadReport`, never silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asr.errors import AsrError


class GameDataError(AsrError):
    """A game file that is missing or does not follow its format; the message names the file."""


@dataclass(frozen=True)
class Clip:
    """One spoken line of a game, with the text the game shows for it."""

    game: str  # "drascula", "sky", "queen"
    clip_id: str  # unique within the game, stable across runs (e.g. the resource number or file name)
    speaker: str  # who speaks, as the game names the character; "" when the game does not say
    text: str  # the subtitle as the game stores it (raw: case, punctuation, digits kept)
    audio: np.ndarray = field(repr=False)  # (samples,) float32 in [-1, 1], mono
    sample_rate: int = 11025  # Hz

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.audio) / self.sample_rate


@dataclass
class ReadReport:
    """What a reader found: clips yielded, and clips or lines it could not pair, by reason."""

    clips: int = 0
    seconds: float = 0.0
    unmatched: dict[str, int] = field(default_factory=dict)  # reason -> count

    def skip(self, reason: str, n: int = 1) -> None:
        self.unmatched[reason] = self.unmatched.get(reason, 0) + n

    def add(self, clip: Clip) -> Clip:
        self.clips += 1
        self.seconds += clip.duration
        return clip
