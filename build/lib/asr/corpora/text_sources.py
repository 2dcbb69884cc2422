"""Public-domain English text that Debian ships, as raw sentences and word lists (no download).

- ``bible``: the King James Bible (``bible-kjv``), verses cut into clauses;
- ``wordnet``: WordNet's usage examples and glosses (``wordnet-base``);
- ``fortunes``: the fortune cookie files (``fortunes``, ``fortunes-min``): quotations, jokes, proverbs, modern
  everyday English that the Bible and WordNet lack;
- ``words``: the SCOWL American English word list (``wamerican-large``), for lexicons of general English.

Sentences come back raw (punctuation and case as written); :func:`asr.text.normalize` makes them targets.
"""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path

from asr.errors import AsrError

DEBIAN_PACKAGES = {"bible": ["bible-kjv"], "wordnet": ["wordnet-base"], "fortunes": ["fortunes", "fortunes-min"],
                   "words": ["wamerican-large"]}
SOURCES = ("bible", "wordnet", "fortunes")  # sentence sources, in the order they are read
WORDS_FILE = "/usr/share/dict/american-english-large"
_SENTENCE_END = re.compile(r"(?<=[.?!;:])\s+|\s+--\s+")


def packages(sources: tuple[str, ...]) -> list[str]:
    """The Debian packages that ``sources`` need."""
    unknown = sorted(set(sources) - set(DEBIAN_PACKAGES))
    if unknown:
        raise AsrError(f"unknown text source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    return [p for s in sources for p in DEBIAN_PACKAGES[s]]


def split_clauses(verse: str, split_commas: bool = True) -> list[str]:
    """Cut a verse into clauses at sentence punctuation and, with ``split_commas``, at commas.

    Verses are long. Cutting at commas too gives 4 to 5 times more distinct sentences within the same word
    list (20,500 instead of 4,100 for the 500 most frequent words; 36,000 instead of 8,300 for 1,000). That
    matters more than it seems: a BiLSTM that hears the same few thousand sentences for many epochs learns
    them by heart, so the demo does better hearing twice as many distinct sentences half as often
    (recipes/synthetic/RESULTS.md).
    """
    return re.split(r"[.;:?!,]" if split_commas else r"[.;:?!]", verse)


def bible(split_commas: bool = True) -> list[str]:
    try:
        out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise AsrError(f"cannot read the King James Bible through 'bible' (Debian bible-kjv): {e}") from None
    clauses = []
    for line in out.splitlines():
        m = re.match(r"^\S+\d+:\d+ (.*)", line)
        if m:
            clauses += split_clauses(m.group(1), split_commas)
    return clauses


def wordnet(root: str = "/usr/share/wordnet", glosses: bool = False) -> list[str]:
    """WordNet's quoted usage examples (``"he ran to the store"``), and with ``glosses`` its definitions."""
    found = []
    for path in sorted(glob.glob(f"{root}/data.*")):
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # the licence header is indented
                    continue
                found += re.findall(r'"([^"]+)"', line)
                if glosses and "| " in line:
                    found += [g for g in re.split(r";", line.split("| ", 1)[1]) if '"' not in g]
    if not found:
        raise AsrError(f"no WordNet examples found under {root} (Debian wordnet-base)")
    return found


def fortunes(root: str = "/usr/share/games/fortunes") -> list[str]:
    """Sentences of the fortune files: entries between ``%`` lines, attributions (``-- Author``) dropped."""
    sentences = []
    skip = {"art", "ascii-art"}  # drawings, not sentences
    files = sorted(p for p in Path(root).glob("*") if p.is_file() and not p.suffix and p.name not in skip)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for entry in text.split("\n%\n"):
            lines = [ln.strip() for ln in entry.splitlines() if ln.strip() and not ln.strip().startswith("--")]
            sentences += _SENTENCE_END.split(" ".join(lines))
    if not sentences:
        raise AsrError(f"no fortune files under {root} (Debian fortunes)")
    return sentences


def read(sources: tuple[str, ...], split_commas: bool = True) -> list[str]:
    """Raw sentences of each source, concatenated in the order given."""
    readers = {"bible": lambda: bible(split_commas), "wordnet": wordnet, "fortunes": fortunes}
    packages(sources)  # names every unknown source at once
    return [s for source in sources for s in readers[source]()]


def words(path: str = WORDS_FILE) -> list[str]:
    """The word list, one word per line as written (capitals and possessives included)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        raise AsrError(f"{path}: no word list (Debian wamerican-large)") from None
