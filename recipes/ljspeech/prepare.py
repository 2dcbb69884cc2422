"""LJSpeech 1.1 (one speaker, 24 h): ``asr prepare ljspeech``.

Split as in ESPnet's ljspeech recipe: the last 500 lines of ``metadata.csv`` are held out, the first 250 of
them as ``dev.jsonl`` and the last 250 as ``test.jsonl``; the other 12,600 are ``train.jsonl``. Transcripts are
the normalised column (numbers and abbreviations spelled out). The 22.05 kHz wavs are resampled when loaded.
"""

import argparse
from pathlib import Path

from asr.corpus import Archive, fetch, recipe_arguments, report, with_durations, write_split
from asr.corpus_formats import ljspeech

ARCHIVE = Archive("https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2",
                  "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5")  # sha256 (torchaudio's)
HELD_OUT = 500


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare ljspeech", description=__doc__)
    recipe_arguments(parser, "ljspeech")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir)
    downloads = Path(args.download_dir or data_dir / "downloads")
    root = fetch(ARCHIVE, downloads, downloads / "extracted", args.mirror, not args.skip_checksum) / "LJSpeech-1.1"
    rows = with_durations(ljspeech(root))
    held = min(HELD_OUT, len(rows) // 5)  # tiny copies (tests) still get all three splits
    splits = {"train": rows[:-held], "dev": rows[-held:][: held // 2], "test": rows[-held:][held // 2:]}
    for name, part in splits.items():
        report(f"{data_dir / name}.jsonl", write_split(data_dir / f"{name}.jsonl", part))
    return 0
