import json

import srt
import webvtt

from asr.decode import Hypothesis, Word
from asr.output import CueLimits, cues, render, to_srt, to_vtt
from asr.assemble import Result, Segment

WORDS = [Word("in", 0.1, 0.2, 0.9), Word("the", 0.25, 0.4, 0.8), Word("beginning", 0.5, 1.0, 0.95),
         Word("god", 2.5, 2.8, 0.7), Word("created", 2.9, 3.4, 0.99), Word("the", 3.45, 3.6, 1.0),
         Word("heaven", 3.7, 4.1, 0.6), Word("and", 4.2, 4.3, 0.9), Word("the", 4.35, 4.5, 0.9),
         Word("earth", 4.55, 3661.25, 0.9)]


def test_cues_break_at_pauses_and_length():
    got = cues(WORDS, CueLimits(max_chars=30, max_seconds=6.0, max_gap=1.0))
    assert got[0] == (0.1, 1.0, "in the beginning")  # the 1.5 s pause ends the first cue
    assert all(len(text) <= 30 for _, _, text in got)
    assert " ".join(t for _, _, t in got) == " ".join(w.word for w in WORDS)


def test_srt_parses_with_an_independent_parser():
    subs = list(srt.parse(to_srt(WORDS)))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert subs[0].start.total_seconds() == 0.1 and subs[0].content == "in the beginning"
    assert subs[-1].end.total_seconds() == 3661.25  # hours are written as such
    assert " ".join(s.content for s in subs) == " ".join(w.word for w in WORDS)


def test_vtt_parses_with_an_independent_parser(tmp_path):
    path = tmp_path / "a.vtt"
    path.write_text(to_vtt(WORDS))
    captions = webvtt.read(str(path)).captions
    assert captions[0].start == "00:00:00.100" and captions[0].text == "in the beginning"
    assert captions[-1].end == "01:01:01.250"


def test_empty_transcript_gives_empty_subtitles_and_json(tmp_path):
    assert to_srt([]) == ""
    path = tmp_path / "e.vtt"
    path.write_text(to_vtt([]))
    assert webvtt.read(str(path)).captions == []
    obj = json.loads(render("json", Result("x.wav", Hypothesis(text=""), duration=0.5), nbest=True))
    assert obj["text"] == "" and obj["words"] == [] and obj["nbest"] == [{"text": "", "score": 0.0}]
    assert obj["segments"] == []


def test_subtitle_cues_never_cross_a_segment():
    first = Segment(0, 0.0, 2.0, "in the beginning", WORDS[:3])
    second = Segment(1, 2.2, 4.6, "god created the heaven and the earth", WORDS[3:9])
    result = Result("x.wav", Hypothesis(text="x", words=WORDS[:9]), duration=5.0, segments=[first, second])
    subs = list(srt.parse(render("srt", result)))
    assert subs[0].content == "in the beginning" and subs[1].content.startswith("god")
    # A long first segment is still cut to a readable length.
    long = Segment(0, 0.0, 4.6, "...", WORDS[:9])
    got = [s.content for s in srt.parse(render("srt", Result("x.wav", Hypothesis("x"), duration=5.0, segments=[long])))]
    assert all(len(c) <= 42 for c in got) and " ".join(got) == " ".join(w.word for w in WORDS[:9])
