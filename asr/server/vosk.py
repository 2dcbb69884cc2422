"""Vosk's WebSocket protocol at ``/ws`` (as vosk-server speaks it), over :mod:`asr.server.live`.

The client may first send ``{"config": {"sample_rate": 16000, "words": true}}``, then binary messages of 16-bit
little-endian mono PCM, and ``{"eof" : 1}`` at the end. Each audio message gets one reply: ``{"partial": TEXT}``
while an utterance goes on, or ``{"text": TEXT, "result": [{"word", "start", "end", "conf"}, ...]}`` when one
has ended (an endpoint: a pause, or the utterance's length limit). ``eof`` gets the last result, then the
server closes. Anything wrong gets ``{"error": MESSAGE}`` and the session goes on.
"""

from __future__ import annotations

from asr.server.events import BadMessage, VoskConfig, checked, parse_json
from asr.pcm import PcmDecoder
from asr.server.live import CLOSE_NORMAL, LiveSessions, SessionEnd
from asr.stream import Final, Partial



class VoskSession:
    def __init__(self, live: LiveSessions, send):
        self.live = live
        self.send = send  # async: reply dict -> None
        self.rate = 16000
        self.words = True
        self.stream = None
        self.resample = PcmDecoder(self.rate)
        self.partial = ""

    async def open(self) -> None:
        pass

    async def handle(self, message: dict) -> None:
        if message.get("bytes") is not None:
            return await self.audio(message["bytes"])
        try:
            event = parse_json(message.get("text"))
            if isinstance(event, dict) and "config" in event:
                return await self.configure(checked(VoskConfig, event["config"]))
        except BadMessage as e:
            return await self.send({"error": f"config.{e.message}" if e.param else e.message})
        if isinstance(event, dict) and event.get("eof"):
            return await self.eof()
        await self.send({"error": "a text message is {\"config\": {...}} or {\"eof\" : 1}"})

    async def configure(self, config: VoskConfig) -> None:
        if self.stream is not None:
            return await self.send({"error": "config must come before the audio"})
        self.rate = int(config.sample_rate)
        self.resample = PcmDecoder(self.rate)
        self.words = config.words

    async def audio(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            return await self.send({"error": f"{len(pcm)} bytes of audio: 16-bit PCM needs an even number"})
        if self.stream is None:
            self.stream = self.live.stream()
        events = await self.live.run(self.stream.accept, self.resample(pcm))
        await self.reply(events)

    async def eof(self) -> None:
        events = []
        if self.stream is not None:
            tail = self.resample(b"", last=True)
            events = await self.live.run(self.stream.accept, tail) if tail.size else []
            events += await self.live.run(self.stream.finish)
        finals = [e for e in events if isinstance(e, Final)]
        await self.send(self.result(finals))
        raise SessionEnd(CLOSE_NORMAL, "eof", notify=False)

    async def reply(self, events: list) -> None:
        """One reply per audio message, as Vosk's clients expect: the results of utterances that ended (joined,
        if several did), else the partial text."""
        finals = [e for e in events if isinstance(e, Final)]
        for e in events:
            if isinstance(e, Partial):
                self.partial = e.text
            elif isinstance(e, Final):
                self.partial = ""
        await self.send(self.result(finals) if finals else {"partial": self.partial})

    def result(self, finals: list[Final]) -> dict:
        body = {"text": " ".join(f.text for f in finals if f.text)}
        if self.words:
            body["result"] = [{"conf": w.confidence, "end": w.end, "start": w.start, "word": w.word}
                              for f in finals for w in f.words]
        return body

    async def notice(self, code: str, message: str) -> None:
        await self.send({"error": message})

    async def close(self) -> None:
        self.stream = None
