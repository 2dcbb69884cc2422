"""Downloads against a real HTTP server on loopback, and safe extraction."""

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile

import pytest

from asr.corpora.archive import extract
from asr.corpora.download import download
from asr.errors import AsrError

PAYLOAD = os.urandom(300_000)


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file.bin with Range support; /cut.bin drops the connection once mid-file."""

    cut_done = False
    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path not in ("/file.bin", "/cut.bin"):
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        Handler.ranges.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        body = PAYLOAD[start:]
        if self.path == "/cut.bin" and not Handler.cut_done:
            Handler.cut_done = True
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection dies a third of the way through
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    Handler.cut_done, Handler.ranges = False, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_normal_download_verified_and_idempotent(server, tmp_path):
    dest = download(f"{server}/file.bin", tmp_path / "f.bin", SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "f.bin.part").exists()
    n = len(Handler.ranges)
    download(f"{server}/file.bin", tmp_path / "f.bin", SHA, progress=False)
    assert len(Handler.ranges) == n  # already there and verified: no request at all


def test_cut_connection_is_resumed_with_range(server, tmp_path):
    dest = download(f"{server}/cut.bin", tmp_path / "c.bin", MD5, progress=False, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert Handler.ranges[0] is None and Handler.ranges[1] == f"bytes={len(PAYLOAD) // 3}-"


def test_interrupted_run_resumes_from_the_part_file(server, tmp_path):
    (tmp_path / "r.bin.part").write_bytes(PAYLOAD[:1000])  # what a killed earlier run left
    dest = download(f"{server}/file.bin", tmp_path / "r.bin", SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD and Handler.ranges == ["bytes=1000-"]


def test_checksum_mismatch_is_refused_and_removed(server, tmp_path):
    with pytest.raises(AsrError, match=r"file\.bin: sha256 checksum mismatch \(expected 0+, got " + SHA):
        download(f"{server}/file.bin", tmp_path / "m.bin", "0" * 64, progress=False)
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.bin.part").exists()


def test_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(AsrError, match=r"/missing\.tar\.gz: HTTP 404 Not Found"):
        download(f"{server}/missing.tar.gz", tmp_path / "x.tar.gz", progress=False)


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_archive_with_parent_member_is_refused(tmp_path):
    bad = _tar(tmp_path / "bad.tar.gz", [_file("corpus/ok.txt"), _file("../escape.txt")])
    with pytest.raises(AsrError, match=r"bad\.tar\.gz: member '\.\./escape\.txt' would be written outside"):
        extract(bad, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "corpus" / "ok.txt").exists()


def test_archive_with_escaping_link_or_absolute_path_is_refused(tmp_path):
    link = tarfile.TarInfo("corpus/link")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    with pytest.raises(AsrError, match="points outside"):
        extract(_tar(tmp_path / "l.tar.gz", [(link, None)]), tmp_path / "out1")
    with pytest.raises(AsrError, match="would be written outside"):
        extract(_tar(tmp_path / "a.tar.gz", [_file("/tmp/abs.txt")]), tmp_path / "out2")
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("../zip-escape.txt", "x")
    with pytest.raises(AsrError, match="would be written outside"):
        extract(z, tmp_path / "out3")


def test_good_archive_extracts_once(tmp_path):
    good = _tar(tmp_path / "good.tar.gz", [_file("corpus/a.txt", b"hello")])
    extract(good, tmp_path / "out")
    assert (tmp_path / "out" / "corpus" / "a.txt").read_bytes() == b"hello"
    (tmp_path / "out" / "corpus" / "a.txt").unlink()
    extract(good, tmp_path / "out")  # marked done: not extracted again
    assert not (tmp_path / "out" / "corpus" / "a.txt").exists()
    (tmp_path / "junk.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(AsrError, match=r"junk\.tar\.gz: not a readable archive"):
        extract(tmp_path / "junk.tar.gz", tmp_path / "out4")
