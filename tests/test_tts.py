import pytest
import soundfile as sf

from asr.corpora.tts import TTSError, Voice, synthesize


@pytest.mark.parametrize("voice", ["flite:kal16", "espeak:en-us+f3", "festival:kal_diphone", "piper:joe",
                                   "espeak:en-gb-scotland+klatt"])
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
