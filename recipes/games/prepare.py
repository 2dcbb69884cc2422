"""Real English speech from Debian's game packages: ``asr prepare games [--out_dir DIR] [--games '[sky]'] ...``.

Every option is a field of :class:`asr.corpora.games.build.GamesConfig`; ``--config FILE.yaml`` reads them from
YAML. Writes ``OUT/{train,dev_real,test_real}.jsonl`` and ``OUT/lm_text.txt`` (recipes/games/README.md).
"""

from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from asr.corpora.games.build import GamesConfig, prepare


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="asr prepare games", description=__doc__)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(GamesConfig, None, as_group=False)
    args = parser.parse_args(argv)
    if args.exclude is None:  # the alignment clean-up's verdict, shipped beside this file
        args.exclude = str(Path(__file__).with_name("misaligned.txt"))
    prepare(GamesConfig(**{f.name: args[f.name] for f in fields(GamesConfig)}))
    return 0
