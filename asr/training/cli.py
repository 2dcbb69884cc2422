"""``asr train``: LightningCLI over :class:`ASRModule` and :class:`ASRDataModule`, with checkpoints, logs, resume.

Every Trainer argument passes straight through from the YAML config (``trainer:``) or the command line
(``--trainer.max_epochs 5``); nothing is copied by hand. ``defaults.yaml`` (beside this module) is read first,
then the recipe's config, which holds only overrides. On top of Lightning's defaults a run gets:

- ``checkpoint:`` a ModelCheckpoint (all its arguments configurable) writing ``<root>/checkpoints/`` every
  ``every_n_train_steps`` steps, keeping the newest ``save_top_k`` plus ``last.ckpt``;
- checkpoint files written atomically (a temporary file, then a rename), so a kill never leaves half a file;
- ``<root>/model.pt``, the inference model, written at the end of training (``export:``);
- TensorBoard and CSV logs in ``<root>/logs/version_N/``, with ``curves.png`` redrawn after each validation;
- a progress bar on a terminal, and otherwise a line every 30 s and per validation (``make demo > log``);
- ``--resume``: continue from ``<root>/checkpoints/last.ckpt`` (or ``--resume=PATH``), with the position in the
  epoch and the random generators' states, so the resumed run goes on exactly where the last checkpoint was.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import yaml
from lightning_fabric.plugins import CheckpointIO, TorchCheckpointIO
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from asr.errors import AsrError
from asr.fileio import atomic_path
from asr.progress import is_terminal
from asr.training.callbacks import EXPORT_NAME, ExportModel, PlotCurves, SkippedUtterances
from asr.training.datamodule import ASRDataModule
from asr.training.module import ASRModule
from asr.training.progress import LogLines

DEFAULTS = Path(__file__).resolve().parent / "defaults.yaml"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to ``NAME.tmp``, then rename: a checkpoint file is either complete or absent."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


def _checkpoint_dir(root: str | os.PathLike | None) -> str:
    return str(Path(root or ".") / "checkpoints")


def _export_path(root: str | os.PathLike | None) -> str:
    return str(Path(root or ".") / EXPORT_NAME)


class ASRCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.filename": "{epoch}-{step}",
            "checkpoint.every_n_train_steps": 1000,
            "checkpoint.save_last": True,
            # The newest checkpoints by step, not the best by a metric: what `asr average` and resume want.
            "checkpoint.monitor": "step",
            "checkpoint.mode": "max",
            "checkpoint.save_top_k": 5,
        })
        parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=_checkpoint_dir)
        parser.add_lightning_class_args(ExportModel, "export")
        parser.link_arguments("trainer.default_root_dir", "export.path", compute_fn=_export_path)
        parser.link_arguments("model.vocabulary", "data.vocabulary")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        if config.get("logger") in (None, True):
            root = config.get("default_root_dir") or "."
            tensorboard = TensorBoardLogger(root, name="logs")  # picks the next free logs/version_N
            kwargs["logger"] = [tensorboard, CSVLogger(root, name="logs", version=tensorboard.version)]
        plugins = config.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        kwargs["plugins"] = plugins
        bar = config.get("enable_progress_bar")
        if bar is None:  # Lightning's bar on a terminal; in a log file, a line now and then (asr.training.progress)
            bar = kwargs["enable_progress_bar"] = is_terminal()
        if not bar:
            defaults = self.trainer_defaults.get("callbacks") or []
            defaults = list(defaults) if isinstance(defaults, (list, tuple)) else [defaults]
            self.trainer_defaults = {**self.trainer_defaults, "callbacks": [*defaults, LogLines()]}
        return super().instantiate_trainer(**kwargs)


def _resume_arg(args: list[str]) -> tuple[list[str], str | None]:
    """Take ``--resume`` (-> "last"), ``--resume=PATH`` or ``--resume PATH.ckpt`` out of ``args``."""
    rest: list[str] = []
    resume: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--resume":
            resume = "last"
            if i + 1 < len(args) and args[i + 1].endswith(".ckpt"):
                resume = args[i + 1]
                i += 1
        elif a.startswith("--resume="):
            resume = a.split("=", 1)[1] or "last"
        else:
            rest.append(a)
        i += 1
    return rest, resume


# Keys that moved, as (old, new): an old config gets one line naming the new key instead of a parser error.
MOVED = {"model.model": "model.network"}  # the network's sizes; "model: model:" read as a stutter


def _config_files(args: list[str]) -> list[Path]:
    named = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--config"]
    named += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return [Path(p) for p in named if Path(p).is_file()]


def _check_moved_keys(args: list[str]) -> None:
    """Refuse configs and flags written for the old layout with a one-line error naming the new key."""
    for a in args:
        for old, new in MOVED.items():
            if a.startswith(f"--{old}."):
                flag = a.split("=", 1)[0]
                raise AsrError(f"{flag}: {old} is now {new}: use --{new}{flag[len(old) + 2:]}")
    for path in _config_files(args):
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue  # the parser reports it with its position
        if not isinstance(config, dict):
            continue
        for old, new in MOVED.items():
            section, key = old.split(".")
            if isinstance(config.get(section), dict) and key in config[section]:
                raise AsrError(f"{path}: {old} is now {new}: rename the key")
        callbacks = (config.get("trainer") or {}).get("callbacks") or []
        for cb in callbacks if isinstance(callbacks, list) else [callbacks]:
            if isinstance(cb, dict) and str(cb.get("class_path", "")).endswith("ExportModel"):
                raise AsrError(f"{path}: trainer.callbacks: {cb['class_path']} is no longer needed (asr train "
                               f"exports <trainer.default_root_dir>/model.pt itself): remove it")


def train(args: list[str], callbacks: list[Callback] = ()) -> LightningCLI:
    """Parse ``args`` (``--config C.yaml``, overrides, ``--resume``), then fit. Returns the CLI (trainer, model).

    ``callbacks`` are added to the run's own (the benchmark adds its clock this way).
    """
    args, resume = _resume_arg(args)
    _check_moved_keys(args)
    # `asr train` hands LightningCLI the arguments it has not parsed itself; sys.argv stays whole because
    # Lightning's DDP launcher re-runs it for the other ranks. So the warning about both being set is moot.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    cli = ASRCLI(
        ASRModule,
        ASRDataModule,
        args=args,
        run=False,
        parser_kwargs={"default_config_files": [str(DEFAULTS)], "prog": "asr train"},
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"callbacks": [PlotCurves(), SkippedUtterances()]},
    )
    cli.trainer.callbacks.extend(callbacks)
    ckpt_path = None
    if resume == "last":
        last = Path(cli.trainer.checkpoint_callback.dirpath) / "last.ckpt"
        if last.is_file():
            ckpt_path = str(last)
            print(f"resuming from {last}")
        else:
            print(f"no checkpoint at {last}: starting from scratch")
    elif resume:
        if not Path(resume).is_file():
            raise AsrError(f"{resume}: no such checkpoint to resume from")
        ckpt_path = resume
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli
