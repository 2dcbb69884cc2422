"""``run_if``: skip a test unless the machine has what it needs (after litgpt's ``RunIf``)."""

from __future__ import annotations

import pytest
import torch


def run_if(min_cuda_gpus: int = 0, bf16_cuda: bool = False) -> pytest.MarkDecorator:
    """A mark that skips the test without ``min_cuda_gpus`` CUDA devices (or bf16 on them); such tests are also
    marked ``gpu``, so ``make test-fast`` and ``-m 'not gpu'`` leave them out."""
    reasons = []
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus < min_cuda_gpus:
        reasons.append(f"needs {min_cuda_gpus} CUDA GPU(s), found {gpus}")
    if bf16_cuda and not (gpus and torch.cuda.is_bf16_supported()):
        reasons.append("needs a CUDA GPU with bf16")
    return pytest.mark.skipif(bool(reasons), reason="; ".join(reasons))
