"""The package's layering: a flat inference core, Lightning only in asr/training, corpus preparation only in
asr/corpora, the server in asr/server, and benchmarks outside the package."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from asr.cli import main
from asr.corpora import recipes

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asr"
BENCHMARKS = ROOT / "benchmarks"
LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
# The CLI hands `asr train` and `asr prepare` to the other layers from inside those two handlers only.
CLI_HANDOFFS = {"asr.training.cli", "asr.training.predict", "asr.corpora.recipes", "asr.corpora.shar",
                "asr.server.app"}


def imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at_top_level)`` for every import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(n, id(node) in top) for n in names]
    return found


def layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else "core"


def is_under(module: str, roots) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_layer_imports_only_what_it_may(path):
    where = layer(path)
    for module, top in imports(path):
        handoff = path.name == "cli.py" and where == "core" and not top and is_under(module, CLI_HANDOFFS)
        if where != "training" and not handoff:
            assert not is_under(module, LIGHTNING), f"{path.name} imports {module}: Lightning belongs in asr/training"
            assert not is_under(module, ["asr.training"]), f"{path.name} imports {module}"
        if where == "core" and not handoff:
            assert not is_under(module, ["asr.corpora"]), f"{path.name}: the core never imports corpus preparation"
            assert not is_under(module, ["asr.server"]), f"{path.name}: the core never imports the server"
        if where == "server":
            assert not is_under(module, ["asr.training", "asr.corpora"]), f"{path.name}: serving needs neither"
        if where == "corpora":
            assert not is_under(module, ["asr.training"]), f"{path.name}: corpus preparation does not need training"
        if where == "training":  # signal effects are shared with synthesis; the rest of corpora is not training's
            assert not is_under(module, ["asr.corpora"]) or is_under(module, ["asr.corpora.dsp"]), \
                f"{path.name} imports {module}"
        assert not is_under(module, ["benchmarks"]), f"{path.name}: the package never imports the benchmarks"


def test_the_core_holds_no_benchmark_or_signal_effects():
    assert not list(PACKAGE.glob("bench*.py")) and not (PACKAGE / "training" / "bench.py").exists()
    assert not (PACKAGE / "dsp.py").exists()


def _docstrings(tree: ast.AST) -> set[int]:
    bodies = [n.body for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))]
    return {id(b[0].value) for b in bodies if b and isinstance(b[0], ast.Expr) and isinstance(b[0].value, ast.Constant)}


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmarks_hide_no_code_from_this_test(path):
    """Every module a benchmark runs is a file this test reads: no ``python -c`` code strings; and what it
    imports of the project exists."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            assert node.value != "-c" and "import " not in node.value, f"{path.name}: code in a string: {node.value!r}"
    modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    for module in modules:
        parts = module.split(".")
        if parts[0] in ("asr", "benchmarks"):
            where = ROOT.joinpath(*parts)
            assert where.with_suffix(".py").is_file() or where.is_dir(), f"{path.name} imports {module}: not there"


def test_the_network_module_imports_no_decoder_cli_or_lightning():
    names = [m for m, _ in imports(PACKAGE / "model.py")]
    assert not [m for m in names if is_under(m, ["asr.decode", "asr.beam", "asr.cli", "asr.transcribe", *LIGHTNING])]


def test_transcribing_a_file_loads_neither_lightning_nor_training_nor_corpora(tiny_model, speech):
    code = (
        "import sys\n"
        "from asr.cli import main\n"
        f"assert main(['transcribe', '--model', {str(tiny_model)!r}, '--format', 'json', {str(speech[0][0])!r}]) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', "
        "'lightning_fabric') or m.startswith(('asr.training', 'asr.corpora')))\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out


def test_every_recipe_folder_ships_in_the_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {f"asr.recipes.{p.parent.name}" for p in (ROOT / "recipes").glob("*/prepare.py")}
    assert folders and folders <= listed
    assert recipes.shipped() == sorted(f.rsplit(".", 1)[1] for f in folders)


def test_prepare_finds_shipped_recipes_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert recipes.find("synthetic") == ROOT / "recipes" / "synthetic" / "prepare.py"


def test_prepare_runs_a_recipe_folder_of_ones_own(tmp_path, monkeypatch):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "prepare.py").write_text("from pathlib import Path\n"
                                    "def main(argv):\n    Path(argv[0]).write_text('prepared')\n    return 0\n")
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", str(own), str(tmp_path / "out.txt")]) == 0
    assert (tmp_path / "out.txt").read_text() == "prepared"


def test_an_unknown_recipe_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "nosuch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr: error: unknown recipe 'nosuch'") and "synthetic" in err and "\n" not in err
