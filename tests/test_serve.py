"""asr serve: the official OpenAI client against a live server on loopback, OpenAI-shaped errors for bad
requests (and the server serving the next good one), cancellation, and admission control."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

openai = pytest.importorskip("openai")

from tests.conftest import tone  # noqa: E402

pytestmark = pytest.mark.slow

KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", str(model), "--port", str(port),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a cap, not a wait: loading and warming up on a busy 2-core machine
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read())
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.fixture(scope="module")
def server(tiny_model):
    proc, url = start_server(tiny_model, "--api-key", KEY, "--max-upload-mb", "4", "--max-queue", "4")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0)


def test_every_response_format_through_the_official_client(client, speech):
    path = speech[3][0]
    with open(path, "rb") as f:
        plain = client.audio.transcriptions.create(model="asr", file=f)
    assert isinstance(plain.text, str)
    with open(path, "rb") as f:
        verbose = client.audio.transcriptions.create(model="asr", file=f, response_format="verbose_json",
                                                     timestamp_granularities=["word", "segment"])
    assert verbose.duration == pytest.approx(sf.info(str(path)).duration, abs=0.01)
    assert verbose.language == "english" and verbose.text == plain.text
    seg = verbose.segments[0]
    assert seg.id == 0 and seg.start == 0.0 and seg.temperature == 0.0 and 0 <= seg.no_speech_prob <= 1
    assert seg.avg_logprob <= 0 and seg.compression_ratio >= 0 and isinstance(seg.tokens, list)
    assert [w.word for w in verbose.words] == plain.text.split()
    for fmt in ("text", "srt", "vtt"):
        with open(path, "rb") as f:
            out = client.audio.transcriptions.create(model="asr", file=f, response_format=fmt)
        assert isinstance(out, str)
    assert out.startswith("WEBVTT")


def test_streaming_gives_deltas_then_done(client, speech):
    with open(speech[2][0], "rb") as f:
        events = list(client.audio.transcriptions.create(model="asr", file=f, stream=True))
    assert events[-1].type == "transcript.text.done"
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas == events[-1].text


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["model"]
    assert health(server)["status"] == "ok"


def test_the_client_gets_its_own_error_types(client, speech, tmp_path):
    bad = openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0)
    with open(speech[0][0], "rb") as f, pytest.raises(openai.AuthenticationError):
        bad.audio.transcriptions.create(model="asr", file=f)
    (tmp_path / "notes.txt").write_text("this is not audio\n" * 50)
    with open(tmp_path / "notes.txt", "rb") as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="asr", file=f)
    assert e.value.body["code"] == "invalid_audio" and "/tmp" not in e.value.body["message"]
    with open(speech[0][0], "rb") as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="asr", file=f, response_format="mp3")
    assert e.value.body["param"] == "response_format"


def post(server: str, parts: list[tuple[str, str, bytes]], key: str | None = KEY, truncate: int | None = None,
         headers: dict | None = None) -> tuple[int, dict, dict]:
    """A raw multipart POST (so bodies can be malformed); returns status, JSON body and headers."""
    boundary = "xXxBoundary"
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    host = server.split("//")[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    hdrs = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(body)),
            **({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
    conn.putrequest("POST", "/v1/audio/transcriptions")
    for k, v in hdrs.items():
        conn.putheader(k, v)
    conn.endheaders()
    if truncate is not None:  # send part of the body, then hang up
        conn.send(body[:truncate])
        conn.sock.shutdown(socket.SHUT_WR)
        try:
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            return 0, {}, {}
    else:
        conn.send(body)
        response = conn.getresponse()
    raw = response.read()
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = {"raw": raw.decode(errors="replace")}
    return response.status, payload, dict(response.getheaders())


def wav_bytes(seconds: float, tmp_path: Path) -> bytes:
    sf.write(tmp_path / "t.wav", tone(seconds), 16000)
    return (tmp_path / "t.wav").read_bytes()


def test_bad_requests_get_openai_shaped_4xx_and_the_server_goes_on(server, tmp_path, speech):
    good = Path(speech[0][0]).read_bytes()
    wav = wav_bytes(1.0, tmp_path)
    lying = bytearray(wav)
    lying[40:44] = (10 ** 9).to_bytes(4, "little")  # the data chunk claims a gigabyte
    cases = {
        "no file": ([("model", None, b"asr")], {}, 400),
        "empty file": ([("file", "a.wav", b"")], {}, 400),
        "text file": ([("file", "a.wav", b"hello, this is text\n" * 40)], {}, 400),
        "truncated wav": ([("file", "a.wav", wav[:30])], {}, 400),
        "unknown format": ([("file", "a.wav", good), ("response_format", None, b"docx")], {}, 400),
        "over the cap": ([("file", "big.wav", b"\0" * (4 * 1024 * 1024 + 100_000))], {}, 413),
        "wrong key": ([("file", "a.wav", good)], {"key": "nope"}, 401),
        "no key": ([("file", "a.wav", good)], {"key": None}, 401),
        "bad temperature": ([("file", "a.wav", good), ("temperature", None, b"hot")], {}, 400),
    }
    for name, (parts, kw, status) in cases.items():
        code, body, _ = post(server, parts, **kw)
        assert code == status, (name, body)
        assert set(body["error"]) == {"message", "type", "param", "code"}, name
    # Accepted, or a clean 400: never a 5xx.
    code, body, _ = post(server, [("file", "lying.wav", bytes(lying))])
    assert code in (200, 400), body
    # A path-like name is only a name: nothing is written outside the server's temporary folder.
    code, body, _ = post(server, [("file", "../../../../tmp/asr-pwned.wav", good)])
    assert code == 200 and not os.path.exists("/tmp/asr-pwned.wav")
    # A body cut off mid-upload, and a client that hangs up: the server stays up.
    post(server, [("file", "a.wav", good)], truncate=300)
    code, body, _ = post(server, [("file", "a.wav", good)])
    assert code == 200 and "text" in body


def request(server: str, method: str, path: str) -> tuple[int, dict]:
    c = http.client.HTTPConnection(server.split("//")[1])
    try:
        c.request(method, path, headers={"Authorization": f"Bearer {KEY}"})
        response = c.getresponse()
        return response.status, json.loads(response.read())
    finally:
        c.close()


def test_unknown_routes_and_wrong_methods_get_openai_shaped_errors(server):
    for method, path, status in (("GET", "/v1/nothing", 404), ("POST", "/nothing/at/all", 404),
                                 ("GET", "/v1/audio/transcriptions", 405), ("DELETE", "/v1/models", 405),
                                 ("GET", "/static/../app.py", 404)):
        code, body = request(server, method, path)
        assert code == status, (method, path, body)
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
        assert body["error"]["message"] and body["error"]["type"] == "invalid_request_error"
    assert request(server, "GET", "/health")[0] == 200  # and it goes on serving


def health(server: str) -> dict:
    c = http.client.HTTPConnection(server.split("//")[1])
    try:
        c.request("GET", "/health")
        return json.loads(c.getresponse().read())
    finally:
        c.close()


def test_a_client_that_disconnects_has_its_work_cancelled(server, tmp_path, speech):
    waves = [sf.read(str(p), dtype="float32")[0] for p, _ in speech]
    gap = np.zeros(8000, np.float32)
    long = np.concatenate([x for _ in range(40) for w in waves for x in (w, gap)])  # about 5 minutes
    sf.write(tmp_path / "long.mp3", long, 16000, format="MP3", compression_level=0.9)
    data = (tmp_path / "long.mp3").read_bytes()
    boundary = "b0"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.mp3"\r\n\r\n'.encode()
            + data + f"\r\n--{boundary}--\r\n".encode())
    host, port = server.split("//")[1].split(":")
    before = health(server)["cancelled"]
    s = socket.create_connection((host, int(port)))
    s.sendall(f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
              f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
              .encode() + body)
    time.sleep(0.2)
    s.close()  # gone before the answer
    for _ in range(150):
        state = health(server)
        if state["active_requests"] == 0 and state["cancelled"] > before:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the abandoned request was not cancelled and released: {state}")


def test_over_the_queue_requests_get_429_with_retry_after(tiny_model, tmp_path, speech):
    import threading

    proc, url = start_server(tiny_model, "--max-queue", "2")
    try:
        data = Path(speech[4][0]).read_bytes()
        results: list[tuple[int, dict]] = []

        def one() -> None:
            code, body, headers = post(url, [("file", "a.wav", data)], key=None)
            results.append((code, headers))

        threads = [threading.Thread(target=one) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        codes = sorted(code for code, _ in results)
        assert len(codes) == 12 and set(codes) <= {200, 429} and 200 in codes
        assert all("retry-after" in {k.lower() for k in h} for code, h in results if code == 429)
        code, _, _ = post(url, [("file", "a.wav", data)], key=None)
        assert code == 200  # and it still serves afterwards
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_model_is_loaded_off_the_main_thread(tiny_model, monkeypatch):
    # Torch work on the batcher's thread runs 4-5 x slower once the main thread has run a parallel op (loading
    # does): the server loads its model elsewhere, and the main thread only runs the event loop.
    import threading

    import asr.api
    from asr.server import app as server_app

    threads = []
    real_load = asr.api.load

    def recording_load(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_load(*args, **kwargs)

    monkeypatch.setattr(asr.api, "load", recording_load)
    monkeypatch.setenv(server_app.CONFIG_ENV, json.dumps({"model": str(tiny_model), "load": {"device": "cpu"},
                                                          "settings": {}}))
    app = server_app.app_from_env()
    assert app is not None and threads and threads[0] is not threading.main_thread()


@pytest.mark.parametrize("reading", ["vtln", "adapt"])
def test_serve_with_vtln_or_adapt_reads_as_the_api_does(tiny_model, speech, reading):
    import asr

    proc, url = start_server(tiny_model, f"--{reading}")
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        with open(speech[3][0], "rb") as f:
            served = client.audio.transcriptions.create(model="asr", file=f).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert served == asr.load(tiny_model, device="cpu", **{reading: True}).transcribe(speech[3][0]).text


def test_connections_that_never_send_a_whole_request_head_are_closed(tiny_model):
    """A slowloris's sockets (nothing sent, or half a head) are closed after --head-timeout; the server goes on."""
    proc, url = start_server(tiny_model, "--head-timeout", "1")
    port = int(url.rsplit(":", 1)[1])
    try:
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(40)]
        for s in sockets[::2]:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        for s in sockets:
            assert s.recv(1024) == b""  # closed by the server (EOF), blocking until it is
            s.close()
        import urllib.request

        with urllib.request.urlopen(url + "/health", timeout=30) as r:  # a whole request is still served
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
