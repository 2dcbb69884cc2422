"""The live protocols' client messages as typed schemas, checked once at the edge: every field's type and every
number's range (pydantic, which FastAPI brings). A message that breaks one becomes one line for the protocol's
error event, naming the field; the session goes on. The bounds are listed in docs/streaming.md.

Strict types: ``"500"`` is not a number and ``1`` is not a boolean here. Numbers must be finite (``1e999`` and
``NaN`` parse as JSON floats). Fields the protocols define but this server does not use are let through.
"""

from __future__ import annotations

import json
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

MAX_PREFIX_MS = 2000  # audio kept from before speech starts: OpenAI's default is 300 ms
MAX_SILENCE_MS = 10_000  # the pause that ends an utterance
MIN_SILENCE_MS = 100
REALTIME_RATES = (24000, 16000)  # Hz: OpenAI's, and the model's own
VOSK_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)  # resampled to the model's 16 kHz


class BadMessage(Exception):
    """A client message that breaks its protocol: ``param`` names the field (dotted), ``message`` says how."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


class _Schema(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


def _number(low: float, high: float):
    return Field(None, ge=low, le=high, allow_inf_nan=False)


class TurnDetection(_Schema):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = _number(0.2, 0.95)
    prefix_padding_ms: float | None = _number(0, MAX_PREFIX_MS)
    silence_duration_ms: float | None = _number(MIN_SILENCE_MS, MAX_SILENCE_MS)

    def endpoints(self) -> dict:
        """The endpoint settings given, in :class:`asr.stream.EndpointRules`' names and units (seconds)."""
        out = {"threshold": self.threshold}
        if self.prefix_padding_ms is not None:
            out["prefix"] = self.prefix_padding_ms / 1000
        if self.silence_duration_ms is not None:
            out["silence"] = self.silence_duration_ms / 1000
        return {k: v for k, v in out.items() if v is not None}


class AudioFormat(_Schema):
    type: Literal["audio/pcm"]
    rate: Literal[REALTIME_RATES] = REALTIME_RATES[0]  # type: ignore[valid-type]


class AudioInput(_Schema):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None  # absent: unchanged; null: off (the client commits)


class Audio(_Schema):
    input: AudioInput = AudioInput()


class Session(_Schema):
    type: Literal["transcription"] = "transcription"
    audio: Audio = Audio()


class LegacySession(_Schema):
    input_audio_format: Literal["pcm16"] = "pcm16"
    turn_detection: TurnDetection | None = None


class _Event(_Schema):
    event_id: str | None = Field(None, max_length=512)


class SessionUpdate(_Event):
    type: Literal["session.update"]
    session: Session


class LegacySessionUpdate(_Event):
    type: Literal["transcription_session.update"]
    session: LegacySession


class Append(_Event):
    type: Literal["input_audio_buffer.append"]
    audio: str  # base64 PCM; its size is bounded by the WebSocket message limit


class Commit(_Event):
    type: Literal["input_audio_buffer.commit"]


class Clear(_Event):
    type: Literal["input_audio_buffer.clear"]


RealtimeEvent = Union[SessionUpdate, LegacySessionUpdate, Append, Commit, Clear]
_REALTIME = {m.model_fields["type"].annotation.__args__[0]: m
             for m in (SessionUpdate, LegacySessionUpdate, Append, Commit, Clear)}


class VoskConfig(_Schema):
    sample_rate: float = 16000
    words: bool = True

    @field_validator("sample_rate")
    @classmethod
    def _taken(cls, rate: float) -> float:
        if rate not in VOSK_RATES:
            raise ValueError(f"{rate:g} Hz is not taken: one of {', '.join(map(str, VOSK_RATES))}")
        return rate


def parse_json(text: str | None) -> object:
    """A message's JSON, or :class:`BadMessage` (nesting too deep for the parser included)."""
    try:
        return json.loads(text or "")
    except RecursionError:
        raise BadMessage("the message nests too deeply", code="invalid_json") from None
    except ValueError:
        raise BadMessage("the message is not JSON", code="invalid_json") from None


def realtime_event(text: str | None) -> RealtimeEvent:
    """An OpenAI Realtime client event, checked against its schema."""
    event = parse_json(text)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadMessage("an event is a JSON object with a 'type'", "type", "invalid_event")
    model = _REALTIME.get(event["type"])
    if model is None:
        raise BadMessage(f"unknown event type {event['type'][:80]!r}", "type", "unknown_event")
    return checked(model, event)


def checked(model: type[_Schema], value: object) -> _Schema:
    """``value`` read as ``model``, or :class:`BadMessage` naming the first field that breaks it."""
    try:
        return TypeAdapter(model).validate_python(value)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        got = first.get("input")
        shown = json.dumps(got)[:60] if isinstance(got, (str, int, float, bool, type(None))) else type(got).__name__
        raise BadMessage(f"{param or 'the message'}: {first['msg']} (got {shown})", param) from None
