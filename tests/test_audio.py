from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, AudioError, audio_duration, load_audio
from tests.conftest import encode, tone


def write(path, data, rate, **kw):
    sf.write(str(path), data, rate, **kw)
    return path


@pytest.mark.parametrize("ext, fmt, subtype", [
    ("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III"),
])
def test_formats_load_as_16k_mono(tmp_path, ext, fmt, subtype):
    path = write(tmp_path / f"a.{ext}", tone(1.0, 22050), 22050, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.dim() == 1
    assert abs(wave.numel() - SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # mp3 adds codec padding
    assert wave.abs().max() <= 1.0


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_resamples_any_rate(tmp_path, rate):
    wave = load_audio(write(tmp_path / "a.wav", tone(0.5, rate), rate))
    assert wave.numel() == SAMPLE_RATE // 2


def test_stereo_is_averaged(tmp_path):
    left = tone(0.5)
    data = np.stack([left, -left], axis=1)  # opposite phases cancel in the mix
    assert load_audio(write(tmp_path / "s.wav", data, SAMPLE_RATE)).abs().max() < 1e-4
    data = np.stack([left, left, left], axis=1)
    assert torch.allclose(load_audio(write(tmp_path / "t.wav", data, SAMPLE_RATE)), torch.from_numpy(left), atol=1e-4)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_sample_formats(tmp_path, subtype):
    wave = load_audio(write(tmp_path / "a.wav", tone(0.25), SAMPLE_RATE, subtype=subtype))
    assert torch.allclose(wave, torch.from_numpy(tone(0.25)), atol=1e-2)


def test_offset_and_duration_read_only_the_span(tmp_path):
    data = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), np.full(SAMPLE_RATE, 0.5, np.float32)])
    path = write(tmp_path / "long.wav", data, SAMPLE_RATE)
    span = load_audio(path, offset=1.0, duration=0.5)
    assert span.numel() == SAMPLE_RATE // 2
    assert torch.allclose(span, torch.full_like(span, 0.5), atol=1e-3)
    assert audio_duration(path) == pytest.approx(2.0)


def test_zero_length_wav_loads_empty(tmp_path):
    path = write(tmp_path / "z.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    assert load_audio(path).numel() == 0


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"e\.wav: empty file"):
        load_audio(tmp_path / "e.wav")


def test_text_file(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match=r"notes\.wav: not a readable audio file"):
        load_audio(tmp_path / "notes.wav")


def test_truncated_header(tmp_path):
    good = write(tmp_path / "g.wav", tone(0.5), SAMPLE_RATE).read_bytes()
    (tmp_path / "t.wav").write_bytes(good[:20])
    with pytest.raises(AudioError, match=r"t\.wav: not a readable audio file"):
        load_audio(tmp_path / "t.wav")


def test_garbage_header(tmp_path):
    good = write(tmp_path / "g.wav", tone(0.5), SAMPLE_RATE).read_bytes()
    (tmp_path / "bad.wav").write_bytes(b"RIFF" + bytes(range(40)) + good[44:])
    with pytest.raises(AudioError, match=r"bad\.wav: not a readable audio file"):
        load_audio(tmp_path / "bad.wav")


@pytest.mark.parametrize("name, codec, rate", [("phone.m4a", "aac", 44100), ("browser.webm", "libopus", 48000),
                                               ("clip.mp4", "aac", 48000), ("talk.mkv", "libopus", 48000)])
def test_containers_ffmpeg_reads(tmp_path, name, codec, rate):
    path = encode(tmp_path / name, tone(1.0, rate), rate, codec)
    wave = load_audio(path)
    assert abs(wave.numel() - SAMPLE_RATE) < 0.05 * SAMPLE_RATE  # codecs add a little priming
    spectrum = torch.fft.rfft(wave).abs()
    assert abs(float(spectrum.argmax()) * SAMPLE_RATE / wave.numel() - 440) < 5
    assert audio_duration(path) == pytest.approx(1.0, abs=0.05)


def test_a_container_without_audio_is_one_clear_error(tmp_path):
    path = encode(tmp_path / "silent_film.mp4", np.zeros(0, np.float32), 0, "", video=True)
    with pytest.raises(AudioError, match=r"silent_film\.mp4: no audio stream in this file"):
        load_audio(path)


@pytest.mark.parametrize("name, fmt, subtype", [("cut.wav", "WAV", "PCM_16"), ("cut.mp3", "MP3", "MPEG_LAYER_III"),
                                                ("cut.flac", "FLAC", "PCM_16")])
def test_a_file_cut_off_mid_frame_gives_what_is_there(tmp_path, name, fmt, subtype):
    whole = write(tmp_path / f"whole{Path(name).suffix}", tone(2.0), SAMPLE_RATE, format=fmt, subtype=subtype)
    data = whole.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2 + 7])  # not on a frame or sample boundary
    try:
        wave = load_audio(tmp_path / name)
    except AudioError as e:  # a clear one-line error is also acceptable for a damaged file
        assert str(e).startswith(str(tmp_path / name)) and "\n" not in str(e)
    else:
        assert 0.5 * SAMPLE_RATE < wave.numel() <= 2.05 * SAMPLE_RATE


def test_blocks_join_to_the_whole_read_with_resampling(tmp_path):
    from asr.audio import AudioFile

    path = write(tmp_path / "a.flac", tone(5.0, 44100), 44100)
    with AudioFile(path) as f:
        whole = f.read()
        blocks = list(f.blocks(seconds=0.7))
    assert len(blocks) > 5
    joined = np.concatenate(blocks)
    assert joined.size == whole.size and np.allclose(joined, whole, atol=1e-6)
