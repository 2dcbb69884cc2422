"""Hand-built CTC emissions and language models for decoder tests: answers known by construction."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from asr.text import Vocabulary


def emissions(frames: list[dict[str, float]], vocab: Vocabulary = Vocabulary(), floor: float = 1e-4) -> torch.Tensor:
    """``(frames, vocab)`` log-probabilities from per-frame ``{char: prob}`` (``""`` = blank); the rest share ``floor``."""
    out = torch.full((len(frames), len(vocab)), floor)
    index = {c: i + 1 for i, c in enumerate(vocab.characters)}
    for t, probs in enumerate(frames):
        for c, p in probs.items():
            out[t, 0 if c == "" else index[c]] = p
    return (out / out.sum(-1, keepdim=True)).log()


def spell(text: str, per_char: int = 1, gap: int = 1) -> list[dict[str, float]]:
    """Frames that spell ``text`` clearly: each character for ``per_char`` frames, blanks in between."""
    frames = [{"": 0.99}] * gap
    for c in text:
        frames += [{c: 0.99}] * per_char + [{"": 0.99}] * gap
    return frames


def write_arpa(path: Path, unigrams: dict[str, float], bigrams: dict[tuple[str, str], float]) -> Path:
    """A bigram ARPA file from log10 probabilities (back-off weights 0); KenLM loads ARPA directly."""
    uni = {"<s>": -99.0, "</s>": -1.0, "<unk>": -10.0, **unigrams}
    lines = ["\\data\\", f"ngram 1={len(uni)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines += [f"{p:.4f}\t{w}" + ("" if w == "</s>" else "\t0.0") for w, p in uni.items()]
    lines += ["", "\\2-grams:"]
    lines += [f"{p:.4f}\t{a} {b}" for (a, b), p in bigrams.items()]
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    return path


def log10(p: float) -> float:
    return math.log10(p)
