"""Raw 16-bit PCM -> float32 samples at 16 kHz, for every place that takes raw audio: the live protocols, a pipe
into ``asr stream -``, :meth:`asr.stream.Stream.accept_pcm16`. One decoder for all of them.

Bytes arrive in pieces of any size. An odd byte at a piece's end is kept for the next piece, and other rates go
through soxr's streaming resampler, so the pieces join without a seam.
"""

from __future__ import annotations

import numpy as np

from asr.audio import SAMPLE_RATE


def pcm16_samples(data: bytes) -> np.ndarray:
    """Little-endian 16-bit mono PCM (an even number of bytes) -> float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class PcmDecoder:
    """16-bit little-endian mono PCM at ``rate`` Hz, piece by piece -> float32 at 16 kHz."""

    def __init__(self, rate: int = SAMPLE_RATE):
        self.rate = rate
        self._odd = b""
        self._soxr = None
        if rate != SAMPLE_RATE:
            import soxr

            self._soxr = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")

    @property
    def half_sample(self) -> bool:
        """Whether an odd byte is held back (a stream that ends so ended on half a sample)."""
        return bool(self._odd)

    def __call__(self, data: bytes, last: bool = False) -> np.ndarray:
        """The samples of ``data`` (and of the byte held from before); ``last``: the stream ends here, so the
        resampler gives what it still holds."""
        data = self._odd + data
        whole = len(data) - len(data) % 2
        data, self._odd = data[:whole], data[whole:]
        samples = pcm16_samples(data)
        return samples if self._soxr is None else self._soxr.resample_chunk(samples, last=last)
