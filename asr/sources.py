"""Audio as a live source for :mod:`asr.stream`: a file played at real-time pace, or raw PCM from a pipe.

``arecord -f S16_LE -r 16000 -c 1 | asr stream -`` makes a microphone of standard input, as does an ``ffmpeg``
pipe (``ffmpeg -i URL -f s16le -ac 1 -ar 16000 -``); any other rate is resampled.
"""

from __future__ import annotations

import sys
import time
from typing import BinaryIO, Iterator

import numpy as np

from asr.audio import SAMPLE_RATE, AudioFile
from asr.errors import AsrError
from asr.pcm import PcmDecoder

BLOCK = 0.1  # seconds per block handed on: what a microphone's driver typically delivers


def file_blocks(path: str, realtime: bool = True, block: float = BLOCK) -> Iterator[np.ndarray]:
    """``path`` (any format) as 16 kHz float32 blocks of ``block`` seconds, each yielded no sooner than the
    audio before it would have played (``realtime``), or as fast as they are read."""
    started = time.monotonic()
    played = 0
    step = int(block * SAMPLE_RATE)
    with AudioFile(path) as f:
        for big in f.blocks():
            for i in range(0, big.size, step):
                piece = big[i: i + step]
                played += piece.size
                if realtime:
                    wait = started + played / SAMPLE_RATE - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                yield piece


def pcm_blocks(stream: BinaryIO | None = None, rate: int = SAMPLE_RATE, block: float = BLOCK) -> Iterator[np.ndarray]:
    """Raw 16-bit little-endian mono PCM at ``rate`` Hz from ``stream`` (standard input by default), as 16 kHz
    float32 blocks, as it arrives."""
    stream = stream or sys.stdin.buffer
    size = 2 * max(int(block * rate), 1)
    decode = PcmDecoder(rate)
    while True:
        data = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        last = not data
        samples = decode(data or b"", last=last)
        if samples.size:
            yield samples
        if last:
            if decode.half_sample:
                raise AsrError("standard input: the PCM stream ended on half a sample (an odd number of bytes)")
            return
