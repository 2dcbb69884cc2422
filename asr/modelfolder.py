"""A model folder: everything a deployment reads, in one place that can be copied as a unit.

``asr export --out DIR`` writes the network (``model.onnx``, or ``model.pt`` with ``--format pytorch``) and,
given a decoding config, its LM, lexicon and the config itself (``decode.yaml``, paths relative to the folder).
Every command that takes ``--model`` takes such a folder and decodes as its ``decode.yaml`` says unless flags
say otherwise.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from asr.errors import AsrError
from asr.fileio import atomic_path

MODEL_FILES = ("model.onnx", "model.int8.onnx", "model.pt")  # looked for in this order
DECODE_FILE = "decode.yaml"


@dataclass(frozen=True)
class ModelFiles:
    model: str  # the network's file
    decode_config: str | None = None  # the folder's decoding config, when it has one


def find(path: str | os.PathLike) -> ModelFiles:
    """The files of ``path``: a model file as it is, or a model folder's network and decoding config."""
    path = Path(path)
    if not path.is_dir():
        return ModelFiles(str(path))
    for name in MODEL_FILES:
        if (path / name).is_file():
            config = path / DECODE_FILE
            return ModelFiles(str(path / name), str(config) if config.is_file() else None)
    raise AsrError(f"{path}: a folder without a model ({', '.join(MODEL_FILES)}); make one with asr export --out")


def write(folder: str | os.PathLike, decode_config: str | None) -> str | None:
    """Copy a decoding config's LM (with ``lm.json``) and lexicon into ``folder`` and write its ``decode.yaml``
    pointing at the copies; returns that file (None without a config)."""
    if decode_config is None:
        return None
    from asr.beam import DecodeConfig
    from asr.lm import INFO_FILE

    folder = Path(folder)
    config = DecodeConfig.load(decode_config)

    def copy(source: str | None, name: str | None = None) -> str | None:
        if source is None:
            return None
        target = folder / (name or Path(source).name)
        if Path(source).resolve() != target.resolve():
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        return str(target)

    lm = copy(config.lm)
    if config.lm is not None and (Path(config.lm).parent / INFO_FILE).is_file():
        copy(str(Path(config.lm).parent / INFO_FILE))
    lexicon = copy(config.lexicon)
    target = folder / DECODE_FILE
    DecodeConfig(lm=lm, lexicon=lexicon, beam=config.beam).save(target, comment=f"exported from {decode_config}")
    return str(target)
