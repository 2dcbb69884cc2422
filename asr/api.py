"""The Python API, in two lines::

    import asr
    model = asr.load("exp/synthetic/model.pt")          # or an exported model.onnx, or a training .ckpt
    result = model.transcribe("talk.mp3")                # result.text, result.segments, result.words

``load`` takes the decoding options of ``asr transcribe`` (a decoding config written by ``asr tune-lm``, an LM,
a lexicon, beam options), the device and the batch size; ``transcribe`` takes a path (any format, any length)
or a 16 kHz mono NumPy array. An ``.onnx`` model runs on ONNX Runtime without importing torch (greedy decoding;
beam search brings in torchaudio's decoder).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from asr.decode import Decoder, GreedyDecoder
from asr.errors import AsrError
from asr.extras import require
from asr.modelfolder import find
from asr.assemble import Result

if TYPE_CHECKING:
    from asr.chunked import ChunkSettings
from asr.transcribe import Transcriber
from asr.windows import SegmentOptions, Span


class Model:
    """A loaded recogniser: network (PyTorch or ONNX), decoder and transcription settings."""

    def __init__(self, network, decoder: Decoder | None = None, batch_seconds: float = 200.0,
                 max_segment: float = SegmentOptions.max_segment, path: str | None = None):
        self.network = network
        self.decoder = decoder or GreedyDecoder(network.vocab)
        self.batch_seconds = batch_seconds
        self.segmenting = SegmentOptions(max_segment=max_segment)
        self.path = path

    @property
    def vocab(self):
        return self.network.vocab

    def transcriber(self, timestamps: bool = True, progress: bool = False, keep_log_probs: bool = False) -> Transcriber:
        """A :class:`~asr.transcribe.Transcriber` with this model's settings (for many files, in order)."""
        return Transcriber(self.network, self.decoder, max_batch_seconds=self.batch_seconds, timestamps=timestamps,
                           keep_log_probs=keep_log_probs, segmenting=self.segmenting, progress=progress)

    def transcribe(self, audio: str | os.PathLike | np.ndarray, timestamps: bool = True) -> Result:
        """Transcribe one file (or a ``(samples,)`` float array at 16 kHz). Raises :class:`AsrError` if it
        cannot be read. The result has ``text``, ``segments`` (id, start, end, text, words) and ``words``
        (word, start, end, confidence; seconds)."""
        if isinstance(audio, np.ndarray):
            return self._transcribe_array(audio, timestamps)
        result = next(self.transcriber(timestamps).transcribe([Span(str(audio))]))
        if result.error:
            raise AsrError(result.error)
        return result

    def transcribe_files(self, paths: Iterable[str | os.PathLike | Span], timestamps: bool = True,
                         progress: bool = False) -> Iterator[Result]:
        """One result per input, in order; a file that fails gives a result with ``error`` set."""
        return self.transcriber(timestamps=timestamps, progress=progress).transcribe(paths)

    def stream(self, options=None, **fields):
        """A live session (:class:`asr.stream.Stream`): ``session.accept(samples)`` returns events as the audio
        comes, ``session.finish()`` the last ones. ``fields`` are :class:`asr.stream.StreamOptions` fields."""
        from asr.stream import Stream, StreamOptions

        return Stream(self, options or StreamOptions(**fields))

    def _transcribe_array(self, audio: np.ndarray, timestamps: bool) -> Result:
        result = next(self.transcriber(timestamps).transcribe([Span("<array>", samples=audio)]))
        if result.error:
            raise AsrError(result.error)
        return result


def load(path: str | os.PathLike, *, device: str = "auto", decode_config: str | None = None, lm: str | None = None,
         lexicon: str | None = None, lexicon_free: bool = False, batch_seconds: float = 200.0,
         max_segment: float = SegmentOptions.max_segment, vtln: bool = False, adapt: bool = False,
         chunked: "ChunkSettings | None" = None, decode_processes: int = 0, **beam_options) -> Model:
    """Load ``model.pt``, a training ``.ckpt``, an exported ``.onnx`` file or a model folder (``asr export --out
    DIR``: its network, decoded as its ``decode.yaml`` says unless options say otherwise), with its decoder.

    Greedy decoding unless a decoding config, an LM, a lexicon or a beam size is given; ``beam_options`` are
    :class:`asr.beam.BeamOptions` fields (``beam_size``, ``lm_weight``, ``word_score`` ...) overriding the
    config's. ``device``: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:1`` ... (PyTorch only).
    ``vtln``: read each utterance through the filterbank warp that the decoder scores best (:mod:`asr.vtln`;
    PyTorch only, 10 forward passes and decodings instead of one): for voices unlike the training ones.
    ``adapt``: tune the network's input layers to each utterance before reading it (:mod:`asr.adapt`; PyTorch
    only, about 10 times the network's work), after choosing its warp when ``vtln`` is set too.
    ``chunked``: read files in the network's chunked mode (:class:`asr.chunked.ChunkSettings`: what live
    recognition commits) instead of whole; PyTorch models trained for it only.
    ``decode_processes``: run beam search in this many worker processes (:mod:`asr.decoder_pool`), as a server
    does: flashlight holds the GIL while it decodes, so in the caller's threads it would stall all the others.
    """
    files = find(path)
    path, decode_config = files.model, decode_config or files.decode_config
    if path.endswith(".onnx"):
        from asr.onnxmodel import OnnxRecognizer

        network = OnnxRecognizer(path)
    else:
        require("torch", f"{path}: reading a PyTorch model (asr export makes an ONNX one, read without torch)")
        import torch

        from asr import checkpoint

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        network = checkpoint.load(path, device)
    if chunked is not None:
        from asr.chunked import ChunkedNetwork, can_chunk, why_not_chunked

        if not hasattr(network, "features"):
            raise AsrError(f"{path}: an ONNX model cannot be read in chunks (a PyTorch checkpoint can, with a "
                           f"streamable feature normalisation, features.chunked_normalize: running)")
        if not can_chunk(network):
            reason = why_not_chunked(network)
            if network.features.config.kind == "log_mel":
                reason += " (features.chunked_normalize: running makes one that can)"
            raise AsrError(f"{path}: {reason}")
        network = ChunkedNetwork(network, chunked)
    decoder = None
    if decode_config or lm or lexicon or beam_options.get("beam_size"):
        from asr.beam import decoder_for

        decoder = decoder_for(network.vocab, decode_config, lm, lexicon, lexicon_free, **beam_options)
        if decode_processes > 0 and not isinstance(decoder, GreedyDecoder):
            from asr.decoder_pool import DecoderPool

            decoder = DecoderPool(decoder, decode_processes)
    speaker = None
    if vtln and getattr(getattr(network, "features", None), "config", None) is not None \
            and network.features.config.kind != "log_mel":
        raise AsrError(f"{path}: --vtln warps a log-mel filterbank, and this model's front-end is an encoder "
                       f"({network.features.config.kind})")
    if vtln:
        from asr.vtln import SpeakerNormalized

        speaker = SpeakerNormalized(network, decoder)  # warps scored by the decoder that reads the result
    if adapt:
        from asr.adapt import Adapted

        network = Adapted(network, warps=speaker)  # adapted from the warp VTLN picks, when asked
    elif speaker is not None:
        network = speaker
    return Model(network, decoder, batch_seconds=batch_seconds, max_segment=max_segment, path=path)
