"""LibriSpeech (OpenSLR 12): ``asr prepare librispeech --subsets train-clean-100,dev-clean,test-clean``.

Writes ``DATA_DIR/<subset>.jsonl`` per subset and ``train.jsonl`` joining the chosen training subsets
(``train-960`` = all three). Audio stays in the extracted flac files.
"""

import argparse

from asr.corpora.preparation import Archive, prepare_librispeech_layout, recipe_arguments

BASE = "https://www.openslr.org/resources/12/"
# sha256 of each archive, as published with torchaudio's LIBRISPEECH dataset
ARCHIVES = {name: Archive(BASE + name + ".tar.gz", sha) for name, sha in {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}.items()}
ALIASES = {"train-960": ["train-clean-100", "train-clean-360", "train-other-500"], "all": list(ARCHIVES)}


def main(argv):
    parser = argparse.ArgumentParser(prog="asr prepare librispeech", description=__doc__)
    parser.add_argument("--subsets", default="train-clean-100,dev-clean,dev-other,test-clean,test-other",
                        help=f"comma-separated: {', '.join(ARCHIVES)}, or train-960 / all")
    recipe_arguments(parser, "librispeech")
    args = parser.parse_args(argv)
    subsets = []
    for s in args.subsets.split(","):
        for name in ALIASES.get(s.strip(), [s.strip()]):
            if name not in ARCHIVES:
                parser.error(f"unknown subset {name!r}; known: {', '.join(ARCHIVES)}, train-960, all")
            if name not in subsets:
                subsets.append(name)
    prepare_librispeech_layout(subsets, ARCHIVES, args)
    return 0
