"""``asr train``: LightningCLI over :class:`ASRModule` and :class:`ASRDataModule`.

Every Trainer argument passes straight through from the YAML config (``trainer:``) or the command line
(``--trainer.max_epochs 5``); nothing is copied by hand. ``configs/defaults.yaml`` is read first, then
the recipe's config, which holds only overrides.
"""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.cli import LightningCLI

from asr.datamodule import ASRDataModule
from asr.training import ASRModule

DEFAULTS = Path(__file__).resolve().parent / "configs" / "defaults.yaml"


def train(args: list[str]) -> LightningCLI:
    """Parse ``args`` (``--config C.yaml`` and overrides), then fit. Returns the CLI (trainer and model)."""
    cli = LightningCLI(
        ASRModule,
        ASRDataModule,
        args=args,
        run=False,
        parser_kwargs={"default_config_files": [str(DEFAULTS)], "prog": "asr train"},
        save_config_kwargs={"overwrite": True},
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli
