"""Beam search in worker processes: one pool per process, shared by all its threads. The server's HTTP workers,
its live sessions and corpus transcription use it.

flashlight's ``decode`` holds the GIL from start to end, because its Python binding releases nothing
(tests/test_beam.py). So a beam decode on any thread stalls every other thread of the process: the server's event
loop, the network's forward passes, the other sessions. Threads never decode side by side either. The same fact
makes one decoder safe to share: calls never interleave.

In worker processes the caller waits on a future with the GIL free, and decodes run in parallel, one per process.
Each worker builds its decoder once, from the same files. A pool of N processes holds N copies of the LM (KenLM's
binary format is memory-mapped, so the copies share pages).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from asr.beam import BeamOptions, BeamSearchDecoder
from asr.decode import Decoder, Hypothesis, as_numpy
from asr.errors import AsrError
from asr.text import Vocabulary

_decoder: BeamSearchDecoder | None = None  # the worker process's own
_everyone = None  # a barrier of all the pool's workers (given at start: it cannot travel with a task)


def _start(characters: str, lm: str | None, lexicon: str | None, options: BeamOptions, everyone) -> None:
    global _decoder, _everyone
    _decoder = BeamSearchDecoder(Vocabulary(characters), lm, lexicon, options)
    _everyone = everyone


def _decode(emissions: np.ndarray, lengths: np.ndarray) -> list[Hypothesis]:
    return _decoder.decode(emissions, lengths)


def _ready() -> int:
    # A worker holds its task until every worker holds one, so the pool's first tasks land one per worker.
    _everyone.wait(timeout=600)
    return os.getpid()


class DecoderPool(Decoder):
    """A :class:`asr.beam.BeamSearchDecoder` run by ``processes`` worker processes; the same answers."""

    def __init__(self, decoder: BeamSearchDecoder, processes: int):
        """``decoder``: built here first, so a bad LM or lexicon fails in the caller, in one line."""
        self.decoder = decoder
        self.processes = max(int(processes), 1)
        # spawn: a forked child would inherit the server's threads and locks mid-use.
        spawn = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.processes, mp_context=spawn, initializer=_start,
                                         initargs=(decoder.vocab.characters, decoder.lm, decoder.lexicon,
                                                   decoder.options, spawn.Barrier(self.processes)))
        # Every worker started and its decoder built now, not at the first decode: the first request does not wait
        # for a process and an LM to load, and a server's memory stands where it stays (docs/streaming.md).
        try:
            self.pids = sorted({f.result() for f in [self._pool.submit(_ready) for _ in range(self.processes)]})
        except (BrokenProcessPool, threading.BrokenBarrierError):
            raise AsrError("a beam-search worker process could not start (out of memory?)") from None

    def decode(self, log_probs, lengths) -> list[Hypothesis]:
        """Each utterance of the batch to the next free worker; the results in order."""
        emissions = as_numpy(log_probs)
        lengths = np.asarray(as_numpy(lengths), dtype=np.int64)
        try:
            futures = [self._pool.submit(_decode, np.ascontiguousarray(emissions[b:b + 1, : max(int(n), 1)]),
                                         lengths[b:b + 1]) for b, n in enumerate(lengths)]
            return [f.result()[0] for f in futures]
        except BrokenProcessPool:
            raise AsrError("a beam-search worker process died (out of memory?); the decoder pool is unusable") from None

    def describe(self) -> str:
        return self.decoder.describe()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
