"""Running an exported model with ONNX Runtime: the light deployment path, which never imports torch.

:class:`OnnxRecognizer` offers what :class:`asr.transcribe.Transcriber` needs of a model (``vocab``,
``frame_seconds``, ``run``), read from the file that ``asr export`` wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from asr.errors import AsrError
from asr.text import Vocabulary

METADATA_KEY = "asr"  # as asr.export writes it
FORMAT = 1  # the checkpoint format of the "asr" section (asr.checkpoint.FORMAT)


class OnnxRecognizer:
    """An ``asr export`` ONNX file: waveforms in, log-probabilities out, on ONNX Runtime's CPU provider."""

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise AsrError(f"{path}: no such model file" + (" (a directory)" if path.is_dir() else ""))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: one per core
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types from C++
            reason = str(e).strip().split("\n")[0][:160]
            raise AsrError(f"{path}: not a readable ONNX model ({reason})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise AsrError(f"{path}: an ONNX model without asr's metadata; export one with 'asr export'")
        try:
            section = json.loads(meta[METADATA_KEY])
            self.vocab = Vocabulary(section["vocabulary"])
            self.frame_seconds = float(section["frame_seconds"])
            self.sample_rate = int(section["feature_config"]["sample_rate"])
        except (ValueError, KeyError, TypeError):
            raise AsrError(f"{path}: asr metadata in this ONNX model is damaged") from None
        if section.get("format") != FORMAT:
            raise AsrError(f"{path}: model format {section.get('format')!r}, this asr reads {FORMAT}")
        self.kind = section["feature_config"].get("kind", "log_mel")
        expected = {"waves" if self.kind == "log_mel" else "feats", "lengths"}
        names = {i.name for i in self.session.get_inputs()}
        if names != expected:
            raise AsrError(f"{path}: unexpected ONNX inputs {sorted(names)}; export with 'asr export'")
        self.encoder = None if self.kind == "log_mel" else self._encoder(path.parent / section.get("encoder_file", ""),
                                                                        threads)
        self.path = path

    def _encoder(self, path: Path, threads: int):
        """An encoder model's front-end, the graph beside its network."""
        if not path.is_file():
            raise AsrError(f"{path}: missing: this {self.kind} model reads its encoder from it (asr export writes "
                           f"both into one folder)")
        if self.kind == "moonshine":
            from asr.moonshine_encoder import MoonshineEncoder

            try:
                return MoonshineEncoder(path, threads)
            except ValueError as e:
                raise AsrError(str(e)) from None
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types from C++
            raise AsrError(f"{path}: not a readable ONNX encoder ({str(e).strip().splitlines()[0][:160]})") from None
        return _WhisperGraph(session)

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz ``(samples,)`` waveforms -> each one's ``(frames, vocab)`` log-probabilities, one padded batch."""
        lengths = np.array([w.size for w in waves], dtype=np.int64)
        batch = np.zeros((len(waves), int(lengths.max(initial=1))), dtype=np.float32)
        for i, w in enumerate(waves):
            batch[i, : w.size] = w
        if self.encoder is None:
            feeds = {"waves": batch, "lengths": lengths}
        else:
            feats, frames = self.encoder.run(batch, lengths)
            feeds = {"feats": np.ascontiguousarray(feats, dtype=np.float32), "lengths": frames.astype(np.int64)}
        log_probs, frames = self.session.run(["log_probs", "frames"], feeds)
        return [log_probs[i, : int(n)] for i, n in enumerate(frames)]


class _WhisperGraph:
    """Whisper's exported encoder: 30 s at most per call, so longer audio is read in 30-s windows whose frames
    (1,500 each) are put end to end, as :class:`asr.pretrained.EncoderFeatures` does."""

    WINDOW = 480_000  # samples (asr.pretrained.WHISPER_WINDOW; not imported: that module needs torch)

    def __init__(self, session):
        self.session = session

    def run(self, waves: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        for start in range(0, max(waves.shape[1], 1), self.WINDOW):
            piece = np.clip(lengths - start, 1, self.WINDOW).astype(np.int64)
            parts.append(self.session.run(["feats"], {"waves": waves[:, start: start + self.WINDOW],
                                                       "lengths": piece})[0])
        frames = (np.maximum(lengths // 160, 1) + 1) // 2  # as WhisperEncoder.num_frames (not imported: torch)
        return np.concatenate(parts, 1), frames.astype(np.int64)
