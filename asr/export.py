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
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from asr import checkpoint
from asr.features import dft_basis, normalize, power_spectrum
from asr.fileio import atomic_path

OPSET = 17
METADATA_KEY = "asr"


class OnnxGraph(nn.Module):
    """The recogniser as one module: waveforms -> log-probabilities, built from a checkpoint's parts."""

    def __init__(self, recognizer: checkpoint.Recognizer):
        super().__init__()
        config = recognizer.features.config
        self.config = config
        self.register_buffer("basis", dft_basis(config.n_fft, config.win_length))  # (n_fft, 2 * bins)
        self.register_buffer("filterbank", recognizer.features.mel.mel_scale.fb.clone())  # (bins, n_mels)
        self.register_buffer("stats_mean", recognizer.features.stats_mean.clone())  # (n_mels,), maybe empty
        self.register_buffer("stats_std", recognizer.features.stats_std.clone())
        self.model = recognizer.model

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        hop = cfg.hop_length
        # Every waveform gets at least one frame (as LogMel pads one shorter than the FFT): frames of the
        # n_fft-padded signal.
        count = torch.div(waves.shape[1], hop, rounding_mode="floor") + 1
        power = power_spectrum(waves, self.basis, hop, count)
        feats = torch.log(torch.matmul(power, self.filterbank) + 1e-6)  # (batch, frames, n_mels)
        frames = cfg.num_frames(lengths)
        mode = cfg.normalize  # the graph reads whole utterances
        return self.model(normalize(feats, frames, mode, cfg.prior_frames, self.stats_mean, self.stats_std), frames)


class NetworkGraph(nn.Module):
    """An encoder model's network alone: ``feats (batch, frames, dim)``, ``frames (batch,)`` -> log-probabilities
    (its encoder is a graph of its own beside it)."""

    def __init__(self, recognizer: checkpoint.Recognizer):
        super().__init__()
        self.model = recognizer.model

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(feats, frames)


ENCODER_FILE = "encoder"  # + the graph's suffix: an encoder model's front-end, beside its network


def export_encoder(recognizer: checkpoint.Recognizer, folder: Path) -> str:
    """Write the front-end of an encoder model into ``folder`` -> its file name: Whisper's encoder exported from
    our module (waves, lengths -> feats, frames; 30 s at most per call), Moonshine's graph copied as it is."""
    features = recognizer.features
    source = features.file()
    if source is not None:
        name = ENCODER_FILE + source.suffix
        with atomic_path(folder / name, source.suffix) as tmp:
            shutil.copyfile(source, tmp)
        return name
    name = ENCODER_FILE + ".onnx"
    waves, lengths = 0.1 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(0)), torch.tensor([32000, 20000])
    with atomic_path(folder / name, ".onnx") as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic: the result is checked below
        torch.onnx.export(features, (waves, lengths), str(tmp), input_names=["waves", "lengths"],
                          output_names=["feats", "frames"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"waves": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                                        "feats": {0: "batch", 1: "time"}, "frames": {0: "batch"}})
    return name


def metadata(recognizer: checkpoint.Recognizer) -> dict:
    """What the ONNX runtime needs besides the graph: the checkpoint's ``asr`` section and the frame duration."""
    section = checkpoint.asr_section(recognizer.model.config, recognizer.features.config, recognizer.vocab)
    return {**section, "frame_seconds": recognizer.frame_seconds}


def export_onnx(model_path: str | os.PathLike, out: str | os.PathLike, int8: bool = False) -> dict:
    """Export ``model_path`` to ``out`` (atomically); returns the size, opset and the largest difference of the
    exported graph's log-probabilities from PyTorch's on a test batch (fp32: float rounding only)."""
    import onnx

    recognizer = checkpoint.load(model_path, "cpu")
    generator = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(2, 16000, generator=generator)
    lengths = torch.tensor([16000, 11000])
    meta = metadata(recognizer)
    if recognizer.features.config.kind == "log_mel":
        graph, inputs, names = OnnxGraph(recognizer).eval(), (waves, lengths), ["waves", "lengths"]
    else:  # the encoder in a file of its own, beside the network
        meta["encoder_file"] = export_encoder(recognizer, Path(out).parent)
        graph, inputs, names = NetworkGraph(recognizer).eval(), recognizer.feats(waves, lengths), ["feats", "lengths"]
    with atomic_path(out, ".onnx") as tmp:
        fp32 = Path(str(tmp) + ".fp32.onnx") if int8 else tmp
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer's notes on LSTM shape checks and batch sizes: checked by tests/test_export.py (any batch,
            # any length, equal to PyTorch), so they are noise to a user.
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, inputs, str(fp32), input_names=names,
                              output_names=["log_probs", "frames"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={names[0]: {0: "batch", 1: "samples"}, names[1]: {0: "batch"},
                                            "log_probs": {0: "batch", 1: "time"}, "frames": {0: "batch"}})
        model = onnx.load(str(fp32))
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
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
