"""Lexicons: which words the beam decoder may emit, and how each is spelled in the model's characters.

The file format is flashlight's (and torchaudio's ``ctc_decoder``): one word per line, then its spelling as
space-separated tokens ending with the word-boundary token ``|``::

    hello h e l l o |

The model's space character is that boundary token (see :func:`decoder_tokens`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from asr.errors import AsrError, listed
from asr.fileio import atomic_write_text
from asr.text import Vocabulary

WORD_BOUNDARY = "|"  # flashlight's silence token; stands for the model's space character
BLANK_TOKEN = "<blank>"


class LexiconError(AsrError):
    """A lexicon file that cannot be used with the model's vocabulary."""


def decoder_tokens(vocab: Vocabulary) -> list[str]:
    """The model's output tokens by index, as the decoder names them: blank, ``|`` for space, characters."""
    return [BLANK_TOKEN] + [WORD_BOUNDARY if c == " " else c for c in vocab.characters]


def spelling(word: str) -> str:
    """``"don't"`` -> ``"d o n ' t |"``."""
    return " ".join(word) + " " + WORD_BOUNDARY


def write_lexicon(path: str | os.PathLike, words: Iterable[str]) -> int:
    """Write one entry per distinct word (sorted); returns the number of entries."""
    words = sorted(set(words))
    atomic_write_text(path, "".join(f"{w} {spelling(w)}\n" for w in words))
    return len(words)


def check_lexicon(path: str | os.PathLike, vocab: Vocabulary) -> set[str]:
    """Validate a lexicon against ``vocab``; returns its words.

    Raises :class:`LexiconError` listing each bad line: a word without a spelling, or a spelling with
    tokens the model cannot emit.
    """
    path = Path(path)
    if not path.is_file():
        raise LexiconError(f"{path}: no such lexicon file")
    allowed = set(decoder_tokens(vocab)[1:])
    problems, words = [], set()
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) < 2:
                    problems.append(f"{path}:{lineno}: word {fields[0]!r} has no spelling")
                    continue
                bad = sorted(set(fields[1:]) - allowed)
                if bad:
                    problems.append(f"{path}:{lineno}: tokens outside the model's vocabulary: {' '.join(bad)}")
                    continue
                words.add(fields[0])
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: not a text lexicon ({e.reason} at byte {e.start})") from None
    if problems:
        raise LexiconError(listed(f"{path}: {len(problems)} bad lexicon line(s):", problems))
    if not words:
        raise LexiconError(f"{path}: empty lexicon")
    return words
