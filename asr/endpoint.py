"""Endpointing: where the utterances of a live stream start and end, from Silero VAD's speech probabilities.

An :class:`Endpointer` takes 16 kHz samples in blocks of any size and says, in order, what to do with them:
:class:`Start` an utterance (at the detected speech, less up to ``prefix`` seconds of the audio before it), hand it
:class:`Audio`, :class:`End` it (a pause of ``silence`` seconds, or ``max_utterance`` seconds of audio). It knows
nothing of models or text: :class:`asr.stream.Stream` gives each utterance to a reader (:mod:`asr.partials`), as
sherpa-onnx's streams leave recognition to its recognizer. Without a VAD an utterance lasts from the stream's start
until :meth:`Endpointer.commit` or its length limit. The audio it holds between utterances is the last ``prefix``
seconds, so what it keeps is bounded by the rules whatever a client sends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.vad import VAD_FRAME, SileroVAD


@dataclass(frozen=True)
class EndpointRules:
    """Where utterances start and end. Times in seconds."""

    silence: float = 0.5  # a pause this long after speech ends the utterance (OpenAI's server VAD default too)
    max_utterance: float = 20.0  # and an utterance this long ends even without a pause
    threshold: float = 0.5  # Silero VAD's speech probability that starts speech (it ends below threshold - 0.15)
    prefix: float = 0.3  # audio kept from before the detected start, for the final reading


@dataclass
class Start:
    """An utterance begins; its audio starts at sample ``start`` of the stream (the prefix included)."""

    start: int
    detected: bool  # speech was detected (False: an utterance opened without a VAD, or after a commit)


@dataclass
class Audio:
    """The next samples of the utterance in progress."""

    samples: np.ndarray  # (samples,) float32


@dataclass
class End:
    """The utterance in progress ends at sample ``end`` of the stream."""

    end: int


Cut = Start | Audio | End


class Endpointer:
    """Cuts one stream into utterances (module doc); not thread-safe."""

    def __init__(self, rules: EndpointRules = EndpointRules(), vad: bool = True):
        self.rules = rules
        self.vad = SileroVAD() if vad else None
        self.samples = 0  # samples accepted
        self._vad_frames = 0  # VAD frames judged
        self._quiet = 0  # consecutive VAD frames below the end threshold, in an utterance
        self._held: list[np.ndarray] = []  # audio not in an utterance: the last `prefix` seconds of it
        self._held_start = 0  # its first sample in the stream
        self.start: int | None = None  # where the utterance in progress starts; None between utterances
        self.given = 0  # samples handed to the utterance in progress (Audio cuts)

    def opening(self) -> list[Cut]:
        """What the stream starts with: without a VAD, an utterance from sample 0."""
        return [] if self.vad is not None else self._begin(0, detected=False)

    def accept(self, samples: np.ndarray) -> list[Cut]:
        """``(samples,)`` float32 at 16 kHz -> what to do with them, in order."""
        block_start = self.samples
        self.samples += samples.size
        if self.vad is not None:
            return self._judge(self.vad(samples), samples, block_start)
        cuts = self._feed(samples)
        if self.start is not None and self.samples - self.start >= self.rules.max_utterance * SAMPLE_RATE:
            cuts += self._end(self.samples) + self._begin(self.samples, detected=False)
        return cuts

    def commit(self) -> list[Cut]:
        """End the utterance in progress now, if it holds audio (without a VAD, the next one opens)."""
        if self.start is None or not self.given:
            return []
        cuts = self._end(self.samples)
        return cuts + (self._begin(self.samples, detected=False) if self.vad is None else [])

    def clear(self) -> list[Cut]:
        """Forget the utterance in progress (its reader is dropped, no :class:`End`) and the audio held."""
        self.start, self.given, self._quiet = None, 0, 0
        self._held, self._held_start = [], self.samples
        return self._begin(self.samples, detected=False) if self.vad is None else []

    def finish(self) -> list[Cut]:
        """The stream has ended: the VAD's last frame judged, and the utterance in progress ended."""
        cuts: list[Cut] = []
        if self.vad is not None:
            empty = np.zeros(0, np.float32)
            cuts += self._judge(self.vad(empty, last=True), empty, self.samples)
        if self.start is not None and (self.given or self.vad is not None):
            cuts += self._end(self.samples)
        self.start = None
        return cuts

    def _judge(self, probs: np.ndarray, samples: np.ndarray, block_start: int) -> list[Cut]:
        """Walk the VAD's frames of this block: start and end utterances, each fed the audio it holds."""
        rules = self.rules
        low = rules.threshold - 0.15
        need = max(int(round(rules.silence * SAMPLE_RATE / VAD_FRAME)), 1)
        cuts: list[Cut] = []
        fed = block_start  # samples of this block already handed on (to an utterance or the held audio)
        for p in probs:
            frame_end = (self._vad_frames + 1) * VAD_FRAME
            self._vad_frames += 1
            if self.start is None:
                if p >= rules.threshold:
                    self._hold(samples, block_start, fed, frame_end)
                    fed = max(fed, min(frame_end, self.samples))
                    cuts += self._speech(frame_end - VAD_FRAME)
                continue
            self._quiet = self._quiet + 1 if p < low else 0
            end = min(frame_end, self.samples)
            if self._quiet >= need or end - self.start >= rules.max_utterance * SAMPLE_RATE:
                cuts += self._feed(samples[fed - block_start: end - block_start])
                fed = max(fed, end)
                still_speaking = self._quiet < need
                cuts += self._end(end)
                if still_speaking:  # cut for length: the speech goes on in a new utterance
                    cuts += self._begin(end, detected=True)
        if self.start is not None:
            cuts += self._feed(samples[fed - block_start:])
        else:
            self._hold(samples, block_start, fed, self.samples)
        return cuts

    def _hold(self, samples: np.ndarray, block_start: int, fed: int, upto: int) -> None:
        """Keep the audio outside utterances, trimmed to the last ``prefix`` seconds."""
        part = samples[max(fed - block_start, 0): max(upto - block_start, 0)]
        if part.size:
            self._held.append(part)
        keep = int(self.rules.prefix * SAMPLE_RATE)
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.float32)
        end = self._held_start + held.size
        if held.size > keep:
            held = held[held.size - keep:]
        self._held, self._held_start = ([held] if held.size else []), end - held.size

    def _speech(self, at: int) -> list[Cut]:
        """Speech detected at sample ``at``: an utterance begins with the held audio before it."""
        held = np.concatenate(self._held) if self._held else np.zeros(0, np.float32)
        cuts = self._begin(self._held_start if held.size else at, detected=True)
        self._held, self._held_start = [], self.samples
        return cuts + self._feed(held)

    def _begin(self, start: int, detected: bool) -> list[Cut]:
        self.start, self.given, self._quiet = start, 0, 0
        return [Start(start, detected)]

    def _feed(self, samples: np.ndarray) -> list[Cut]:
        if self.start is None or not samples.size:
            return []
        self.given += samples.size
        return [Audio(samples)]

    def _end(self, end: int) -> list[Cut]:
        self.start, self.given, self._quiet = None, 0, 0
        self._held, self._held_start = [], end
        return [End(end)]
