"""asr: BiLSTM-CTC speech recognition.

The inference core is flat, one module per step of the data flow: ``audio`` (files to 16 kHz mono waveforms)
-> ``features`` (log-mel) -> ``model`` (the BiLSTM-CTC network) -> ``decode`` / ``beam`` (log-probabilities to
text) -> ``transcribe``; beside them ``text``, ``manifest``, ``batching``, ``metrics``, ``output`` and ``cli``.
Training with Lightning lives in :mod:`asr.training`, corpus preparation in :mod:`asr.corpora`; the core imports
neither.
"""

__version__ = "0.1.0"
