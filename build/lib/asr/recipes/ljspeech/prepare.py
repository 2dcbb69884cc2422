"""LJSpeech 1.1 (one speaker, 24 h): ``asr prepare ljspeech``.

Split as in ESPnet's ljspeech recipe: the last 500 lines of ``metadata.csv`` are held out, the first 250 of
them as ``dev.jsonl`` and the last 250 as ``test.jsonl``; the other 12,600 are ``train.jsonl``. Transcripts are
the normalised column (numbers and abbreviations spelled out). The 22.05 kHz wavs are resampled when loaded.
"""

from asr.corpora.layouts import ljspeech
from asr.corpora.preparation import Archive, fetch_for, parse_recipe_args, with_durations, write_splits

ARCHIVE = Archive("https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2",
                  "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5")  # sha256 (torchaudio's)
HELD_OUT = 500


def main(argv):
    args = parse_recipe_args("ljspeech", __doc__, argv)
    rows = with_durations(ljspeech(fetch_for(ARCHIVE, args) / "LJSpeech-1.1"))
    held = min(HELD_OUT, len(rows) // 5)  # tiny copies (tests) still get all three splits
    write_splits(args.data_dir, {"train": rows[:-held], "dev": rows[-held:][: held // 2],
                                 "test": rows[-held:][held // 2:]})
    return 0
