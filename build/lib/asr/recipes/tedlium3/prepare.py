"""TED-LIUM 3 (OpenSLR 51, 452 h of TED talks): ``asr prepare tedlium3``.

Uses the ``legacy`` distribution (the standard train/dev/test split). Each talk is one long sphere file; the
STM transcripts cut it into segments, which become manifest lines with ``offset`` and ``duration``, so training
reads only each segment's span and nothing is re-encoded. Segments marked ``ignore_time_segment_in_scoring``
are skipped.
"""

from asr.corpora.layouts import stm
from asr.corpora.preparation import Archive, fetch_for, parse_recipe_args, write_splits
from asr.errors import AsrError

ARCHIVE = Archive("https://www.openslr.org/resources/51/TEDLIUM_release-3.tgz",
                  "ad1e454d14d1ad550bc2564c462d87c7a7ec83d4dc2b9210f22ab4973b9eccdb")  # sha256 (torchaudio's)
SPLITS = ("train", "dev", "test")


def main(argv):
    args = parse_recipe_args("tedlium3", __doc__, argv)
    legacy = fetch_for(ARCHIVE, args) / "TEDLIUM_release-3" / "legacy"
    for split in SPLITS:
        stms = sorted((legacy / split / "stm").glob("*.stm"))
        if not stms:
            raise AsrError(f"{legacy / split / 'stm'}: no STM files")
        rows = [row for path in stms for row in stm(path, legacy / split / "sph" / (path.stem + ".sph"))]
        write_splits(args.data_dir, {split: rows})
    return 0
