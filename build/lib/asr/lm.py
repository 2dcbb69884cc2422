"""Building n-gram language models with KenLM (``lmplz`` + ``build_binary``), plus the lexicon beside them.

KenLM's programs ship in no wheel; ``make kenlm`` builds them from the pinned ``kenlm`` sdist into
``tools/kenlm/bin`` (the field's usual route: ESPnet and NeMo ship the same kind of installer script).

An LM folder holds ``lm.bin`` (KenLM binary), ``lexicon.txt`` (word LMs only) and ``lm.json`` (how it was
built). Two units:

- ``word``: the usual word n-gram, for lexicon decoding;
- ``char``: an n-gram over characters with ``|`` between words, for lexicon-free decoding (flashlight's
  lexicon-free decoder scores every emitted token with the LM, so the LM's words must be our tokens).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from asr.errors import AsrError
from asr.fileio import atomic_path, atomic_write_text
from asr.lexicon import WORD_BOUNDARY, write_lexicon
from asr.manifest import read_manifest
from asr.text import Vocabulary, normalize

LM_FILE, LEXICON_FILE, INFO_FILE = "lm.bin", "lexicon.txt", "lm.json"
MAX_ORDER = 6  # KenLM's default KENLM_MAX_ORDER, which flashlight-text's bundled KenLM is also built with
KENLM_ENV = "ASR_KENLM_BIN"  # folder holding lmplz and build_binary, when not in tools/kenlm/bin or on PATH


class LMError(AsrError):
    """A language model that cannot be built or loaded."""


@dataclass(frozen=True)
class LMConfig:
    order: int = 4  # n-gram order
    prune: tuple[int, ...] = (0, 0, 1)  # lmplz --prune: count thresholds per order (last one repeats)
    unit: str = "word"  # "word" or "char"
    memory: str = "20%"  # lmplz -S: memory for sorting
    discount_fallback: bool = True  # needed on tiny corpora where some counts-of-counts are zero


def find_kenlm(program: str) -> str:
    """Path of a KenLM program: $ASR_KENLM_BIN, then ./tools/kenlm/bin, the checkout's tools/kenlm/bin, PATH."""
    candidates = []
    if os.environ.get(KENLM_ENV):
        candidates.append(Path(os.environ[KENLM_ENV]) / program)
    candidates += [Path("tools/kenlm/bin") / program,
                   Path(__file__).resolve().parent.parent / "tools" / "kenlm" / "bin" / program]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(program)
    if found:
        return found
    raise LMError(f"KenLM's {program} not found: run 'make kenlm' (builds it into tools/kenlm/bin) "
                  f"or set {KENLM_ENV} to the folder that holds it")


def read_sentences(sources: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Normalised non-empty lines of text files, or the ``text`` of JSON-lines manifests (``*.jsonl``/``*.json``)."""
    for src in sources:
        src = Path(src)
        if not src.is_file():
            raise LMError(f"{src}: no such text file")
        if src.suffix in (".jsonl", ".json"):
            for utt in read_manifest(src, vocab=None, check_files=False):
                yield utt.text
            continue
        try:
            with open(src, encoding="utf-8") as f:
                for line in f:
                    text = normalize(line)
                    if text:
                        yield text
        except UnicodeDecodeError as e:
            raise LMError(f"{src}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _lm_line(sentence: str, unit: str) -> str:
    if unit == "word":
        return sentence
    return " ".join(WORD_BOUNDARY if c == " " else c for c in sentence)


def build(sources: Iterable[str | os.PathLike], out_dir: str | os.PathLike, config: LMConfig = LMConfig(),
          vocab: Vocabulary = Vocabulary()) -> dict:
    """Build ``out_dir/lm.bin`` (+ ``lexicon.txt`` for word LMs, + ``lm.json``) from text; returns the info.

    Text goes through the training normaliser; sentences with characters outside ``vocab`` are dropped
    (counted in the info), since the model could never spell them.
    """
    if config.unit not in ("word", "char"):
        raise LMError(f"unknown LM unit {config.unit!r}: use 'word' or 'char'")
    if not 1 <= config.order <= MAX_ORDER:
        raise LMError(f"LM order must be 1..{MAX_ORDER}, got {config.order}")
    lmplz, build_binary = find_kenlm("lmplz"), find_kenlm("build_binary")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    words: Counter[str] = Counter()
    kept = dropped = 0
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as tmp:
        corpus, arpa = Path(tmp) / "corpus.txt", Path(tmp) / "lm.arpa"
        with open(corpus, "w", encoding="utf-8") as f:
            for sentence in read_sentences(sources):
                if vocab.unknown(sentence):
                    dropped += 1
                    continue
                kept += 1
                words.update(sentence.split())
                f.write(_lm_line(sentence, config.unit) + "\n")
        if kept == 0:
            raise LMError("no usable sentences in the LM text")
        cmd = [lmplz, "-o", str(config.order), "-S", config.memory, "-T", tmp, "--text", str(corpus),
               "--arpa", str(arpa)]
        if any(config.prune):
            cmd += ["--prune", *map(str, config.prune[: config.order])]
        if config.discount_fallback:
            cmd.append("--discount_fallback")
        _run(cmd, "lmplz")
        with atomic_path(out_dir / LM_FILE) as binary:  # a reader never sees half an LM
            _run([build_binary, str(arpa), str(binary)], "build_binary")
    lexicon = None
    if config.unit == "word":
        write_lexicon(out_dir / LEXICON_FILE, words)
        lexicon = LEXICON_FILE
    elif (out_dir / LEXICON_FILE).exists():
        (out_dir / LEXICON_FILE).unlink()  # a stale word lexicon would turn char-LM decoding into lexicon decoding
    info = {"config": asdict(config), "lm": LM_FILE, "lexicon": lexicon, "sentences": kept,
            "dropped_sentences": dropped, "words": sum(words.values()), "distinct_words": len(words)}
    atomic_write_text(out_dir / INFO_FILE, json.dumps(info, indent=1) + "\n")
    return info


def _run(cmd: list[str], name: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = [line for line in proc.stderr.strip().splitlines() if line.strip()][-1:] or ["no message"]
        raise LMError(f"{name} failed (exit {proc.returncode}): {last[0]}")


def lm_info(lm_path: str | os.PathLike) -> dict:
    """The ``lm.json`` beside an LM file, or ``{}`` for LMs built elsewhere."""
    info = Path(lm_path).parent / INFO_FILE
    try:
        return json.loads(info.read_text())
    except (OSError, ValueError):
        return {}


def check_lm_file(path: str | os.PathLike) -> None:
    """Refuse a missing or non-KenLM file with a clear error before the decoder's C++ sees it."""
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: no such language model file" + (" (a directory)" if path.is_dir() else ""))
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith(b"mmap lm http://kheafield.com/code"):
        return  # KenLM binary
    if head.lstrip().startswith(b"\\data\\"):
        return  # ARPA text
    raise LMError(f"{path}: not a KenLM language model (neither KenLM binary nor ARPA)")
