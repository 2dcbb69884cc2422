"""Audio files -> 16 kHz mono float32 waveforms, whole or block by block, without torch.

Files that libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, ...) go through soundfile; every other container
FFmpeg knows (m4a/aac from phones, webm/opus from browsers, mp4/mkv video, ...) through PyAV, which ships FFmpeg's
libraries, so nothing has to be installed beside Python packages. Both are read in blocks: an hour-long file
never has to be decoded whole. Channels are averaged and the rate converted with soxr, whose streaming
resampler gives the same samples block by block as in one go. The inference path (ONNX included) uses this
module without importing torch; :func:`load_audio` hands training and the PyTorch model a tensor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import soundfile as sf

from asr.errors import AsrError

if TYPE_CHECKING:
    import torch

SAMPLE_RATE = 16_000  # Hz; every model and feature in asr works at this rate
# File names taken for audio when a folder is searched (corpus layouts, augmentation folders, transcription).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".sph", ".aac", ".webm", ".mp4", ".mkv",
                  ".mov", ".wma", ".aiff", ".aif", ".oga")
BLOCK_SECONDS = 30.0  # seconds read per block: large enough to amortise calls, small next to any memory budget


class AudioError(AsrError):
    """A file that cannot be read as audio."""


class AudioFile:
    """An opened audio file: its native rate and duration, and its samples as 16 kHz mono blocks.

    Use as a context manager; ``blocks()`` yields float32 arrays of at most ``seconds`` seconds each.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        _check_path(self.path)
        self._sf: sf.SoundFile | None = None
        self._av = None
        try:
            self._sf = sf.SoundFile(str(self.path))
            self.rate = self._sf.samplerate
            self.duration: float | None = self._sf.frames / self.rate if self._sf.frames > 0 else 0.0
        except (sf.LibsndfileError, RuntimeError, ValueError) as first:
            self._open_av(first)

    def _open_av(self, first: Exception) -> None:
        import av

        try:
            self._av = av.open(str(self.path))
        except (av.FFmpegError, OSError, ValueError) as e:
            reason = str(first).split("\n")[0] or str(e)
            raise AudioError(f"{self.path}: not a readable audio file ({_short(reason)})") from None
        if not self._av.streams.audio:
            self._av.close()
            raise AudioError(f"{self.path}: no audio stream in this file")
        stream = self._av.streams.audio[0]
        self.rate = stream.rate or stream.codec_context.sample_rate
        seconds = float(stream.duration * stream.time_base) if stream.duration else None
        if seconds is None and self._av.duration:
            seconds = self._av.duration / 1_000_000  # av.time_base: microseconds
        self.duration = seconds

    def __enter__(self) -> "AudioFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._sf is not None:
            self._sf.close()
        if self._av is not None:
            self._av.close()

    def blocks(self, offset: float = 0.0, duration: float | None = None,
               seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        """16 kHz mono float32 blocks of ``[offset, offset + duration)`` seconds of the file (all of it by
        default), each at most about ``seconds`` long. Raises :class:`AudioError` when the data is corrupt."""
        raw = self._sf_blocks(offset, duration, seconds) if self._sf is not None else \
            self._av_blocks(offset, duration, seconds)
        yield from _to_16k(raw, self.rate, self.path)

    def read(self, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
        """The whole span at once, ``(samples,)`` float32 at 16 kHz."""
        parts = list(self.blocks(offset, duration))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _sf_blocks(self, offset: float, duration: float | None, seconds: float) -> Iterator[np.ndarray]:
        f = self._sf
        start = int(round(offset * self.rate))
        if start:
            f.seek(min(start, f.frames))
        else:
            f.seek(0)
        left = -1 if duration is None else int(round(duration * self.rate))
        size = max(int(seconds * self.rate), 1)
        try:
            while left != 0:
                n = size if left < 0 else min(size, left)
                data = f.read(n, dtype="float32", always_2d=True)  # (samples, channels)
                if not len(data):
                    break
                left = -1 if left < 0 else left - len(data)
                yield data.mean(axis=1)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{self.path}: corrupt audio data ({_short(str(e))})") from None

    def _av_blocks(self, offset: float, duration: float | None, seconds: float) -> Iterator[np.ndarray]:
        import av

        skip = int(round(offset * self.rate))
        left = -1 if duration is None else int(round(duration * self.rate))
        chunks: list[np.ndarray] = []  # decoded, not yet yielded
        have = 0
        # FFmpeg's own converter gives float mono at the native rate whatever the layout and sample format.
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        try:
            for frame in self._av.decode(self._av.streams.audio[0]):
                converted = [c.to_ndarray().reshape(-1) for c in to_mono.resample(frame)]
                mono = np.concatenate(converted) if converted else np.zeros(0, dtype=np.float32)
                if skip:
                    cut = min(skip, mono.size)
                    mono, skip = mono[cut:], skip - cut
                if left >= 0:
                    mono = mono[:left]
                    left -= mono.size
                chunks.append(mono)
                have += mono.size
                if have >= seconds * self.rate:
                    yield np.concatenate(chunks)
                    chunks, have = [], 0
                if left == 0:
                    break
        except (av.FFmpegError, ValueError) as e:
            raise AudioError(f"{self.path}: corrupt audio data ({_short(str(e))})") from None
        if chunks:
            yield np.concatenate(chunks)


class ArrayAudio:
    """16 kHz mono samples already in memory, read like an :class:`AudioFile` (a stream's utterance, an array
    given to the API)."""

    rate = SAMPLE_RATE

    def __init__(self, samples: np.ndarray):
        self.samples = np.asarray(samples, dtype=np.float32)
        if self.samples.ndim != 1:
            raise AudioError(f"expected a (samples,) mono array at {SAMPLE_RATE} Hz, got shape {self.samples.shape}")
        self.duration = self.samples.size / SAMPLE_RATE

    def __enter__(self) -> "ArrayAudio":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def blocks(self, offset: float = 0.0, duration: float | None = None,
               seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
        start = int(round(offset * SAMPLE_RATE))
        end = self.samples.size if duration is None else min(start + int(round(duration * SAMPLE_RATE)),
                                                                self.samples.size)
        step = int(seconds * SAMPLE_RATE)
        for a in range(start, end, step):
            yield self.samples[a: min(a + step, end)]

    def read(self, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
        parts = list(self.blocks(offset, duration))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _to_16k(blocks: Iterator[np.ndarray], rate: int, path: Path) -> Iterator[np.ndarray]:
    """Resample mono blocks to 16 kHz with one streaming soxr resampler (no seams between blocks)."""
    import soxr

    stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") if rate != SAMPLE_RATE else None
    for block in blocks:
        if not np.all(np.isfinite(block)):
            raise AudioError(f"{path}: audio contains NaN or infinite samples")
        out = stream.resample_chunk(block) if stream is not None else block
        if out.size:
            yield np.ascontiguousarray(out, dtype=np.float32)
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield np.ascontiguousarray(tail, dtype=np.float32)


def _short(message: str) -> str:
    return message.strip().split("\n")[0][:160]


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.is_file() and path.stat().st_size == 0:  # a named pipe has no size until it is read
        raise AudioError(f"{path}: empty file")


def read_audio(path: str | os.PathLike, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Read an audio file (or ``[offset, offset + duration)`` seconds of it) as ``(samples,)`` float32, 16 kHz
    mono, in [-1, 1]. Raises :class:`AudioError` naming the file when it is missing, empty, corrupt or not audio."""
    with AudioFile(path) as f:
        return f.read(offset, duration)


def load_audio(path: str | os.PathLike, offset: float = 0.0, duration: float | None = None) -> "torch.Tensor":
    """:func:`read_audio` as a ``(samples,)`` float32 torch tensor (for training and the PyTorch model)."""
    import torch

    return torch.from_numpy(read_audio(path, offset, duration))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, from its header when it has one (else by decoding it).

    Raises :class:`AudioError` naming the file when it cannot be read.
    """
    with AudioFile(path) as f:
        if f.duration is not None:
            return f.duration
        return sum(b.size for b in f.blocks()) / SAMPLE_RATE
