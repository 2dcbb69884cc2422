"""Audio files -> 16 kHz mono float waveforms.

wav/flac/ogg (and mp3, with the libsndfile that soundfile bundles) are read with soundfile; anything it
cannot open goes through librosa (audioread/ffmpeg) as a fallback. Channels are averaged and the result is
resampled with torchaudio.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from asr.errors import AsrError

SAMPLE_RATE = 16_000  # Hz; every model and feature in asr works at this rate
# File names taken for audio when a folder is searched (corpus layouts, augmentation folders).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".sph")


class AudioError(AsrError):
    """A file that cannot be read as audio."""


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    # Building the sinc kernel costs more than applying it (66 ms for 22.05 -> 16 kHz): build it once per pair.
    return torchaudio.transforms.Resample(orig, new)


def _read_soundfile(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    with sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        start = int(round(offset * rate))
        if start:
            f.seek(min(start, f.frames))
        frames = -1 if duration is None else int(round(duration * rate))
        data = f.read(frames, dtype="float32", always_2d=True)  # (samples, channels)
    return data, rate


def _read_librosa(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    import warnings

    import librosa  # slow to import: only for formats libsndfile cannot read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, rate = librosa.load(str(path), sr=None, mono=False, offset=offset, duration=duration)
    data = np.atleast_2d(data).T  # librosa gives (channels, samples)
    return np.ascontiguousarray(data, dtype=np.float32), int(rate)


def load_audio(
    path: str | os.PathLike, offset: float = 0.0, duration: float | None = None, sample_rate: int = SAMPLE_RATE
) -> torch.Tensor:
    """Read an audio file (or the span ``[offset, offset + duration)`` seconds of it).

    Returns a float32 tensor of shape ``(samples,)`` at ``sample_rate`` Hz, mono, in [-1, 1].
    Raises :class:`AudioError` naming the file when it is missing, a directory, empty or not audio.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        data, rate = _read_soundfile(path, offset, duration)
    except (sf.LibsndfileError, RuntimeError, ValueError) as first:
        try:
            data, rate = _read_librosa(path, offset, duration)
        except Exception as second:  # audioread raises several unrelated types
            reason = str(first).split("\n")[0] or type(second).__name__
            raise AudioError(f"{path}: not a readable audio file ({reason})") from None
    if not np.all(np.isfinite(data)):
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    wave = torch.from_numpy(data).mean(dim=1)
    if rate != sample_rate and wave.numel() > 0:
        with torch.no_grad():
            wave = _resampler(rate, sample_rate)(wave)
    return wave.contiguous()


def audio_duration(path: str | os.PathLike) -> float:
    """Duration of an audio file in seconds, from its header when soundfile can read it (else librosa's reader).

    Raises :class:`AudioError` naming the file when neither can.
    """
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, ValueError):
        pass
    try:
        import librosa

        return float(librosa.get_duration(path=str(path)))
    except Exception as e:  # audioread raises several unrelated types
        raise AudioError(f"{path}: not a readable audio file ({type(e).__name__})") from None
