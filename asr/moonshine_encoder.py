"""Moonshine's audio encoder (Useful Sensors, MIT) run by onnxruntime: raw 16 kHz waveform of any length in,
its last hidden state out at about 41.7 frames/s.

Its weights ship only as an ONNX graph (``encoder_model.ort`` in ``moonshine-voice`` 0.0.4, ``encoder_model.onnx``
on the hub), so the graph is run as it is: one output layer, no gradients, which is all a frozen front-end needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIDE = 384  # samples per output frame (convolution strides 64 x 3 x 2): 24 ms


def num_frames(num_samples):
    """Output frames for waveforms of ``num_samples`` samples (an integer array or tensor; the graph's own
    arithmetic, and at least one)."""
    n = num_samples.clip(min=MIN_SAMPLES)
    n = (n - 127) // 64 + 1
    n = (n - 7) // 3 + 1
    return (n - 3) // 2 + 1


MIN_SAMPLES = 127 + 64 * (7 - 1 + 3 * (3 - 1))  # the shortest input that gives one frame: 895 samples, 56 ms


class MoonshineEncoder:
    """The encoder graph on ONNX Runtime (no torch: the torch-free runtime reads exported models with it too)."""

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for an unreadable graph
            raise ValueError(f"{path}: not a readable ONNX encoder ({str(e).splitlines()[0][:120]})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names[:1] != ["input_values"]:
            raise ValueError(f"{path}: not a Moonshine encoder (its inputs are {names})")
        self.masked = "attention_mask" in names
        self.path = Path(path)
        self.width = int(self.session.get_outputs()[0].shape[-1])

    def run(self, waves: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(batch, samples)`` float32 zero-padded 16 kHz, ``(batch,)`` valid samples -> ``(batch, frames, width)``
        (zero past each one's frames) and ``(batch,)`` valid frames.

        One utterance at a time, each without its padding: the graph's output depends on the padding, attention
        mask or not (measured on two test utterances: up to 1.8 apart, against features of mean size 0.3).
        """
        outs = []
        for wave, n in zip(waves, np.asarray(lengths).tolist()):
            x = np.ascontiguousarray(wave[None, : max(int(n), 1)], dtype=np.float32)
            if x.shape[1] < MIN_SAMPLES:  # shorter than one frame's receptive field: zero-padded to give one
                x = np.pad(x, ((0, 0), (0, MIN_SAMPLES - x.shape[1])))
            feeds = {"input_values": x}
            if self.masked:
                feeds["attention_mask"] = np.ones(x.shape, dtype=np.int64)
            outs.append(self.session.run(None, feeds)[0][0])
        frames = np.array([o.shape[0] for o in outs], dtype=np.int64)
        batch = np.zeros((len(outs), int(frames.max(initial=1)), self.width), dtype=np.float32)
        for i, o in enumerate(outs):
            batch[i, : o.shape[0]] = o
        return batch, frames
