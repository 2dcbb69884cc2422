"""The live protocols' message schemas (asr.server.events): types, finite numbers and ranges, one line naming
the field for each violation."""

from __future__ import annotations

import json

import pytest

from asr.server.events import BadMessage, SessionUpdate, VoskConfig, checked, parse_json, realtime_event


def update(**turn) -> str:
    return json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": turn}}}})


@pytest.mark.parametrize("text, param, words", [
    ("[" * 100_000 + "]" * 100_000, None, "nests too deeply"),
    ("{nope", None, "not JSON"),
    ('{"type": 5}', "type", "a JSON object with a 'type'"),
    ('{"type": "response.create"}', "type", "unknown event type"),
    (update(threshold=0.99), "session.audio.input.turn_detection.threshold", "less than or equal to 0.95"),
    (update(threshold="0.5"), "session.audio.input.turn_detection.threshold", "valid number"),
    (update(threshold=True), "session.audio.input.turn_detection.threshold", "valid number"),
    (update(prefix_padding_ms=2001), "session.audio.input.turn_detection.prefix_padding_ms", "2000"),
    (update(silence_duration_ms=50), "session.audio.input.turn_detection.silence_duration_ms", "100"),
    (update(type="none"), "session.audio.input.turn_detection.type", "server_vad"),
    ('{"type": "session.update", "session": {"audio": {"input": {"turn_detection": {"threshold": Infinity}}}}}',
     "session.audio.input.turn_detection.threshold", "finite"),
    ('{"type": "session.update", "session": {"type": "realtime"}}', "session.type", "transcription"),
])
def test_a_bad_realtime_event_names_its_field_in_one_line(text, param, words):
    with pytest.raises(BadMessage) as caught:
        realtime_event(text)
    assert caught.value.param == param and words in caught.value.message and "\n" not in caught.value.message


def test_good_realtime_events_read_as_their_types_with_unknown_fields_let_through():
    event = realtime_event(json.dumps({"type": "session.update", "event_id": "e1", "session": {
        "type": "transcription", "include": ["x"], "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000}, "noise_reduction": None,
            "turn_detection": {"type": "server_vad", "prefix_padding_ms": 500, "silence_duration_ms": 800}}}}}))
    assert isinstance(event, SessionUpdate) and event.event_id == "e1"
    holder = event.session.audio.input
    assert holder.format.rate == 16000 and holder.turn_detection.endpoints() == {"prefix": 0.5, "silence": 0.8}
    off = realtime_event(json.dumps({"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}))
    assert "turn_detection" in off.session.audio.input.model_fields_set and off.session.audio.input.turn_detection is None
    same = realtime_event(json.dumps({"type": "session.update", "session": {}}))
    assert "turn_detection" not in same.session.audio.input.model_fields_set


@pytest.mark.parametrize("config, ok", [
    ({"sample_rate": 8000}, True), ({"sample_rate": 16000.0, "words": False}, True), ({}, True),
    ({"sample_rate": 12345}, False), ({"sample_rate": "16000"}, False), ({"sample_rate": float("nan")}, False),
    ({"sample_rate": float("inf")}, False), ({"words": 1}, False), ("x", False),
])
def test_vosk_config(config, ok):
    if ok:
        assert checked(VoskConfig, config).sample_rate in (8000, 16000)
    else:
        with pytest.raises(BadMessage):
            checked(VoskConfig, config)


def test_parse_json_gives_plain_values():
    assert parse_json('{"eof": 1}') == {"eof": 1}
