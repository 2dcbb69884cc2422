"""Install only what you use: a model folder that deploys as one, a core that transcribes without torch (greedy
and beam + LM), one-line errors naming a missing extra; and the wheel itself, installed into fresh virtual
environments (core, core + serve), doing just that."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from asr.cli import main
from asr.lexicon import write_lexicon
from lm_fixtures import write_arpa

ROOT = Path(__file__).resolve().parent.parent
# Run `asr ARGS` with torch, torchaudio and Lightning made impossible to import: what the core install has.
NO_TORCH = ("import sys\n"
            "for name in ('torch', 'torchaudio', 'pytorch_lightning', 'lightning', 'fastapi'):\n"
            "    sys.modules[name] = None\n"
            "from asr.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio') and sys.modules[m]]\n"
            "sys.exit(code)\n")


def no_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def decode_config(tmp_path_factory) -> Path:
    """A word LM over the test sentences, its lexicon, and a decoding config naming them."""
    from conftest import SENTENCES

    root = tmp_path_factory.mktemp("lm")
    words = sorted({w for s in SENTENCES for w in s.split()})
    write_arpa(root / "lm.arpa", {w: -1.5 for w in words}, {("<s>", "the"): -0.3})
    write_lexicon(root / "lexicon.txt", words)
    config = root / "decode.yaml"
    config.write_text(yaml.safe_dump({"lm": "lm.arpa", "lexicon": "lexicon.txt", "beam_size": 20, "lm_weight": 0.5}))
    return config


def export(model: Path, out: Path, *args: str) -> Path:
    assert main(["export", "--model", str(model), "--out", str(out), *args]) == 0
    return out


def test_a_model_folder_holds_the_network_lm_lexicon_and_config(tiny_model, decode_config, tmp_path):
    from asr.api import load

    folder = export(tiny_model, tmp_path / "deploy", "--decode-config", str(decode_config))
    assert sorted(p.name for p in folder.iterdir()) == ["decode.yaml", "lexicon.txt", "lm.arpa", "model.onnx"]
    config = yaml.safe_load((folder / "decode.yaml").read_text())
    assert config["lm"] == "lm.arpa" and config["lexicon"] == "lexicon.txt"  # relative: the folder moves whole
    moved = Path(shutil.move(str(folder), str(tmp_path / "elsewhere")))
    pytorch = export(tiny_model, tmp_path / "pt", "--format", "pytorch", "--decode-config", str(decode_config))
    assert (pytorch / "model.pt").is_file()
    for model in (moved, pytorch):
        assert load(model).decoder.describe() == "beam 20 + lexicon + LM (weight 0.5, word score 0)"
    assert load(moved, beam_size=3).decoder.describe().startswith("beam 3")  # flags still override the folder's
    assert export(tiny_model, tmp_path / "greedy").joinpath("model.onnx").is_file()
    assert load(tmp_path / "greedy").decoder.describe() == "greedy"


def test_the_folder_alone_does_not_make_an_onnx_file(tiny_model, decode_config, tmp_path, capsys):
    assert main(["export", "--model", str(tiny_model), "--out", str(tmp_path / "m.onnx"),
                 "--decode-config", str(decode_config)]) == 1
    assert "model folder" in capsys.readouterr().err
    assert main(["transcribe", "--model", str(tmp_path), "x.wav"]) == 1
    assert "a folder without a model" in capsys.readouterr().err


def test_the_core_transcribes_evaluates_and_streams_an_onnx_folder_with_the_lm_without_torch(
        tiny_model, decode_config, speech, speech_manifest, tmp_path):
    folder = export(tiny_model, tmp_path / "deploy", "--decode-config", str(decode_config))
    result = no_torch("transcribe", "--model", str(folder), "--format", "json", str(speech[0][0]))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) >= {"text", "segments", "words"}
    result = no_torch("evaluate", "--model", str(folder), "--manifest", str(speech_manifest))
    assert result.returncode == 0 and "[beam 20 + lexicon + LM" in result.stdout, result.stderr
    result = no_torch("stream", "--model", str(folder), "--no-realtime", "--format", "json", str(speech[0][0]))
    assert result.returncode == 0 and '"type": "final"' in result.stdout, result.stderr


def test_a_missing_extra_is_named_in_one_line(tiny_model, tmp_path):
    for args, extra in ((["transcribe", "--model", str(tiny_model), "x.wav"], "torch"),
                        (["serve", "--model", str(tiny_model)], "serve"),
                        (["train", "--config", "c.yaml"], "train"),
                        (["export", "--model", str(tiny_model), "--out", str(tmp_path / "m.onnx")], "torch")):
        result = no_torch(*args)
        err = result.stderr.strip()
        assert result.returncode == 1 and "\n" not in err, err
        assert err.startswith("asr: error: ") and f"pip install 'asr[{extra}]'" in err, err


def test_the_extras_table_follows_pyproject():
    """Each extra's modules in asr.extras.EXTRAS (what `require` looks for) are installed by that extra's
    distributions in pyproject.toml (with the extras it includes), every extra has its entry, and the README's
    install lines name every extra."""
    import importlib.metadata
    import re
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def canonical(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    def dists(extra: str) -> set[str]:
        out = set()
        for req in extras[extra]:
            if included := re.fullmatch(r"asr\[(.+)\]", req):
                out |= {d for e in included.group(1).split(",") for d in dists(e)}
            else:
                out.add(canonical(re.match(r"[A-Za-z0-9_.-]+", req).group(0)))
        return out

    from asr.extras import EXTRAS

    assert set(EXTRAS) == set(extras) - {"test", "all"}
    assert set(re.findall(r"asr\[(\w+)\]", extras["all"][0].replace(",", "] asr["))) >= set(EXTRAS)
    providers = importlib.metadata.packages_distributions()  # import name -> the distributions that install it
    for extra, modules in EXTRAS.items():
        for module in modules:
            assert {canonical(d) for d in providers.get(module, [])} & dists(extra), \
                f"{module} (EXTRAS[{extra!r}]) is installed by none of asr[{extra}]'s {sorted(dists(extra))}"
    readme = (ROOT / "README.md").read_text()
    assert set(re.findall(r"'asr\[(\w+)\]'", readme)) == set(EXTRAS) | {"all"}


# -- the wheel in fresh virtual environments --------------------------------------------------------------

def venv(path: Path, *requirements: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                   check=True, timeout=900)
    return python


def megabytes(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w",
                    str(out), str(ROOT)], check=True, timeout=600)
    return next(out.glob("asr-*.whl"))


@pytest.fixture(scope="module")
def deploy(streaming_model, decode_config, tmp_path_factory) -> Path:
    return export(streaming_model, tmp_path_factory.mktemp("deploy") / "model", "--decode-config", str(decode_config))


@pytest.mark.slow
def test_the_wheel_s_core_install_transcribes_with_beam_and_lm_and_has_no_torch(wheel, deploy, speech, tmp_path):
    python = venv(tmp_path / "core", str(wheel))
    asr = tmp_path / "core" / "bin" / "asr"
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    files = [str(p) for p, _ in speech[:3]]
    out = subprocess.run([str(asr), "transcribe", "--model", str(deploy), *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert [line.split("\t")[1] for line in out.stdout.splitlines()] == [t for _, t in speech[:3]]
    manifest = tmp_path / "three.jsonl"
    import soundfile as sf

    manifest.write_text("".join(json.dumps({"audio_filepath": p, "duration": sf.info(p).duration, "text": t}) + "\n"
                                for p, (_, t) in zip(files, speech[:3])))
    out = subprocess.run([str(asr), "evaluate", "--model", str(deploy), "--manifest", str(manifest)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "WER 0.00 %" in out.stdout, out.stdout + out.stderr
    print(f"core environment: {megabytes(tmp_path / 'core'):.0f} MB")


@pytest.mark.slow
def test_the_wheel_with_serve_serves_the_folder_to_the_openai_client(wheel, deploy, speech, tmp_path):
    import openai
    from tests.test_serve import free_port

    venv(tmp_path / "serve", f"{wheel}[serve]")
    port = free_port()
    proc = subprocess.Popen([str(tmp_path / "serve" / "bin" / "asr"), "serve", "--model", str(deploy), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=3)
        for _ in range(300):
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stdout.read())
                time.sleep(0.2)
        with open(speech[2][0], "rb") as f:
            assert client.audio.transcriptions.create(model="asr", file=f).text == speech[2][1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"serve environment: {megabytes(tmp_path / 'serve'):.0f} MB")
