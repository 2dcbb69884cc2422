"""asr: BiLSTM-CTC speech recognition.

The inference core is flat, one module per step of the data flow: ``audio`` (files to 16 kHz mono waveforms)
-> ``features`` (log-mel) -> ``model`` (the BiLSTM-CTC network) -> ``decode`` / ``beam`` (log-probabilities to
text); ``windows`` (spans of audio read as the network's windows, cut at pauses by ``vad``), ``transcribe`` (the
scheduler that batches them across files) and ``assemble`` (segments, words, times); beside them ``text``,
``manifest``, ``batching``, ``metrics``, ``output``, ``api`` and ``cli``. Training with Lightning lives in
:mod:`asr.training`, corpus preparation in :mod:`asr.corpora`, the server in :mod:`asr.server`; the core imports
none of them.
"""

__version__ = "0.1.0"


def load(path, **options):
    """Load a model for transcription: ``asr.load("exp/synthetic/model.pt").transcribe("talk.mp3")``.

    ``path``: ``model.pt``, a training ``.ckpt`` or an exported ``.onnx``. Options are those of
    :func:`asr.api.load` (device, decoding config, LM, beam options, batch size, ``max_segment``).
    """
    from asr.api import load as _load  # imported here: `import asr` stays light

    return _load(path, **options)
