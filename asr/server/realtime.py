"""OpenAI's Realtime transcription protocol at ``/v1/realtime?intent=transcription``, over :mod:`asr.server.live`.

The client sends JSON events: ``session.update`` (or the older ``transcription_session.update``) to set the
audio format and turn detection, ``input_audio_buffer.append`` with base64 16-bit PCM (24 kHz as OpenAI sends
it, or 16 kHz), ``input_audio_buffer.commit`` and ``input_audio_buffer.clear``. The server answers with
``session.created`` / ``session.updated``, ``input_audio_buffer.speech_started`` / ``speech_stopped`` /
``committed`` / ``cleared``, ``conversation.item.input_audio_transcription.delta`` while the person speaks (the
stable words of :class:`asr.stream.Partial`: deltas only ever append) and ``...completed`` with the utterance's
final transcript, and ``error`` events in OpenAI's shape for anything wrong, after which the session goes on.
Audio sent before any ``session.update`` uses the defaults, as OpenAI's does: 24 kHz, server VAD.
"""

from __future__ import annotations

import base64
import binascii
import uuid

from asr.server.events import (REALTIME_RATES, Append, BadMessage, Clear, Commit, LegacySessionUpdate,
                               SessionUpdate, realtime_event)
from asr.pcm import PcmDecoder
from asr.server.live import LiveSessions, with_endpoints
from asr.stream import Final, Partial, SpeechStarted, SpeechStopped, StreamOptions


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class RealtimeSession:
    """One client's transcription session: its settings, its stream, the item of each utterance."""

    def __init__(self, live: LiveSessions, send, model_id: str):
        self.live = live
        self.send = send  # async: event dict -> None
        self.model_id = model_id
        self.id = _id("sess")
        self.rate = REALTIME_RATES[0]
        self.options: StreamOptions = live.settings.stream
        self.stream = None  # created with the first audio, with the settings then in force
        self.resample = PcmDecoder(self.rate)
        self.offset = 0.0  # seconds of audio of earlier streams of this session (settings changed)
        self.items: dict[int, str] = {}  # utterance -> item id
        self.sent: dict[int, int] = {}  # utterance -> stable words already sent as deltas
        self.last_item: str | None = None

    async def open(self) -> None:
        await self.emit("session.created", session=self.description())

    async def handle(self, message: dict) -> None:
        if message.get("bytes") is not None:
            return await self.error("invalid_event", "this protocol takes JSON text messages; send audio as "
                                                     "base64 in input_audio_buffer.append")
        try:
            event = realtime_event(message.get("text"))
        except BadMessage as e:
            return await self.error(e.code, e.message, e.param)
        handler = {
            "session.update": self.update,
            "transcription_session.update": self.update,
            "input_audio_buffer.append": self.append,
            "input_audio_buffer.commit": self.commit,
            "input_audio_buffer.clear": self.clear,
        }[event.type]
        try:
            await handler(event)
        except BadMessage as e:
            await self.error(e.code, e.message, e.param, event.event_id)

    async def notice(self, code: str, message: str) -> None:
        kind = "server_error" if code in ("session_limit", "server_error") else "invalid_request_error"
        await self.emit("error", error={"type": kind, "code": code, "message": message, "param": None,
                                        "event_id": None})

    async def close(self) -> None:
        """The session is over: the stream is dropped (a client gone mid-utterance gets nothing more)."""
        self.stream = None

    # -- client events --------------------------------------------------------------------------------------

    async def update(self, event: SessionUpdate | LegacySessionUpdate) -> None:
        legacy = isinstance(event, LegacySessionUpdate)
        if legacy:
            rate, holder = REALTIME_RATES[0], event.session
        else:
            holder = event.session.audio.input
            rate = holder.format.rate if holder.format is not None else self.rate
        options = self.options
        if "turn_detection" in holder.model_fields_set:  # absent: unchanged; null: off (the client commits)
            detection = holder.turn_detection
            options = with_endpoints(options, vad=detection is not None,
                                     **(detection.endpoints() if detection is not None else {}))
        if self.stream is not None and (rate != self.rate or options != self.options):
            await self._flush()  # the next audio starts a stream with the new settings
        self.rate, self.options = rate, options
        self.resample = PcmDecoder(rate)
        await self.emit("transcription_session.updated" if legacy else "session.updated",
                        session=self.description(legacy))

    async def append(self, event: Append) -> None:
        try:
            pcm = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            raise BadMessage("audio is not valid base64", "audio") from None
        if len(pcm) % 2:
            raise BadMessage(f"audio holds {len(pcm)} bytes: 16-bit PCM needs an even number", "audio")
        if self.stream is None:
            self.stream = self.live.stream(self.options)
        stream, samples = self.stream, self.resample(pcm)
        await self.deliver(await self.live.run(stream.accept, samples))

    async def commit(self, event: Commit) -> None:
        if self.stream is None or self.stream.current is None:
            raise BadMessage("the audio buffer holds no speech to commit", code="input_audio_buffer_commit_empty")
        await self.deliver(await self.live.run(self.stream.commit), manual=True)

    async def clear(self, event: Clear) -> None:
        if self.stream is not None:
            self.stream.clear()
        await self.emit("input_audio_buffer.cleared")

    async def _flush(self) -> None:
        stream, self.stream = self.stream, None
        await self.deliver(await self.live.run(stream.finish))
        self.offset += stream.samples / 16000

    # -- server events --------------------------------------------------------------------------------------

    async def deliver(self, events: list, manual: bool = False) -> None:
        """Stream events -> OpenAI's; ``manual``: the client committed (no speech_stopped of the VAD's)."""
        for e in events:
            ms = lambda t: int(round((t + self.offset) * 1000))  # noqa: E731
            if isinstance(e, SpeechStarted):
                await self.emit("input_audio_buffer.speech_started", audio_start_ms=ms(e.time), item_id=self._item(e))
            elif isinstance(e, Partial):
                words = e.stable.split()
                new = words[self.sent.get(e.utterance, 0):]
                if new:
                    lead = " " if self.sent.get(e.utterance) else ""
                    self.sent[e.utterance] = len(words)
                    await self.emit("conversation.item.input_audio_transcription.delta", item_id=self._item(e),
                                    content_index=0, delta=lead + " ".join(new))
            elif isinstance(e, SpeechStopped):
                if not manual and self.options.vad:
                    await self.emit("input_audio_buffer.speech_stopped", audio_end_ms=ms(e.time),
                                    item_id=self._item(e))
                await self._committed(e.utterance)
            elif isinstance(e, Final):
                await self.emit("conversation.item.input_audio_transcription.completed", item_id=self._item(e),
                                content_index=0, transcript=e.text,
                                usage={"type": "duration", "seconds": round(e.end - e.start, 3)})

    async def _committed(self, utterance: int) -> None:
        item = self.items.setdefault(utterance, _id("item"))
        await self.emit("input_audio_buffer.committed", previous_item_id=self.last_item, item_id=item)
        self.last_item = item

    def _item(self, e) -> str:
        return self.items.setdefault(e.utterance, _id("item"))

    async def emit(self, type: str, **fields) -> None:
        await self.send({"type": type, "event_id": _id("event"), **fields})

    async def error(self, code: str, message: str, param: str | None = None, event_id: str | None = None) -> None:
        await self.emit("error", error={"type": "invalid_request_error", "code": code, "message": message,
                                        "param": param, "event_id": event_id})

    def description(self, legacy: bool = False) -> dict:
        rules, vad = self.options.endpoints, self.options.vad
        detection = {"type": "server_vad", "threshold": rules.threshold, "prefix_padding_ms": int(rules.prefix * 1000),
                     "silence_duration_ms": int(rules.silence * 1000)} if vad else None
        transcription = {"model": self.model_id, "language": "en", "prompt": ""}
        if legacy:
            return {"id": self.id, "object": "realtime.transcription_session", "input_audio_format": "pcm16",
                    "input_audio_transcription": transcription, "turn_detection": detection, "modalities": ["text"]}
        return {"type": "transcription", "id": self.id, "object": "realtime.transcription_session",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": self.rate},
                                    "transcription": transcription, "turn_detection": detection,
                                    "noise_reduction": None}},
                "include": []}
