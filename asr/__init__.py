"""asr: BiLSTM-CTC speech recognition.

The data flow, one module per step: ``audio`` (files to 16 kHz mono waveforms) -> ``features`` (log-mel)
-> ``model`` (BiLSTM-CTC network) -> ``decode`` (log-probabilities to text) -> ``transcribe``.
``text`` holds the normaliser and vocabulary, ``data`` the manifests and batching, ``training`` the
LightningModule, ``metrics`` WER/CER and ``cli`` the ``asr`` command.
"""

__version__ = "0.1.0"
