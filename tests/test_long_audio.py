"""Long files: voice activity, segments cut at pauses, window fallback, global times, bounded reading.

The network here is a stand-in that reads a token from each 40 ms of a "staircase" signal, so the right
transcript of any span is known exactly: a word dropped or doubled at a segment or window seam shows at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr import vad as vad_module
from asr.audio import SAMPLE_RATE
from asr.decode import GreedyDecoder
from asr.vad import SileroVAD, speech_regions
from asr.windows import SegmentOptions, Span, plan_windows
from asr.text import BLANK, Vocabulary
from asr.transcribe import Transcriber

VOCAB = Vocabulary()
FRAME = 640  # samples per 40 ms output frame


class StaircaseNetwork:
    """Frame i's token is encoded as the level of samples [640 i, 640 i + 640): level = token / 64."""

    vocab = VOCAB
    frame_seconds = FRAME / SAMPLE_RATE

    def __init__(self):
        self.calls: list[int] = []  # samples per window seen, to check what was read

    def run(self, waves):
        out = []
        for w in waves:
            self.calls.append(w.size)
            n = w.size // FRAME
            tokens = np.rint(w[: n * FRAME].reshape(n, FRAME).mean(axis=1) * 64).astype(int).clip(0, len(VOCAB) - 1)
            lp = np.full((n, len(VOCAB)), -10.0, dtype=np.float32)
            lp[np.arange(n), tokens] = 0.0
            out.append(lp)
        return out


def staircase(text: str) -> np.ndarray:
    """A signal whose frames spell ``text`` the CTC way: each character for 2 frames, then a blank frame."""
    tokens = []
    for c in text:
        tokens += [VOCAB.encode(c)[0]] * 2 + [BLANK]
    return np.repeat(np.array(tokens, dtype=np.float32) / 64, FRAME)


WORDS = "in the beginning god created the heaven and the earth and the earth was without form and void".split()


def long_text(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def transcriber(max_segment: float, **kw) -> Transcriber:
    return Transcriber(StaircaseNetwork(), GreedyDecoder(VOCAB), max_batch_seconds=30.0, timestamps=True,
                       segmenting=SegmentOptions(max_segment=max_segment, context=1.0, **kw))


def test_window_fallback_neither_drops_nor_doubles_anything(tmp_path, monkeypatch):
    text = long_text(120)  # about 90 s of "speech" without a pause
    path = tmp_path / "continuous.wav"
    sf.write(path, staircase(text), SAMPLE_RATE, subtype="FLOAT")
    duration = sf.info(str(path)).duration
    monkeypatch.setattr("asr.windows.speech_regions", lambda probs, options: [(0.0, duration)])
    t = transcriber(max_segment=8.0)
    result = next(t.transcribe([str(path)]))
    assert result.error is None and result.text == text
    assert len(result.segments) == 1  # one stretch of speech, read as overlapping windows
    assert max(t.recognizer.calls) <= 8.0 * SAMPLE_RATE + FRAME  # no window longer than max_segment
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= duration + 0.04


def test_pauses_cut_segments_with_times_in_the_file(tmp_path, monkeypatch):
    pieces = ["in the beginning", "god created the heaven", "and the earth"]
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)  # level 0: blank frames
    audio = np.concatenate([silence, staircase(pieces[0]), silence, staircase(pieces[1]), silence,
                            staircase(pieces[2]), silence])
    path = tmp_path / "paused.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    bounds, t0 = [], 1.0
    for p in pieces:
        length = len(staircase(p)) / SAMPLE_RATE
        bounds.append((t0, t0 + length))
        t0 += length + 1.0
    monkeypatch.setattr("asr.windows.speech_regions", lambda probs, options: [(a - 0.2, b + 0.2) for a, b in bounds])
    result = next(transcriber(max_segment=4.0).transcribe([Span(str(path))]))
    assert [s.text for s in result.segments] == pieces and result.text == " ".join(pieces)
    for s, (a, b) in zip(result.segments, bounds):
        assert s.start == pytest.approx(a - 0.2, abs=0.05) and s.end == pytest.approx(b + 0.2, abs=0.05)
        assert a - 0.05 <= s.words[0].start and s.words[-1].end <= b + 0.05  # word times are global


def test_greedy_reading_of_kept_log_probs_is_the_segment_by_segment_transcript(tmp_path, monkeypatch):
    """``evaluate(greedy_too=True)`` decodes a multi-segment file's kept log-probabilities segment by segment:
    decoded whole, "beginning" and "god" would run together across the pause (no space frame between them)."""
    from asr.evaluate import evaluate
    from asr.manifest import Utterance, write_manifest

    pieces = ["in the beginning", "god created the heaven"]
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([silence, staircase(pieces[0]), silence, staircase(pieces[1]), silence])
    path = tmp_path / "paused.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    first = len(staircase(pieces[0])) / SAMPLE_RATE
    regions = [(0.8, 1.2 + first), (1.8 + first, len(audio) / SAMPLE_RATE - 0.8)]
    monkeypatch.setattr("asr.windows.speech_regions", lambda probs, options: regions)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, [Utterance(str(path), len(audio) / SAMPLE_RATE, " ".join(pieces))])
    t = Transcriber(StaircaseNetwork(), GreedyDecoder(VOCAB), keep_log_probs=True,
                    segmenting=SegmentOptions(max_segment=4.0, context=1.0))
    scores, greedy = evaluate(t, manifest, greedy_too=True)
    assert len(scores.results[0].segments) == 2 and scores.results[0].log_probs is None  # not held after scoring
    assert greedy.results[0].text == scores.results[0].text == " ".join(pieces)
    assert greedy.rates.wer == scores.rates.wer == 0


def test_segments_after_long_pauses_are_read_from_the_right_place(tmp_path, monkeypatch):
    # The file is read in 30 s blocks; a segment that starts after a block boundary with nothing read in
    # between (a long pause) must not shift what later segments read (it once did: the WER of an hour-long
    # file grew with its length, 22 % at 2 min to 54 % at 60 min).
    pieces = ["in the beginning", "god created the heaven", "and the earth"]
    starts = [1.0, 35.0, 70.0]  # pauses over the 30 s and 60 s block boundaries
    audio = np.zeros(75 * SAMPLE_RATE, dtype=np.float32)
    bounds = []
    for p, t0 in zip(pieces, starts):
        wave = staircase(p)
        a = int(t0 * SAMPLE_RATE)
        audio[a: a + wave.size] = wave
        bounds.append((t0, t0 + wave.size / SAMPLE_RATE))
    path = tmp_path / "sparse.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    monkeypatch.setattr("asr.windows.speech_regions", lambda probs, options: [(a - 0.2, b + 0.2) for a, b in bounds])
    result = next(transcriber(max_segment=4.0).transcribe([str(path)]))
    assert [s.text for s in result.segments] == pieces
    for s, (a, b) in zip(result.segments, bounds):
        assert a - 0.05 <= s.words[0].start and s.words[-1].end <= b + 0.05


def test_a_span_of_a_long_file_keeps_times_in_the_file(tmp_path, monkeypatch):
    audio = np.concatenate([np.zeros(3 * SAMPLE_RATE, np.float32), staircase(long_text(20))])
    path = tmp_path / "late.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    monkeypatch.setattr("asr.windows.speech_regions", lambda probs, options: [(0.0, 100.0)])
    result = next(transcriber(max_segment=4.0).transcribe([Span(str(path), offset=2.0)]))
    assert result.text == long_text(20)
    assert result.words[0].start == pytest.approx(3.0, abs=0.05)  # 1 s into the span, 3 s into the file


def test_short_files_are_read_whole_without_voice_activity_detection(tmp_path, monkeypatch):
    path = tmp_path / "short.wav"
    sf.write(path, staircase("hello there"), SAMPLE_RATE, subtype="FLOAT")
    monkeypatch.setattr("asr.windows.SileroVAD", lambda: pytest.fail("VAD on a short file"))
    t = transcriber(max_segment=20.0)
    result = next(t.transcribe([str(path)]))
    assert result.text == "hello there" and t.recognizer.calls == [len(staircase("hello there"))]


def test_silence_gives_an_empty_transcript(tmp_path):
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(60 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    t = transcriber(max_segment=20.0)
    result = next(t.transcribe([str(path)]))
    assert (result.error, result.text, result.segments, t.recognizer.calls) == (None, "", [], [])
    assert result.duration == pytest.approx(60.0)


def test_plan_windows_tiles_a_long_region_on_the_frame_grid():
    windows = plan_windows([(0.5, 2.0), (3.13, 70.0), (71.0, 72.0)], 80.0, SegmentOptions(max_segment=10.0,
                                                                                           context=1.0), 0.04)
    segments = sorted({w.segment for w in windows})
    assert segments == [0, 1, 2]
    middle = [w for w in windows if w.segment == 1]
    assert middle[0].keep_start <= 3.13 and middle[-1].keep_end == 70.0
    for a, b in zip(middle, middle[1:]):
        assert b.keep_start == pytest.approx(a.keep_end)  # kept centres tile the region
        assert round(b.start / 0.04, 6) == round(b.start / 0.04)  # windows start on the frame grid
    assert all(w.end - w.start <= 10.0 + 1e-6 for w in windows)


def test_merging_joins_neighbours_up_to_the_longest_segment():
    regions = [(0.0, 2.0), (2.5, 4.0), (4.5, 9.0), (9.5, 11.0)]
    merged = plan_windows(regions, 20.0, SegmentOptions(max_segment=10.0, merge=True))
    assert [(w.start, w.end) for w in merged] == [(0.0, 9.0), (9.5, 11.0)]
    assert len(plan_windows(regions, 20.0, SegmentOptions(max_segment=10.0))) == 4


def test_speech_regions_hysteresis_and_padding():
    frame = 512 / SAMPLE_RATE
    probs = np.array([0.1] * 10 + [0.9] * 20 + [0.2] * 3 + [0.9] * 10 + [0.1] * 30, dtype=np.float32)
    regions = speech_regions(probs, SegmentOptions(min_pause=0.25, pad=0.1))
    assert len(regions) == 1  # a 96 ms dip is not a pause
    assert regions[0][0] == pytest.approx(10 * frame - 0.1) and regions[0][1] == pytest.approx(43 * frame + 0.1)
    two = speech_regions(np.concatenate([probs[:33], [0.1] * 10, probs[33:]]), SegmentOptions(pad=0.0))
    assert len(two) == 2


def test_silero_finds_the_pauses_between_spoken_sentences(speech):
    waves = [sf.read(str(p), dtype="float32")[0] for p, _ in speech[:4]]
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([gap] + [x for w in waves for x in (w, gap)])
    vad = SileroVAD()
    probs = np.concatenate([vad(audio[i:i + 8000]) for i in range(0, audio.size, 8000)] + [vad(np.zeros(0), True)])
    assert probs.size == -(-audio.size // vad_module.VAD_FRAME)
    assert len(speech_regions(probs)) == 4
