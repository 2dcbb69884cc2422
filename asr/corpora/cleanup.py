"""Clips whose text does not match their audio, found by a CTC model's alignment score (as NeMo's and Kaldi's
corpus clean-ups do): ``python -m asr.corpora.cleanup --model M --manifest X.jsonl --out misaligned.txt``.

The score of an utterance is its CTC loss (the negative log-probability of its transcript over every alignment)
per character of the transcript, in nats: a clip that says what its line says scores low whatever its length; a
clip cut short, a rewritten line or another line's audio scores far above the corpus's typical value. An utterance
is flagged when its score exceeds ``median + k * MAD`` of the manifest's scores (a robust outlier test: the
threshold follows the model's overall fit, so the same ``k`` serves a weak and a strong model). What it found on
the games' corpus: recipes/games/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from asr.errors import AsrError
from asr.manifest import Utterance, read_manifest


def ctc_loss(log_probs: np.ndarray, tokens: list[int], blank: int = 0) -> float:
    """Negative log-likelihood (nats) of ``tokens`` under ``(frames, vocab)`` CTC log-probabilities; inf when
    there are too few frames for them."""
    import torch

    lp = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32))[:, None, :]
    loss = torch.nn.functional.ctc_loss(lp, torch.tensor([tokens]), torch.tensor([lp.shape[0]]),
                                        torch.tensor([len(tokens)]), blank=blank, reduction="sum",
                                        zero_infinity=False)
    return float(loss)


def scores(model, utts: list[Utterance], batch: int = 32) -> list[float]:
    """Each utterance's CTC loss per character under ``model`` (an :func:`asr.load` model), in input order."""
    from asr.audio import read_audio

    out = []
    for start in range(0, len(utts), batch):
        chunk = utts[start:start + batch]
        waves = [read_audio(u.audio_filepath, *u.span) for u in chunk]
        for u, lp in zip(chunk, model.network.run(waves)):
            tokens = model.vocab.encode(u.text)
            out.append(ctc_loss(lp, tokens) / max(len(tokens), 1))
    return out


def outliers(values: list[float], k: float) -> float:
    """The threshold ``median + k * MAD`` (MAD scaled to a normal's standard deviation)."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    median = float(np.median(v))
    return median + k * 1.4826 * float(np.median(np.abs(v - median)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.cleanup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a model (checkpoint or model folder)")
    parser.add_argument("--manifest", required=True, nargs="+")
    parser.add_argument("--out", required=True, help="file of flagged ids (game:clip_id of the audio file's stem)")
    parser.add_argument("--k", type=float, default=4.0, help="flag scores above median + k * MAD")
    args = parser.parse_args(argv)
    try:
        import asr

        model = asr.load(args.model)
        utts = [u for m in args.manifest for u in read_manifest(m)]
        values = scores(model, utts)
        threshold = outliers(values, args.k)
        flagged = sorted(((s, u) for s, u in zip(values, utts) if s > threshold), key=lambda su: -su[0])
        lines = [f"{u.speaker.split(':')[0]}:{Path(u.audio_filepath).stem}  # {s:.2f} {u.text}" for s, u in flagged]
        Path(args.out).write_text("".join(line + "\n" for line in lines))
        print(f"{len(flagged)} of {len(utts)} utterances above {threshold:.2f} nats a character "
              f"(median {np.median(values):.2f}): {args.out}")
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
