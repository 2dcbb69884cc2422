"""Text normalisation and the character vocabulary.

One normaliser serves both training targets and scoring, so the WER measures recognition errors and not
differences in punctuation or case.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

BLANK = 0  # CTC blank index
CHARACTERS = " 'abcdefghijklmnopqrstuvwxyz"  # space, apostrophe, a-z

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_SPACE_PUNCT = re.compile(r"[-\u2010-\u2015_/]")  # hyphens and slashes separate words


def normalize(text: str) -> str:
    """Lower-case, strip accents and punctuation, keep apostrophes inside words, squeeze spaces.

    Characters that are neither letters, digits, punctuation nor symbols are kept, so that text in
    another script or with digits is caught by the vocabulary check instead of silently vanishing.

    >>> normalize("  Don't   STOP—believin'! Café.")
    "don't stop believin cafe"
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _SPACE_PUNCT.sub(" ", text)
    kept = []
    for c in text:
        cat = unicodedata.category(c)
        if c == "'" or not (cat.startswith("P") or cat.startswith("S")):
            kept.append(c if not c.isspace() else " ")
        else:
            kept.append(" ")
    words = []
    for word in "".join(kept).split():
        word = word.strip("'")  # quotes, not contractions
        if word:
            words.append(word)
    return " ".join(words)


@dataclass(frozen=True)
class Vocabulary:
    """Characters indexed from 1; index 0 is the CTC blank."""

    characters: str = CHARACTERS

    @property
    def tokens(self) -> list[str]:
        return ["<blank>", *self.characters]

    def __len__(self) -> int:
        return len(self.characters) + 1

    def unknown(self, text: str) -> set[str]:
        """Characters of (normalised) ``text`` that the vocabulary lacks."""
        return set(text) - set(self.characters)

    def encode(self, text: str) -> list[int]:
        """Normalised text -> token ids (1..len-1). Raises KeyError on unknown characters."""
        index = self._index
        return [index[c] for c in text]

    def decode(self, ids) -> str:
        """Token ids (no blanks, repeats already collapsed) -> text."""
        chars = self.characters
        return "".join(chars[i - 1] for i in ids if i != BLANK)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(self.characters)}
