"""Live recognition: a session that takes audio as it comes and says what is being said while it is said.

A :class:`Stream` accepts 16 kHz samples in blocks of any size and returns events. Silero VAD finds where
speech starts and where it stops (:class:`EndpointRules`: a pause of ``silence`` seconds, or ``max_utterance``
seconds of speech, ends an utterance). While an utterance goes on, the network reads it chunk by chunk
(:mod:`asr.chunked`) and :class:`Partial` results follow the voice: a *stable* prefix of words that never
change again (decoded from committed chunks, each closed by a space) and an unstable *tail* (the last word,
and a quick provisional reading of the audio past the last chunk). At the utterance's end, its audio is read
again whole, in full mode, with the model's decoder (beam search and LM when it has a decoding config), and the
:class:`Final` result replaces the partials: it is what ``asr transcribe`` gives for the same audio.

Models that cannot stream (per-utterance feature normalisation, ONNX) reread the utterance so far at each
partial instead; their words become stable once they end ``stable_lag`` seconds before the audio does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.chunked import ChunkedReader, ChunkSettings, RereadReader, can_chunk
from asr.decode import Word
from asr.pcm import pcm16_samples
from asr.text import BLANK
from asr.vad import VAD_FRAME, SileroVAD
from asr.windows import Span


@dataclass(frozen=True)
class EndpointRules:
    """Where utterances start and end. Times in seconds."""

    silence: float = 0.5  # a pause this long after speech ends the utterance (OpenAI's server VAD default too)
    max_utterance: float = 20.0  # and an utterance this long ends even without a pause
    threshold: float = 0.5  # Silero VAD's speech probability that starts speech (it ends below threshold - 0.15)
    prefix: float = 0.3  # audio kept from before the detected start, for the final reading


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


class _Utterance:
    """The utterance in progress: its audio, its reader, what of it is stable."""

    def __init__(self, index: int, start: int, reader):
        self.index = index
        self.start = start  # sample of the stream where its audio starts
        self.reader = reader
        self.audio: list[np.ndarray] = []
        self.samples = 0
        self.committed: list[np.ndarray] = []  # (frames, vocab) log-probabilities that never change
        self.frames = 0  # committed frames
        self.stable: list[str] = []
        self.stable_end = 0  # frame where decoding of the unstable part starts
        self.last_partial = ("", "")  # (stable, tail) last told
        self.since_partial = 0  # samples since the last partial

    def add(self, samples: np.ndarray) -> None:
        self.audio.append(samples)
        self.samples += samples.size
        self.since_partial += samples.size
        self.add_committed(self.reader.accept(samples))

    def add_committed(self, log_probs: np.ndarray) -> None:
        if log_probs.shape[0]:
            self.committed.append(log_probs)
            self.frames += log_probs.shape[0]

    def samples_array(self) -> np.ndarray:
        self.audio = [np.concatenate(self.audio)] if self.audio else []
        return self.audio[0] if self.audio else np.zeros(0, np.float32)


class Stream:
    """One live session over a loaded model (:class:`asr.api.Model`); not thread-safe: one caller at a time."""

    def __init__(self, model, options: StreamOptions = StreamOptions()):
        self.model = model
        self.options = options
        self.network = getattr(model.network, "recognizer", model.network)  # under --vtln / --adapt wrappers
        self.chunked = can_chunk(self.network)
        self.vocab = model.vocab
        self.space = self.vocab.encode(" ")[0]
        self.frame_seconds = self.network.frame_seconds
        self.transcriber = model.transcriber(timestamps=True)
        self.vad = SileroVAD() if options.vad else None
        self._vad_frames = 0  # VAD frames judged
        self._quiet = 0  # consecutive VAD frames below the end threshold, in an utterance
        self._held: list[np.ndarray] = []  # audio not in an utterance: the last `prefix` seconds of it
        self._held_start = 0  # its first sample in the stream
        self.samples = 0  # samples accepted
        self.utterances = 0
        self._utt: _Utterance | None = None
        if not options.vad:
            self._begin(0)

    @property
    def current(self) -> int | None:
        """The number of the utterance in progress, or None between utterances."""
        return self._utt.index if self._utt is not None and self._utt.samples else None

    # -- audio in -------------------------------------------------------------------------------------------

    def accept(self, samples: np.ndarray) -> list[Event]:
        """``(samples,)`` float32 at 16 kHz, any number -> what they tell, in order."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        block_start = self.samples
        self.samples += samples.size
        events: list[Event] = []
        if self.vad is None:
            events += self._feed(samples, block_start)
            events += self._max_length(self.samples)
        else:
            events += self._judge(self.vad(samples), samples, block_start)
        events += self._partial()
        return events

    def accept_pcm16(self, data: bytes) -> list[Event]:
        """Little-endian 16-bit mono PCM at 16 kHz (an even number of bytes)."""
        return self.accept(pcm16_samples(data))

    def commit(self) -> list[Event]:
        """End the utterance in progress now (a client's 'that was all'); returns its final result, if any."""
        if self.current is None:
            return []
        events = self._end(self.samples)
        if self.vad is None:
            self._begin(self.samples)
        return events

    def clear(self) -> None:
        """Forget the utterance in progress without a result."""
        self._utt = None
        self._quiet = 0
        self._held, self._held_start = [], self.samples
        if self.vad is None:
            self._begin(self.samples)

    def finish(self) -> list[Event]:
        """The stream has ended: the last utterance's final result."""
        events: list[Event] = []
        if self.vad is not None:
            events += self._judge(self.vad(np.zeros(0, np.float32), last=True), np.zeros(0, np.float32),
                                  self.samples)
        if self._utt is not None and (self._utt.samples or self.vad is not None):
            events += self._end(self.samples)
        self._utt = None
        return events

    # -- utterances -----------------------------------------------------------------------------------------

    def _judge(self, probs: np.ndarray, samples: np.ndarray, block_start: int) -> list[Event]:
        """Walk the VAD's frames of this block: start and end utterances, feeding each the audio it holds."""
        rules = self.options.endpoints
        low = rules.threshold - 0.15
        need = max(int(round(rules.silence * SAMPLE_RATE / VAD_FRAME)), 1)
        events: list[Event] = []
        fed = block_start  # samples of this block already handed on (to an utterance or the held audio)
        for p in probs:
            frame_end = (self._vad_frames + 1) * VAD_FRAME
            self._vad_frames += 1
            if self._utt is None:
                if p >= rules.threshold:
                    self._hold(samples, block_start, fed, frame_end)
                    fed = max(fed, min(frame_end, self.samples))
                    events += self._start(frame_end - VAD_FRAME)
                continue
            self._quiet = self._quiet + 1 if p < low else 0
            end = min(frame_end, self.samples)
            if self._quiet >= need or end - self._utt.start >= rules.max_utterance * SAMPLE_RATE:
                events += self._feed(samples[fed - block_start: end - block_start], fed)
                fed = max(fed, end)
                still_speaking = self._quiet < need
                events += self._end(end)
                if still_speaking:  # cut for length: the speech goes on in a new utterance
                    events += self._start(end, prefix=False)
        if self._utt is not None:
            events += self._feed(samples[fed - block_start:], fed)
        else:
            self._hold(samples, block_start, fed, self.samples)
        return events

    def _hold(self, samples: np.ndarray, block_start: int, fed: int, upto: int) -> None:
        """Keep the audio outside utterances, trimmed to the last ``prefix`` seconds."""
        part = samples[max(fed - block_start, 0): max(upto - block_start, 0)]
        if part.size:
            self._held.append(part)
        keep = int(self.options.endpoints.prefix * SAMPLE_RATE)
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.float32)
        end = self._held_start + held.size
        if held.size > keep:
            held = held[held.size - keep:]
        self._held, self._held_start = ([held] if held.size else []), end - held.size

    def _start(self, speech: int, prefix: bool = True) -> list[Event]:
        """Speech detected at sample ``speech``: an utterance begins with the held audio before it."""
        held = np.concatenate(self._held) if (self._held and prefix) else np.zeros(0, np.float32)
        start = self._held_start if held.size else speech
        self._begin(start)
        self._held, self._held_start = [], self.samples
        if held.size:
            self._utt.add(held)
        return [SpeechStarted(self._utt.index, round(start / SAMPLE_RATE, 3))]

    def _begin(self, start: int) -> None:
        reader = ChunkedReader(self.network, self.options.chunking) if self.chunked else RereadReader(self.network)
        self._utt = _Utterance(self.utterances, start, reader)
        self.utterances += 1
        self._quiet = 0

    def _feed(self, samples: np.ndarray, at: int) -> list[Event]:
        if self._utt is not None and samples.size:
            self._utt.add(samples)
        return []

    def _max_length(self, now: int) -> list[Event]:
        if self._utt is None or now - self._utt.start < self.options.endpoints.max_utterance * SAMPLE_RATE:
            return []
        events = self._end(now)
        self._begin(now)
        return events

    def _end(self, end: int) -> list[Event]:
        """The utterance ends at sample ``end``: its audio read again whole, with the model's decoder."""
        utt, self._utt = self._utt, None
        self._quiet = 0
        self._held, self._held_start = [], end
        audio = utt.samples_array()[: max(end - utt.start, 0)]
        offset, until = round(utt.start / SAMPLE_RATE, 3), round(end / SAMPLE_RATE, 3)
        stopped = SpeechStopped(utt.index, until)
        if not audio.size:
            return [stopped, Final(utt.index, "", offset, until)]
        result = next(self.transcriber.transcribe([Span("<stream>", samples=audio)]))
        words = [Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence) for w in result.words]
        return [stopped, Final(utt.index, result.text, offset, until, words, self._streamed(utt))]

    def _streamed(self, utt: _Utterance) -> str:
        """The live reading's text of the whole utterance: every chunk committed (chunked), or the last reread."""
        if self.chunked:
            utt.add_committed(utt.reader.finish())
            log_probs = np.concatenate(utt.committed) if utt.committed else np.zeros((0, len(self.vocab)))
        else:
            log_probs = utt.reader.provisional()
        return " ".join(w for w, _, _ in self._words(log_probs))

    # -- partial results ------------------------------------------------------------------------------------

    def _partial(self) -> list[Event]:
        utt = self._utt
        if utt is None or utt.since_partial < self.options.partial_every * SAMPLE_RATE:
            return []
        utt.since_partial = 0
        committed = np.concatenate(utt.committed) if utt.committed else np.zeros((0, len(self.vocab)), np.float32)
        utt.committed = [committed] if committed.shape[0] else []
        if self.chunked:
            self._settle(utt, committed, committed.shape[0])
            tail = np.concatenate([committed[utt.stable_end:], utt.reader.provisional()])
        else:
            reading = utt.reader.provisional()
            self._settle(utt, reading, reading.shape[0] - int(self.options.stable_lag / self.frame_seconds))
            tail = reading[utt.stable_end:]
        words = [w for w, _, _ in self._words(tail)]
        partial = (" ".join(utt.stable), " ".join(words))
        if partial == utt.last_partial:
            return []
        utt.last_partial = partial
        return [Partial(utt.index, *partial)]

    def _settle(self, utt: _Utterance, log_probs: np.ndarray, limit: int) -> None:
        """Words of ``log_probs[stable_end:]`` closed by a space that starts before frame ``limit`` become stable."""
        for word, closed, space in self._words(log_probs[utt.stable_end:]):
            if not closed or utt.stable_end + space >= limit:
                break
            utt.stable.append(word)
            utt.stable_end += space

    def _words(self, log_probs: np.ndarray) -> list[tuple[str, bool, int]]:
        """The greedy path's words: ``(word, closed by a space, frame where that space's run starts)``."""
        ids = log_probs.argmax(axis=-1) if log_probs.shape[0] else np.zeros(0, np.int64)
        words, current, previous = [], [], BLANK
        for frame, token in enumerate(ids.tolist()):
            if token != previous:
                if token == self.space:
                    if current:
                        words.append((self.vocab.decode(current), True, frame))
                        current = []
                elif token != BLANK:
                    current.append(token)
            previous = token
        if current:
            words.append((self.vocab.decode(current), False, ids.size))
        return words


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
