"""Live recognition sessions (asr.stream): utterances found by the VAD, partial results whose stable part never
changes, finals that equal offline transcription of the same audio, limits that keep memory bounded; the
``asr stream`` command and its sources."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

import asr
from asr.audio import read_audio
from asr.chunked import ChunkSettings
from asr.cli import main
from asr.errors import AsrError
from asr.sources import pcm_blocks
from asr.stream import EndpointRules, Final, Partial, SpeechStarted, SpeechStopped, StreamOptions, event_json

GAP = np.zeros(16000, np.float32)


def waves(speech, count):
    return [read_audio(p) for p, _ in speech[:count]]


def run(session, audio, block=1600):
    events = []
    for i in range(0, audio.size, block):
        events += session.accept(audio[i:i + block])
    return events + session.finish()


@pytest.fixture(scope="module")
def three(speech):
    parts = waves(speech, 3)
    audio = np.concatenate([GAP] + [x for w in parts for x in (w, GAP)])
    bounds, t = [], GAP.size
    for w in parts:
        bounds.append((t, t + w.size))
        t += w.size + GAP.size
    return audio, bounds, [t for _, t in speech[:3]]


def test_the_endpointer_cuts_a_stream_into_utterances_without_a_model(three):
    """The endpointer alone (no model): one start, the audio and one end per utterance, each utterance's audio the
    stream's samples from its start to its end with nothing lost or doubled, at most `prefix` held before it."""
    from asr.endpoint import Audio, End, Endpointer, Start

    audio, bounds, _ = three

    def cut(rules):
        endpointer, cuts = Endpointer(rules), []
        for i in range(0, audio.size, 1234):
            cuts += endpointer.accept(audio[i:i + 1234])
        return cuts + endpointer.finish()

    cuts, bare = cut(EndpointRules(prefix=0.25)), cut(EndpointRules(prefix=0.0))
    kinds = "".join({Start: "s", Audio: "a", End: "e"}[type(c)] for c in cuts)
    assert kinds.replace("a", "") == "se" * 3 and not any(c.samples.size == 0 for c in cuts if isinstance(c, Audio))
    starts, ends = [c.start for c in cuts if isinstance(c, Start)], [c.end for c in cuts if isinstance(c, End)]
    fed, k = [np.zeros(0, np.float32)] * 3, -1
    for c in cuts:
        k += isinstance(c, Start)
        if isinstance(c, Audio):
            fed[k] = np.concatenate([fed[k], c.samples])
    detected = [c.start for c in bare if isinstance(c, Start)]  # where speech was found: no prefix held
    for (_, b), start, speech, end, got in zip(bounds, starts, detected, ends, fed):
        assert speech - 0.25 * 16000 <= start <= speech and b < end  # the prefix is bounded; the pause ends it
        np.testing.assert_array_equal(got, audio[start:start + got.size])
        assert end - start - 512 <= got.size <= end - start  # to the VAD frame that ended it
    without = Endpointer(EndpointRules(max_utterance=1.0), vad=False)
    cuts = without.opening()
    for i in range(0, 40000, 8000):  # the length limit is checked at each block's end
        cuts += without.accept(audio[i:i + 8000])
    cuts += without.commit() + without.finish()
    assert [(type(c).__name__, getattr(c, "start", getattr(c, "end", None))) for c in cuts if not isinstance(c, Audio)] \
        == [("Start", 0), ("End", 16000), ("Start", 16000), ("End", 32000), ("Start", 32000), ("End", 40000),
            ("Start", 40000)]


def test_a_session_finds_each_utterance_and_its_final_is_offline_transcription(tiny_model, three):
    model = asr.load(tiny_model, device="cpu")
    audio, bounds, _ = three
    events = run(model.stream(), audio)
    started = [e for e in events if isinstance(e, SpeechStarted)]
    stopped = [e for e in events if isinstance(e, SpeechStopped)]
    finals = [e for e in events if isinstance(e, Final)]
    assert len(started) == len(stopped) == len(finals) == 3
    for (a, b), s, e, f in zip(bounds, started, stopped, finals):
        assert s.time <= a / 16000 and b / 16000 < e.time <= b / 16000 + 1.0  # the pause of 0.6 s ends it
        assert (f.start, f.end) == (s.time, e.time)
        same = model.transcribe(audio[int(round(f.start * 16000)): int(round(f.end * 16000))])
        assert f.text == same.text and [w.word for w in f.words] == [w.word for w in same.words]
        assert all(f.start <= w.start <= w.end <= f.end + 0.04 for w in f.words)  # times in the stream (40 ms frames)
    kinds = [type(e) for e in events]
    assert kinds.index(SpeechStarted) < kinds.index(SpeechStopped) < kinds.index(Final)


def test_blocks_of_any_size_give_the_same_utterances(tiny_model, three):
    model = asr.load(tiny_model, device="cpu")
    audio = three[0]
    finals = [[(e.start, e.end, e.text) for e in run(model.stream(), audio, block) if isinstance(e, Final)]
              for block in (320, 1600, 16000, audio.size)]
    assert all(f == finals[0] for f in finals)


@pytest.mark.slow
def test_partials_stable_words_only_grow_and_finals_know_the_words(streaming_model, three):
    """The model knows these sentences by heart: the live reading finds their words, and the final is right."""
    model = asr.load(streaming_model, device="cpu")
    audio, bounds, texts = three
    session = model.stream(chunking=ChunkSettings(0.32, 0.16))
    assert session.chunked
    events = run(session, audio, 1600)
    finals = [e for e in events if isinstance(e, Final)]
    assert [f.text for f in finals] == texts
    assert [f.streamed for f in finals] == texts  # the live reading of the whole utterance got it right too
    for utterance, text in enumerate(texts):
        partials = [e for e in events if isinstance(e, Partial) and e.utterance == utterance]
        assert partials and partials[-1].text.split()[: len(text.split()) - 1] == text.split()[:-1]
        stable = [p.stable.split() for p in partials]
        for before, after in zip(stable, stable[1:]):
            assert after[: len(before)] == before  # never revised
        assert stable[-1] and text.startswith(" ".join(stable[-1]))
    # Words became stable before their utterance ended: the first stable partial precedes the speech stop.
    first_stable = next(i for i, e in enumerate(events) if isinstance(e, Partial) and e.stable)
    assert first_stable < next(i for i, e in enumerate(events) if isinstance(e, SpeechStopped))


def test_a_model_that_cannot_chunk_streams_by_rereading(tiny_model, three):
    model = asr.load(tiny_model, device="cpu")
    session = model.stream()
    assert not session.chunked
    events = run(session, three[0])
    assert len([e for e in events if isinstance(e, Final)]) == 3


def test_without_vad_an_utterance_lasts_until_commit_or_its_length_limit(tiny_model):
    model = asr.load(tiny_model, device="cpu")
    rules = EndpointRules(max_utterance=5.0)
    session = model.stream(StreamOptions(vad=False, endpoints=rules))
    noise = (0.01 * np.random.default_rng(0).standard_normal(16000 * 12)).astype(np.float32)
    events = []
    for i in range(0, noise.size, 1600):
        events += session.accept(noise[i:i + 1600])
        assert session.reader.samples <= 5 * 16000  # memory stays bounded by the limit
    finals = [e for e in events if isinstance(e, Final)]
    assert [(f.start, f.end) for f in finals] == [(0.0, 5.0), (5.0, 10.0)]
    last = session.commit()
    assert [(f.start, f.end) for f in last if isinstance(f, Final)] == [(10.0, 12.0)]
    assert session.current is None and session.commit() == []  # nothing to commit
    session.accept(noise[:8000])
    session.clear()
    assert session.current is None and not [e for e in session.finish() if isinstance(e, Final)]


def test_events_as_json_and_pcm16(tiny_model, three):
    model = asr.load(tiny_model, device="cpu")
    session = model.stream()
    pcm = (three[0] * 32767).astype("<i2").tobytes()
    events = []
    for i in range(0, len(pcm), 3200):
        events += session.accept_pcm16(pcm[i:i + 3200])
    events += session.finish()
    bodies = [event_json(e) for e in events]
    assert {b["type"] for b in bodies} >= {"speech_started", "speech_stopped", "final"}
    json.dumps(bodies)  # plain types only
    final = next(b for b in bodies if b["type"] == "final")
    assert set(final) == {"type", "utterance", "text", "start", "end", "words", "streamed"}


def test_pcm_from_a_pipe_is_resampled_and_half_a_sample_is_an_error():
    tone = (0.5 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440)).astype(np.float32)
    pcm = (tone * 32767).astype("<i2").tobytes()
    got = np.concatenate(list(pcm_blocks(io.BytesIO(pcm), rate=8000)))
    assert abs(got.size - 16000) <= 16  # one second at 8 kHz -> one second at 16 kHz
    with pytest.raises(AsrError, match="odd number of bytes"):
        list(pcm_blocks(io.BytesIO(pcm + b"\x01"), rate=16000))


@pytest.mark.slow
def test_asr_stream_on_a_file_and_on_standard_input(streaming_model, three, tmp_path, capsys, monkeypatch):
    audio, _, texts = three
    path = tmp_path / "three.wav"
    sf.write(path, audio, 16000)
    assert main(["stream", "--model", str(streaming_model), "--no-realtime", "--format", "json", str(path)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["text"] for e in events if e["type"] == "final"] == texts
    assert all("at" in e for e in events)
    raw = io.BytesIO((audio * 32767).astype("<i2").tobytes())
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw))
    assert main(["stream", "--model", str(streaming_model), "-"]) == 0
    out = capsys.readouterr()
    assert [line.split("] ", 1)[1] for line in out.out.splitlines()] == texts
    assert "partial: " in out.err  # not a terminal: partials as lines


def test_asr_stream_bad_input_is_one_line(tiny_model, tmp_path, capsys):
    (tmp_path / "bad.wav").write_text("not audio")
    assert main(["stream", "--model", str(tiny_model), str(tmp_path / "bad.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr: error: ") and "bad.wav" in err and "\n" not in err
