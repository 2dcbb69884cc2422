"""CMU AN4 (census database, the corpus deepspeech.pytorch starts from): ``asr prepare an4``.

``train.jsonl`` (an4_train minus every 20th utterance), ``dev.jsonl`` (those held-out utterances) and
``test.jsonl`` (an4_test). The sphere files are 16 kHz PCM that soundfile reads directly: no conversion.
"""

import argparse
from pathlib import Path

from asr.corpus import Archive, fetch, recipe_arguments, report, with_durations, write_split
from asr.corpus_formats import an4

# The CMU original; sha256 as pinned by NVIDIA NeMo's AN4 tutorials, which mirror the same file.
ARCHIVE = Archive("http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz",
                  "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12")
DEV_EVERY = 20


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare an4", description=__doc__)
    recipe_arguments(parser, "an4")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    downloads = Path(args.download_dir or data_dir / "downloads")
    root = fetch(ARCHIVE, downloads, downloads / "extracted", args.mirror, not args.skip_checksum) / "an4"
    train = with_durations(an4(root, "train"))
    splits = {"train": [r for i, r in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1],
              "dev": [r for i, r in enumerate(train) if i % DEV_EVERY == DEV_EVERY - 1],
              "test": with_durations(an4(root, "test"))}
    for name, rows in splits.items():
        report(f"{data_dir / name}.jsonl", write_split(data_dir / f"{name}.jsonl", rows))
    return 0
