"""``asr export``: a checkpoint -> one ONNX file holding the whole recogniser, from waveform to log-probabilities.

The graph takes ``waves (batch, samples)`` float32 at 16 kHz and ``lengths (batch,)`` int64, and gives
``log_probs (batch, frames, vocab)`` and ``frames (batch,)``, with dynamic batch and time axes. The log-mel front-end
is inside: the STFT is written as matrix products with the windowed DFT basis (the same arithmetic as
``torch.stft``, exportable by every opset), followed by the model's mel filterbank, log and per-utterance
normalisation, so ``asr transcribe --model model.onnx`` needs neither torch nor a feature reimplementation.
The vocabulary, feature and model settings travel in the file's metadata (key ``asr``, JSON).

Exported with PyTorch's TorchScript-based exporter (``dynamo=False``): the dynamo exporter still has open bugs
with LSTMs. The BiLSTM's per-utterance reversal (:func:`asr.model.reverse_padded`) exports as ONNX's
``ReverseSequence``, which reverses each sequence within its own length, so padded batches stay exact. ``int8``
applies ONNX Runtime's dynamic quantisation, which turns the LSTMs (whose weights are initializers) into
``DynamicQuantizeLSTM`` and the matrix products into integer ones.
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from asr import checkpoint
from asr.features import normalize
from asr.fileio import atomic_path

OPSET = 17
METADATA_KEY = "asr"


class OnnxGraph(nn.Module):
    """The recogniser as one module: waveforms -> log-probabilities, built from a checkpoint's parts."""

    def __init__(self, recognizer: checkpoint.Recognizer):
        super().__init__()
        config = recognizer.features.config
        self.config = config
        n = torch.arange(config.n_fft, dtype=torch.float64)
        k = torch.arange(config.n_fft // 2 + 1, dtype=torch.float64)[:, None]
        window = torch.hann_window(config.win_length, periodic=True, dtype=torch.float64)
        window = nn.functional.pad(window, ((config.n_fft - config.win_length) // 2,) * 2)  # as torch.stft centres it
        angle = 2 * math.pi * k * n / config.n_fft
        basis = torch.cat([window * torch.cos(angle), -window * torch.sin(angle)])  # (2 * bins, n_fft)
        self.register_buffer("basis", basis.float().T.contiguous())  # (n_fft, 2 * bins)
        self.register_buffer("filterbank", recognizer.features.mel.mel_scale.fb.clone())  # (bins, n_mels)
        self.register_buffer("stats_mean", recognizer.features.stats_mean.clone())  # (n_mels,), maybe empty
        self.register_buffer("stats_std", recognizer.features.stats_std.clone())
        self.model = recognizer.model

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        hop, n_fft = cfg.hop_length, cfg.n_fft
        # Every waveform gets at least one frame (as LogMel pads one shorter than the FFT): frames of the
        # n_fft-padded signal.
        count = torch.div(waves.shape[1], hop, rounding_mode="floor") + 1
        # The STFT as matrix products: the signal cut into rows of one hop, and frame t = rows t, t+1, ...
        # (n_fft / hop of them), so each frame's DFT is a sum of row x basis-slice products. The same sums as a
        # strided convolution with the basis, but ONNX Runtime runs them as plain GEMMs with no im2col copy
        # (measured: the convolution was a quarter of the int8 model's time).
        waves = nn.functional.pad(waves, (0, n_fft + hop))
        rows = torch.div(waves.shape[1], hop, rounding_mode="floor")
        blocks = waves[:, : rows * hop].reshape(waves.shape[0], rows, hop)  # (batch, rows, hop)
        spec = 0
        for j in range(-(-n_fft // hop)):
            width = min(hop, n_fft - j * hop)
            spec = spec + torch.matmul(blocks[:, j: j + count, :width], self.basis[j * hop: j * hop + width])
        bins = self.basis.shape[1] // 2  # spec: (batch, frames, 2 bins), real parts then imaginary
        power = spec[..., :bins] ** 2 + spec[..., bins:] ** 2
        feats = torch.log(torch.matmul(power, self.filterbank) + 1e-6)  # (batch, frames, n_mels)
        frames = cfg.num_frames(lengths)
        mode = cfg.normalize  # the graph reads whole utterances
        return self.model(normalize(feats, frames, mode, cfg.prior_frames, self.stats_mean, self.stats_std), frames)


def metadata(recognizer: checkpoint.Recognizer) -> dict:
    """What the ONNX runtime needs besides the graph: the checkpoint's ``asr`` section and the frame duration."""
    section = checkpoint.asr_section(recognizer.model.config, recognizer.features.config, recognizer.vocab)
    return {**section, "frame_seconds": recognizer.frame_seconds}


def export_onnx(model_path: str | os.PathLike, out: str | os.PathLike, int8: bool = False) -> dict:
    """Export ``model_path`` to ``out`` (atomically); returns the size, opset and the largest difference of the
    exported graph's log-probabilities from PyTorch's on a test batch (fp32: float rounding only)."""
    import onnx

    recognizer = checkpoint.load(model_path, "cpu")
    graph = OnnxGraph(recognizer).eval()
    generator = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(2, 16000, generator=generator)
    lengths = torch.tensor([16000, 11000])
    with atomic_path(out, ".onnx") as tmp:
        fp32 = Path(str(tmp) + ".fp32.onnx") if int8 else tmp
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer's notes on LSTM shape checks and batch sizes: checked by tests/test_export.py (any batch,
            # any length, equal to PyTorch), so they are noise to a user.
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (waves, lengths), str(fp32), input_names=["waves", "lengths"],
                              output_names=["log_probs", "frames"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"waves": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                                            "log_probs": {0: "batch", 1: "time"}, "frames": {0: "batch"}})
        model = onnx.load(str(fp32))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata(recognizer))
        onnx.save(model, str(fp32))
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # The network's LSTMs and output layer only: int8 DFT and filterbank weights would wreck the log-mel
            # features (measured: 93 % WER on test), while the front-end costs little next to the BiLSTM.
            network = [n.name for n in model.graph.node
                       if n.op_type in ("LSTM", "MatMul", "Gemm") and n.name.startswith("/model/")]
            logging.getLogger().setLevel(logging.ERROR)  # its advice on pre-processing applies to CNNs
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, nodes_to_quantize=network)
            fp32.unlink()
        from asr.onnxmodel import OnnxRecognizer

        exported = OnnxRecognizer(tmp)
        expected, frames = recognizer.log_probs(waves, lengths)
        got = exported.run([w[:n].numpy() for w, n in zip(waves, lengths)])
        diff = max(float((torch.from_numpy(g) - expected[i, : int(frames[i])]).abs().max()) for i, g in enumerate(got))
    return {"megabytes": Path(out).stat().st_size / 1e6, "opset": OPSET, "max_abs_diff": diff}
