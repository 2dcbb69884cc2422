"""Prepare the offline synthetic corpus: ``asr prepare synthetic [--train N] [--out_dir DIR] ...``.

Every option is a field of :class:`asr.corpora.synthetic.SyntheticConfig`; ``--config FILE.yaml`` reads them from YAML.
"""

from dataclasses import fields

from jsonargparse import ActionConfigFile, ArgumentParser

from asr.corpora.synthetic import SyntheticConfig, prepare


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="asr prepare synthetic", description=__doc__)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(SyntheticConfig, None, as_group=False)
    args = parser.parse_args(argv)
    prepare(SyntheticConfig(**{f.name: args[f.name] for f in fields(SyntheticConfig)}))
    return 0
