"""Your own data: ``asr prepare folder --input PATH [--format auto|sidecar|csv|kaldi|nemo]``.

- ``sidecar``: a folder of audio files, each with a ``.txt`` transcript of the same name;
- ``csv``: a CSV file with a ``path,text`` header (paths relative to the CSV's folder);
- ``kaldi``: a Kaldi data dir (``wav.scp`` + ``text`` + optional ``segments``);
- ``nemo``: an existing NeMo manifest (JSON lines), re-validated and normalised.

Utterances are split into ``train/dev/test.jsonl`` by a stable hash of the audio path and offset, so adding
data never moves an utterance between splits (``--dev_fraction``, ``--test_fraction``; 0 puts all in train).
"""

import argparse
import hashlib
from pathlib import Path

from asr.corpora import layouts
from asr.corpora.preparation import recipe_arguments, with_durations, write_splits
from asr.errors import AsrError


def detect(path: Path) -> str:
    if path.is_dir():
        return "kaldi" if (path / "wav.scp").is_file() else "sidecar"
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in (".json", ".jsonl"):
        return "nemo"
    raise AsrError(f"{path}: cannot tell its format; pass --format")


def split_of(audio: str, offset: float, dev: float, test: float) -> str:
    x = int(hashlib.sha1(f"{audio}:{offset}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if x < test else "dev" if x < test + dev else "train"


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare folder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="folder, CSV, Kaldi data dir or manifest")
    parser.add_argument("--format", default="auto", choices=["auto", "sidecar", "csv", "kaldi", "nemo"])
    parser.add_argument("--dev_fraction", type=float, default=0.05)
    parser.add_argument("--test_fraction", type=float, default=0.05)
    recipe_arguments(parser, "folder", downloads=False)
    args = parser.parse_args(argv)
    path = Path(args.input)
    if not path.exists():
        raise AsrError(f"{path}: no such file or folder")
    fmt = detect(path) if args.format == "auto" else args.format
    reader = {"sidecar": layouts.sidecar_folder, "csv": layouts.csv_table, "kaldi": layouts.kaldi,
              "nemo": layouts.nemo}[fmt]
    rows = with_durations(reader(path))
    if not rows:
        raise AsrError(f"{path}: no utterances found ({fmt} format)")
    write_splits(args.data_dir, {name: [r for r in rows if split_of(r.audio, r.offset, args.dev_fraction,
                                                                    args.test_fraction) == name]
                                 for name in ("train", "dev", "test")})
    return 0
