"""Dynamic batching: windows of audio from concurrent requests share the network's forward passes.

Each request transcribes on its own thread through a :class:`BatchedNetwork`, which looks like a model to
:class:`asr.transcribe.Transcriber` but hands its windows to one :class:`DynamicBatcher`. The batcher's worker
thread waits a few milliseconds for more work to arrive, then runs padded batches of at most
``max_batch_seconds`` of audio, shortest requests first, so a 3 s request is not queued behind the windows of
a 10-minute one. A BiLSTM batches well: a forward pass over 16 windows costs little more than over one.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.batching import pack_sorted
from asr.errors import Cancelled


@dataclass(order=True)
class _Item:
    priority: float  # seconds of audio in the whole request: shorter requests go first
    order: int  # then first come, first served
    wave: np.ndarray = field(compare=False)
    job: "_Job" = field(compare=False)
    index: int = field(compare=False)


class _Job:
    def __init__(self, size: int, cancelled: threading.Event | None):
        self.outputs: list[np.ndarray | None] = [None] * size
        self.left = size
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.cancelled = cancelled


class DynamicBatcher:
    """Runs ``network.run`` on batches gathered from many threads; start it, submit from anywhere, close it."""

    def __init__(self, network, max_batch_seconds: float = 200.0, wait: float = 0.005):
        self.network = network
        self.max_batch_seconds = max_batch_seconds
        self.wait = wait  # seconds to let concurrent requests join a batch
        self._items: list[_Item] = []
        self._lock = threading.Condition()
        self._order = itertools.count()
        self._closed = False
        self.batches = 0  # forward passes run, and windows through them (for /health and the benchmark)
        self.windows = 0
        self._thread = threading.Thread(target=self._loop, name="asr-batcher", daemon=True)
        self._thread.start()

    def submit(self, waves: list[np.ndarray], priority: float = 0.0,
               cancelled: threading.Event | None = None) -> list[np.ndarray]:
        """Each wave's log-probabilities, once the worker has run them; blocks the calling thread. Raises
        :class:`Cancelled` when ``cancelled`` is set before the work is done."""
        job = _Job(len(waves), cancelled)
        with self._lock:
            if self._closed:
                raise Cancelled("the server is shutting down")
            for i, wave in enumerate(waves):
                self._items.append(_Item(priority, next(self._order), wave, job, i))
            self._lock.notify()
        while not job.done.wait(0.05):
            if cancelled is not None and cancelled.is_set():
                raise Cancelled("cancelled")
        if job.error is not None:
            raise job.error
        return job.outputs

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._items and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
            time.sleep(self.wait)  # let the requests arriving together share this pass
            with self._lock:
                items = [it for it in self._items if not (it.job.cancelled and it.job.cancelled.is_set())]
                items.sort()
                # The first batch in priority order, at most max_batch_seconds of padded audio.
                lengths = [it.wave.size for it in items]
                take = pack_sorted(range(len(items)), lengths, self.max_batch_seconds * SAMPLE_RATE)[:1]
                batch = [items[i] for i in take[0]] if take else []
                self._items = items[len(batch):]
            self._run(batch)

    def _run(self, batch: list[_Item]) -> None:
        if not batch:
            return
        try:
            outputs = self.network.run([item.wave for item in batch])  # one padded forward pass
            for item, out in zip(batch, outputs):
                item.job.outputs[item.index] = out
                item.job.left -= 1
                if item.job.left == 0:
                    item.job.done.set()
        except Exception as e:  # the network failed: every job in this pass gets the error, the loop goes on
            for item in batch:
                item.job.error = e
                item.job.done.set()
        self.batches += 1
        self.windows += len(batch)


class BatchedNetwork:
    """A request's view of the shared network: ``run`` goes through the batcher, with the request's priority
    and cancellation."""

    def __init__(self, batcher: DynamicBatcher, priority: float = 0.0, cancelled: threading.Event | None = None):
        self.batcher = batcher
        self.vocab = batcher.network.vocab
        self.frame_seconds = batcher.network.frame_seconds
        self.priority = priority
        self.cancelled = cancelled

    def run(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        return self.batcher.submit(waves, self.priority, self.cancelled)
