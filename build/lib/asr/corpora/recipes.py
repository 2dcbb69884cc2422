"""Finding and running recipes: ``asr prepare NAME`` for a recipe shipped with asr, ``asr prepare PATH`` for your own.

The shipped recipes are the package ``asr.recipes`` (the repository's ``recipes/`` folder, installed with the
package), so a name resolves the same from any working folder and from a wheel install. A path names a folder
holding ``prepare.py``, or the file itself; its ``main(argv)`` is run.
"""

from __future__ import annotations

import importlib.util
from importlib.resources import files
from pathlib import Path

from asr.errors import AsrError


def shipped() -> list[str]:
    """Names of the recipes shipped with asr."""
    root = Path(str(files("asr.recipes")))
    return sorted(p.parent.name for p in root.glob("*/prepare.py"))


def find(recipe: str) -> Path:
    """The ``prepare.py`` of ``recipe``: a shipped recipe's name, a folder holding ``prepare.py``, or the file."""
    path = Path(recipe)
    if len(path.parts) == 1 and recipe in shipped():
        return Path(str(files("asr.recipes"))) / recipe / "prepare.py"
    if path.is_file() and path.suffix == ".py":
        return path
    if (path / "prepare.py").is_file():
        return path / "prepare.py"
    raise AsrError(f"unknown recipe {recipe!r}: not a recipe name ({', '.join(shipped())}) "
                   f"nor a folder with a prepare.py")


def run(recipe: str, argv: list[str]) -> int:
    """Run a recipe's ``main(argv)``; returns its exit status."""
    script = find(recipe)
    spec = importlib.util.spec_from_file_location(f"asr_recipe_{script.parent.name}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise AsrError(f"{script}: a recipe's prepare.py must define main(argv)")
    return int(module.main(argv) or 0)
