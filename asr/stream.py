"""Live recognition: a session that takes audio as it comes and says what is being said while it is said.

A :class:`Stream` accepts 16 kHz samples in blocks of any size and returns events. It coordinates two parts, as
sherpa-onnx's stream and recognizer do: an endpointer (:mod:`asr.endpoint`: Silero VAD finds where speech starts
and where it stops) and, for each utterance, a reader (:mod:`asr.partials`: the network reads it as it grows, and
:class:`Partial` results follow the voice, a *stable* prefix of words that never change again and a *tail* that
may). At the utterance's end its audio is read again whole, with the model's decoder (beam search and LM when it
has a decoding config), and the :class:`Final` result replaces the partials: it is what ``asr transcribe`` gives
for the same audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.chunked import ChunkSettings, can_chunk
from asr.decode import Word
from asr.endpoint import Audio, End, Endpointer, EndpointRules, Start
from asr.partials import UtteranceReader
from asr.pcm import pcm16_samples

__all__ = ["EndpointRules", "Event", "Final", "Partial", "SpeechStarted", "SpeechStopped", "Stream",
           "StreamOptions", "event_json"]


@dataclass(frozen=True)
class StreamOptions:
    chunking: ChunkSettings = ChunkSettings()
    endpoints: EndpointRules = EndpointRules()
    vad: bool = True  # False: no endpointing; an utterance lasts until commit() or finish() (or max_utterance)
    partial_every: float = 0.2  # seconds of audio between two partial results
    stable_lag: float = 1.0  # models that reread: words ending this long before the audio's end are stable


@dataclass
class SpeechStarted:
    utterance: int  # utterances are numbered from 0 in a stream
    time: float  # seconds into the stream: the start of the audio the utterance keeps (prefix included)


@dataclass
class Partial:
    utterance: int
    stable: str  # never changes again within the utterance
    tail: str  # may still change

    @property
    def text(self) -> str:
        return " ".join(t for t in (self.stable, self.tail) if t)


@dataclass
class SpeechStopped:
    utterance: int
    time: float  # seconds into the stream: the end of the utterance's audio (the pause that ended it included)


@dataclass
class Final:
    utterance: int
    text: str
    start: float  # seconds into the stream
    end: float
    words: list[Word] = field(default_factory=list)  # times in seconds into the stream
    streamed: str = ""  # what the live reading said of the whole utterance (greedy), for comparison


Event = SpeechStarted | Partial | SpeechStopped | Final


class Stream:
    """One live session over a loaded model (:class:`asr.api.Model`); not thread-safe: one caller at a time."""

    def __init__(self, model, options: StreamOptions = StreamOptions()):
        self.model = model
        self.options = options
        self.network = getattr(model.network, "recognizer", model.network)  # under --vtln / --adapt wrappers
        self.chunked = can_chunk(self.network)
        self.vocab = model.vocab
        self.transcriber = model.transcriber(timestamps=True)
        self.endpointer = Endpointer(options.endpoints, vad=options.vad)
        self.utterances = 0  # utterances begun
        self.reader: UtteranceReader | None = None  # of the utterance in progress
        self._start = 0  # its first sample in the stream
        self._since_partial = 0  # samples of it since its last partial
        self._run(self.endpointer.opening())

    @property
    def samples(self) -> int:
        """Samples accepted."""
        return self.endpointer.samples

    @property
    def current(self) -> int | None:
        """The number of the utterance in progress, or None between utterances."""
        return self.utterances - 1 if self.reader is not None and self.reader.samples else None

    def accept(self, samples: np.ndarray) -> list[Event]:
        """``(samples,)`` float32 at 16 kHz, any number -> what they tell, in order."""
        events = self._run(self.endpointer.accept(np.asarray(samples, dtype=np.float32).reshape(-1)))
        return events + self._partial()

    def accept_pcm16(self, data: bytes) -> list[Event]:
        """Little-endian 16-bit mono PCM at 16 kHz (an even number of bytes)."""
        return self.accept(pcm16_samples(data))

    def commit(self) -> list[Event]:
        """End the utterance in progress now (a client's 'that was all'); returns its final result, if any."""
        return self._run(self.endpointer.commit())

    def clear(self) -> None:
        """Forget the utterance in progress without a result."""
        self.reader = None
        self._run(self.endpointer.clear())

    def finish(self) -> list[Event]:
        """The stream has ended: the last utterance's final result."""
        events = self._run(self.endpointer.finish())
        self.reader = None
        return events

    def _run(self, cuts) -> list[Event]:
        """Carry out the endpointer's cuts: begin, feed and end readers; the events they make."""
        events: list[Event] = []
        for cut in cuts:
            if isinstance(cut, Start):
                self.reader = UtteranceReader(self.network, self.vocab, self.chunked, self.options.chunking,
                                              self.options.stable_lag)
                self._start, self._since_partial = cut.start, 0
                self.utterances += 1
                if cut.detected:
                    events.append(SpeechStarted(self.utterances - 1, _seconds(cut.start)))
            elif isinstance(cut, Audio):
                self.reader.add(cut.samples)
                self._since_partial += cut.samples.size
            elif isinstance(cut, End):
                events += self._end(cut.end)
        return events

    def _end(self, end: int) -> list[Event]:
        """The utterance ends at sample ``end``: its final result."""
        reader, self.reader = self.reader, None
        index, offset, until = self.utterances - 1, _seconds(self._start), _seconds(end)
        text, words, streamed = reader.final(self.transcriber, end - self._start, offset)
        return [SpeechStopped(index, until), Final(index, text, offset, until, words, streamed)]

    def _partial(self) -> list[Event]:
        if self.reader is None or self._since_partial < self.options.partial_every * SAMPLE_RATE:
            return []
        self._since_partial = 0
        partial = self.reader.partial()
        return [Partial(self.utterances - 1, *partial)] if partial else []


def _seconds(samples: int) -> float:
    """Samples at 16 kHz as seconds, to the millisecond (the times every event carries)."""
    return round(samples / SAMPLE_RATE, 3)


def event_json(event: Event) -> dict:
    """An event as a JSON object (``asr stream --format json``), its ``type`` first."""
    kind = {SpeechStarted: "speech_started", Partial: "partial", SpeechStopped: "speech_stopped",
            Final: "final"}[type(event)]
    body = {"type": kind, **{k: v for k, v in event.__dict__.items() if k != "words"}}
    if isinstance(event, Partial):
        body["text"] = event.text
    if isinstance(event, Final):
        body["words"] = [w.__dict__ for w in event.words]
    return body
