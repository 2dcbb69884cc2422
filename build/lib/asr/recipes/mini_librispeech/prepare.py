"""Mini LibriSpeech (OpenSLR 31): ``asr prepare mini_librispeech`` -> ``train.jsonl`` (train-clean-5, ~5 h) and
``dev.jsonl`` (dev-clean-2), plus one manifest per subset. Same layout as LibriSpeech, so the same reader."""

import shutil
from pathlib import Path

from asr.corpora.preparation import Archive, parse_recipe_args, prepare_librispeech_layout

BASE = "https://www.openslr.org/resources/31/"
# md5 sums published in OpenSLR 31's md5sum.txt
ARCHIVES = {
    "train-clean-5": Archive(BASE + "train-clean-5.tar.gz", "5df7d4e78065366204ca6845bb08f490"),
    "dev-clean-2": Archive(BASE + "dev-clean-2.tar.gz", "6d7ab67ac6a1d2c993d050e16d61080d"),
}


def main(argv):
    args = parse_recipe_args("mini_librispeech", __doc__, argv)
    prepare_librispeech_layout(list(ARCHIVES), ARCHIVES, args)
    data_dir = Path(args.data_dir)
    shutil.copyfile(data_dir / "dev-clean-2.jsonl", data_dir / "dev.jsonl")
    return 0
