"""OpenAI's shapes: errors, transcription bodies (json, text, srt, vtt, verbose_json) and server-sent events.

Fields with no BiLSTM-CTC equivalent are filled honestly, or with a documented neutral value:

- ``language``: always ``english`` (the model's only language); the request's ``language``, ``prompt`` and
  ``temperature`` are accepted and ignored (decoding is deterministic);
- segments: ``seek`` = the segment's start in 10 ms frames (Whisper's unit), ``tokens`` = the model's character
  ids, ``temperature`` = 0.0, ``avg_logprob`` = the mean per-frame log-probability of the greedy path (beam:
  the decoder's score per frame), ``compression_ratio`` = text bytes / zlib-compressed bytes (as Whisper),
  ``no_speech_prob`` = the mean probability of the CTC blank over the segment's frames.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from asr.assemble import Result, Segment
from asr.output import format_srt, format_vtt, result_cues

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class RequestOptions:
    """What a transcription request asks for, checked."""

    response_format: str = "json"
    granularities: frozenset[str] = field(default_factory=frozenset)  # timestamp_granularities[]
    stream: bool = False  # server-sent events, segment by segment
    confidence: bool = False  # x_asr_confidence: per-word confidences for the web page (verbose_json)


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def segment_json(segment: Segment) -> dict:
    return {"id": segment.id, "seek": int(round(segment.start * 100)), "start": segment.start, "end": segment.end,
            "text": segment.text, "tokens": segment.tokens, "temperature": 0.0, "avg_logprob": segment.avg_logprob,
            "compression_ratio": compression_ratio(segment.text), "no_speech_prob": segment.no_speech_prob}


def verbose_json(result: Result, granularities: frozenset[str] | set[str]) -> dict:
    body = {"task": "transcribe", "language": "english", "duration": round(result.duration, 3), "text": result.text}
    body["segments"] = [segment_json(s) for s in result.segments]  # always: they cost nothing
    if "word" in granularities:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
    body["usage"] = {"type": "duration", "seconds": round(result.duration, 3)}
    return body


def confidences(result: Result) -> list[dict]:
    """Per word confidence, for the web page (not an OpenAI field: sent under ``x_asr``)."""
    return [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in result.words]


def render(result: Result, options: RequestOptions, elapsed: float) -> tuple[str, dict | str]:
    """The response body in the requested format: ``("json", body)`` or ``("text", body)``."""
    fmt = options.response_format
    if fmt == "json":
        return "json", {"text": result.text}
    if fmt == "verbose_json":
        body = verbose_json(result, options.granularities)
        if options.confidence:
            body["x_asr"] = {"words": confidences(result), "processing_seconds": round(elapsed, 3)}
        return "json", body
    if fmt == "text":
        return "text", result.text + "\n"
    return "text", (format_srt if fmt == "srt" else format_vtt)(result_cues(result))


def sse(event: dict) -> str:
    return f"data: {json.dumps(event)}\n\n"
