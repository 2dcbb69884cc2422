"""TED-LIUM 3 (OpenSLR 51, 452 h of TED talks): ``asr prepare tedlium3``.

Uses the ``legacy`` distribution (the standard train/dev/test split). Each talk is one long sphere file; the
STM transcripts cut it into segments, which become manifest lines with ``offset`` and ``duration``, so training
reads only each segment's span and nothing is re-encoded. Segments marked ``ignore_time_segment_in_scoring``
are skipped.
"""

import argparse
from pathlib import Path

from asr.corpus import Archive, fetch, recipe_arguments, report, write_split
from asr.corpus_formats import stm
from asr.errors import AsrError

ARCHIVE = Archive("https://www.openslr.org/resources/51/TEDLIUM_release-3.tgz",
                  "ad1e454d14d1ad550bc2564c462d87c7a7ec83d4dc2b9210f22ab4973b9eccdb")  # sha256 (torchaudio's)
SPLITS = ("train", "dev", "test")


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare tedlium3", description=__doc__)
    recipe_arguments(parser, "tedlium3")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    downloads = Path(args.download_dir or data_dir / "downloads")
    root = fetch(ARCHIVE, downloads, downloads / "extracted", args.mirror, not args.skip_checksum)
    legacy = root / "TEDLIUM_release-3" / "legacy"
    for split in SPLITS:
        rows = []
        stms = sorted((legacy / split / "stm").glob("*.stm"))
        if not stms:
            raise AsrError(f"{legacy / split / 'stm'}: no STM files")
        for path in stms:
            audio = legacy / split / "sph" / (path.stem + ".sph")
            rows += list(stm(path, audio))
        report(f"{data_dir / split}.jsonl", write_split(data_dir / f"{split}.jsonl", rows))
    return 0
