"""Mozilla Common Voice, from the archive you downloaded (it needs a login at commonvoice.mozilla.org):

    asr prepare commonvoice --archive cv-corpus-17.0-2024-03-15-en.tar.gz --language en

(The date is part of the release's name as Mozilla publishes it, not a measurement: release 17.0 is the example
the recipe's README follows, recipes/commonvoice/README.md.)

Reads ``cv-corpus-<release>/<language>/{train,dev,test}.tsv``, converts the mp3 clips to 16 kHz mono flac in
parallel (``DATA_DIR/<release>/<language>/clips/``) and writes ``train/dev/test.jsonl`` beside them. The
model's alphabet is a-z and apostrophe: sentences with other letters (most non-English text) are left out and
counted. Pass ``--checksum`` with the sha256 shown on the download page to have the archive verified.
"""

import argparse
from dataclasses import replace
from pathlib import Path

from asr.corpora.layouts import commonvoice
from asr.corpora.preparation import Archive, convert, local_archive, with_durations, write_splits
from asr.errors import AsrError

SPLITS = ("train", "dev", "test")


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare commonvoice", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", required=True, help="cv-corpus-<release>-<language>.tar.gz")
    parser.add_argument("--language", default="en")
    parser.add_argument("--checksum", help="sha256 of the archive, from the download page")
    parser.add_argument("--data_dir", default="data/commonvoice")
    parser.add_argument("--jobs", type=int, default=0, help="conversion processes (default: one per core)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    extracted = local_archive(args.archive, data_dir / "extracted", Archive(str(args.archive), args.checksum))
    lang_dirs = sorted(extracted.glob(f"cv-corpus-*/{args.language}"))
    if not lang_dirs:
        raise AsrError(f"{args.archive}: no cv-corpus-*/{args.language}/ folder inside")
    lang_dir = lang_dirs[-1]
    release = lang_dir.parent.name.removeprefix("cv-corpus-")
    out = data_dir / release / args.language
    for split in SPLITS:
        rows = list(commonvoice(lang_dir, split))
        flac = [str(out / "clips" / (Path(r.audio).stem + ".flac")) for r in rows]
        for err in convert([(r.audio, f) for r, f in zip(rows, flac)], args.jobs, desc=f"{split} mp3 -> flac"):
            print(f"asr: error: {err} (left out)")
        rows = with_durations(replace(r, audio=f, duration=None) for f, r in zip(flac, rows) if Path(f).exists())
        write_splits(out, {split: rows})
    return 0
