"""CMU AN4 (census database, the corpus deepspeech.pytorch starts from): ``asr prepare an4``.

``train.jsonl`` (an4_train minus every 20th utterance), ``dev.jsonl`` (those held-out utterances) and
``test.jsonl`` (an4_test). The sphere files are 16 kHz PCM that soundfile reads directly: no conversion.
"""

from asr.corpora.layouts import an4
from asr.corpora.preparation import Archive, fetch_for, parse_recipe_args, with_durations, write_splits

# The CMU original; sha256 as pinned by NVIDIA NeMo's AN4 tutorials, which mirror the same file.
ARCHIVE = Archive("http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz",
                  "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12")
DEV_EVERY = 20


def main(argv):
    args = parse_recipe_args("an4", __doc__, argv)
    root = fetch_for(ARCHIVE, args) / "an4"
    train = with_durations(an4(root, "train"))
    write_splits(args.data_dir, {"train": [r for i, r in enumerate(train) if i % DEV_EVERY != DEV_EVERY - 1],
                                 "dev": [r for i, r in enumerate(train) if i % DEV_EVERY == DEV_EVERY - 1],
                                 "test": with_durations(an4(root, "test"))})
    return 0
