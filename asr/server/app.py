"""``asr serve``: an OpenAI-compatible transcription server (FastAPI + uvicorn) with a web page.

``POST /v1/audio/transcriptions`` takes OpenAI's multipart fields and answers in OpenAI's shapes, so every OpenAI
client library works unchanged. Requests run on their own threads and share the network's forward passes
through :class:`asr.batcher.DynamicBatcher`; long uploads go through the segmenter; decoding runs off the event
loop. A bounded number of requests is admitted (429 with ``Retry-After`` beyond it), each within a time limit
that grows with its audio (408), and work for a client that disconnects is cancelled.

Fields filled honestly, or with a documented neutral value:

- ``language``: always ``english`` (the model's only language); the request's ``language``, ``prompt`` and
  ``temperature`` are accepted and ignored (decoding is deterministic);
- segments: ``seek`` = the segment's start in 10 ms frames (Whisper's unit), ``tokens`` = the model's character
  ids, ``temperature`` = 0.0, ``avg_logprob`` = the mean per-frame log-probability of the greedy path (beam:
  the decoder's score per frame), ``compression_ratio`` = text bytes / zlib-compressed bytes (as Whisper),
  ``no_speech_prob`` = the mean probability of the CTC blank over the segment's frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import Request  # resolved by FastAPI at run time: module level, not inside create_app

from asr.audio import AudioFile
from asr.server.batcher import BatchedNetwork, DynamicBatcher
from asr.errors import AsrError
from asr.output import format_srt, format_vtt, result_cues
from asr.transcribe import Cancelled, Result, Segment, SegmentResult, Transcriber

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
WEB = "web"  # the page's files, inside the package


@dataclass(frozen=True)
class ServeSettings:
    max_upload_mb: float = 25.0  # OpenAI's own cap
    max_queue: int = 16  # requests admitted at once (transcribing or waiting); more get 429
    time_limit: float = 30.0  # seconds a request may take ...
    time_per_audio_second: float = 0.5  # ... plus this per second of its audio (408 beyond)
    api_key: str | None = None  # Bearer token required when set
    batch_wait: float = 0.005  # seconds the batcher waits for concurrent requests to join a pass
    model_id: str = "asr"  # the name /v1/models lists (any name is accepted in requests)


class ApiError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class Server:
    """The shared state: one model, one batcher, one thread pool, the admission count."""

    def __init__(self, model, settings: ServeSettings = ServeSettings()):
        self.model = model
        self.settings = settings
        self.batcher = DynamicBatcher(model.network, model.batch_seconds, settings.batch_wait)
        self.pool = ThreadPoolExecutor(max_workers=settings.max_queue, thread_name_prefix="asr-request")
        self.active = 0
        self.lock = threading.Lock()
        self.served = 0
        self.audio_seconds = 0.0
        self.busy_seconds = 0.0  # request seconds served, for Retry-After
        self.cancelled = 0  # requests whose client went away, or whose time ran out

    def admit(self) -> None:
        with self.lock:
            if self.active >= self.settings.max_queue:
                retry = max(1, round(self.busy_seconds / max(self.served, 1)))
                raise ApiError(429, f"the server is busy: {self.active} requests in progress, at most "
                                    f"{self.settings.max_queue}; retry in {retry} s", type="rate_limit_error",
                               code="rate_limit_exceeded", headers={"Retry-After": str(retry)})
            self.active += 1

    def release(self, seconds: float, audio: float) -> None:
        with self.lock:
            self.active -= 1
            self.served += 1
            self.busy_seconds += seconds
            self.audio_seconds += audio

    def transcriber(self, priority: float, cancelled: threading.Event, on_segment=None) -> Transcriber:
        network = BatchedNetwork(self.batcher, priority, cancelled)
        return Transcriber(network, self.model.decoder, max_batch_seconds=self.model.batch_seconds, timestamps=True,
                           segmenting=self.model.segmenting, on_segment=on_segment, cancelled=cancelled)

    def close(self) -> None:
        self.batcher.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


# -- OpenAI's response shapes -------------------------------------------------------------------------------

def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0


def verbose_json(result: Result, granularities: set[str]) -> dict:
    body = {"task": "transcribe", "language": "english", "duration": round(result.duration, 3), "text": result.text}
    body["segments"] = [segment_json(s) for s in result.segments]  # always: they cost nothing
    if "word" in granularities:
        body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in result.words]
    body["usage"] = {"type": "duration", "seconds": round(result.duration, 3)}
    return body


def _hide(message: str, path: str) -> str:
    """An audio error without the server's temporary path in it."""
    return message.replace(path + ": ", "").replace(path, "the upload")


def segment_json(segment: SegmentResult) -> dict:
    return {"id": segment.id, "seek": int(round(segment.start * 100)), "start": segment.start, "end": segment.end,
            "text": segment.text, "tokens": segment.tokens, "temperature": 0.0, "avg_logprob": segment.avg_logprob,
            "compression_ratio": compression_ratio(segment.text), "no_speech_prob": segment.no_speech_prob}


def confidences(result: Result) -> list[dict]:
    """Per word confidence, for the web page (not an OpenAI field: sent under ``x_asr``)."""
    return [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence} for w in result.words]


# -- the app ------------------------------------------------------------------------------------------------

def create_app(server: Server):
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        server.close()

    app = FastAPI(title="asr", version="1", docs_url="/docs", lifespan=lifespan)
    settings = server.settings
    web = Path(str(files("asr.server").joinpath(WEB)))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse(ApiError(400, f"invalid request: {str(e)[:200]}").body(), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):  # never a traceback to the client
        return JSONResponse(ApiError(500, f"internal error: {type(e).__name__}", "server_error").body(),
                            status_code=500)

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        if header != f"Bearer {settings.api_key}":
            raise ApiError(401, "incorrect API key provided" if header else "missing API key (Authorization: Bearer)",
                           code="invalid_api_key")

    @app.get("/health")
    async def health():
        return {"status": "ok", "active_requests": server.active, "max_queue": settings.max_queue,
                "served": server.served, "cancelled": server.cancelled, "forward_passes": server.batcher.batches}

    @app.get("/v1/models")
    async def models(request: Request):
        check_key(request)
        created = int(os.path.getmtime(server.model.path)) if server.model.path else 0
        return {"object": "list", "data": [{"id": settings.model_id, "object": "model", "created": created,
                                            "owned_by": "asr"}]}

    @app.get("/")
    async def page():
        return FileResponse(web / "index.html", media_type="text/html")

    @app.get("/static/{name}")
    async def static(name: str):
        path = web / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise ApiError(404, f"no such file: {name}", code="not_found")
        return FileResponse(path)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        check_key(request)
        server.admit()
        started = time.monotonic()
        audio_seconds = 0.0
        folder = tempfile.mkdtemp(prefix="asr-upload-")
        cancelled = threading.Event()
        streaming = False
        try:
            fields, path = await read_upload(request, folder, settings)
            options = parse_fields(fields)
            duration = await asyncio.get_running_loop().run_in_executor(server.pool, probe, path)
            audio_seconds = duration
            limit = settings.time_limit + settings.time_per_audio_second * duration
            if options["stream"]:
                streaming = True
                return StreamingResponse(stream_events(server, request, path, duration, cancelled, limit, folder,
                                                       started), media_type="text/event-stream")
            result = await run_request(server, request, path, duration, cancelled, limit)
            elapsed = time.monotonic() - started
            headers = {"X-Processing-Seconds": f"{elapsed:.3f}", "X-Audio-Seconds": f"{result.duration:.3f}"}
            fmt = options["response_format"]
            if fmt == "json":
                return JSONResponse({"text": result.text}, headers=headers)
            if fmt == "verbose_json":
                body = verbose_json(result, options["granularities"])
                if options["confidence"]:
                    body["x_asr"] = {"words": confidences(result), "processing_seconds": round(elapsed, 3)}
                return JSONResponse(body, headers=headers)
            text = {"text": result.text + "\n", "srt": format_srt(result_cues(result)),
                    "vtt": format_vtt(result_cues(result))}[fmt]
            return PlainTextResponse(text, headers=headers)
        finally:
            if not streaming:
                cancelled.set()
                shutil.rmtree(folder, ignore_errors=True)
                server.release(time.monotonic() - started, audio_seconds)

    return app


async def read_upload(request, folder: str, settings: ServeSettings) -> tuple[dict, str]:
    """The multipart form: its fields, and the file saved under ``folder`` (never under the client's name)."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    cap = int(settings.max_upload_mb * 1024 * 1024)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap + 64 * 1024:
        raise ApiError(413, f"the upload is {int(declared) / 1048576:.1f} MiB; the limit is "
                            f"{settings.max_upload_mb:g} MiB", param="file", code="file_too_large")
    received = 0

    async def counting_receive():  # a body without Content-Length (chunked) is stopped at the cap too
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > cap + 64 * 1024:
            raise _TooLarge()
        return message

    try:
        form = await Request(request.scope, counting_receive).form(max_files=1, max_fields=32)
    except _TooLarge:
        raise ApiError(413, f"the upload is over the {settings.max_upload_mb:g} MiB limit", param="file",
                       code="file_too_large") from None
    except Exception as e:  # malformed or cut-off multipart bodies, a client gone mid-upload
        raise ApiError(400, f"could not read the multipart body ({type(e).__name__}: {str(e)[:120]})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "no file: send the audio as the multipart field 'file'", param="file",
                       code="missing_file")
    suffix = re.sub(r"[^a-z0-9]", "", Path(upload.filename or "").suffix.lower())[:8]
    path = os.path.join(folder, "upload" + (f".{suffix}" if suffix else ""))  # the client's name is never a path
    size = 0
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > cap:
                raise ApiError(413, f"the upload is over the {settings.max_upload_mb:g} MiB limit", param="file",
                               code="file_too_large")
            out.write(chunk)
    await form.close()
    if size == 0:
        raise ApiError(400, "the uploaded file is empty", param="file", code="empty_file")
    fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
    fields["timestamp_granularities[]"] = [v for k, v in form.multi_items() if k in ("timestamp_granularities[]",
                                                                                     "timestamp_granularities")]
    return fields, path


class _TooLarge(Exception):
    pass


def parse_fields(fields: dict) -> dict:
    fmt = fields.get("response_format") or "json"
    if fmt not in RESPONSE_FORMATS:
        raise ApiError(400, f"response_format {fmt!r} is not one of {', '.join(RESPONSE_FORMATS)}",
                       param="response_format", code="invalid_value")
    granularities = set(fields["timestamp_granularities[]"])
    if granularities - set(GRANULARITIES):
        raise ApiError(400, f"timestamp_granularities must be among {', '.join(GRANULARITIES)}",
                       param="timestamp_granularities", code="invalid_value")
    if granularities and fmt != "verbose_json":
        raise ApiError(400, "timestamp_granularities needs response_format verbose_json",
                       param="timestamp_granularities", code="invalid_value")
    try:
        temperature = float(fields.get("temperature") or 0)
    except ValueError:
        raise ApiError(400, "temperature must be a number", param="temperature", code="invalid_value") from None
    if not 0 <= temperature <= 1:
        raise ApiError(400, "temperature must be between 0 and 1", param="temperature", code="invalid_value")
    stream = str(fields.get("stream") or "false").lower() in ("true", "1")
    return {"response_format": fmt, "granularities": granularities, "stream": stream,
            "confidence": str(fields.get("x_asr_confidence") or "").lower() in ("true", "1")}


def probe(path: str) -> float:
    """Seconds of audio in the upload, or a 400 naming what is wrong with it."""
    try:
        with AudioFile(path) as f:
            if f.duration:
                return f.duration
            samples = sum(b.size for b in f.blocks())
    except AsrError as e:
        raise ApiError(400, f"could not read the audio: {_hide(str(e), path)}", param="file",
                       code="invalid_audio") from None
    if samples == 0:
        raise ApiError(400, "the audio holds no samples", param="file", code="invalid_audio")
    return samples / 16000


def transcribe_upload(server: Server, path: str, duration: float, cancelled: threading.Event,
                      on_segment=None) -> Result:
    """On a pool thread: the transcript (``on_segment(segment)`` as each is decoded)."""
    notify = (lambda result, segment: on_segment(segment)) if on_segment else None
    result = next(server.transcriber(duration, cancelled, notify).transcribe([Segment(path)]))
    if result.error:
        raise ApiError(400, f"could not read the audio: {_hide(result.error, path)}", param="file",
                       code="invalid_audio")
    return result


async def run_request(server: Server, request, path: str, duration: float, cancelled: threading.Event,
                      limit: float) -> Result:
    """Transcribe on the pool, watching the clock and the client; cancel the work if either runs out."""
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(server.pool, transcribe_upload, server, path, duration, cancelled)
    deadline = loop.time() + limit
    while True:
        done, _ = await asyncio.wait({work}, timeout=0.1)
        if done:
            try:
                return work.result()
            except Cancelled:
                raise ApiError(408, "the request was cancelled", type="timeout_error", code="cancelled") from None
        if await request.is_disconnected():
            cancelled.set()
            server.cancelled += 1
            raise ApiError(499, "the client closed the connection", code="client_closed")
        if loop.time() > deadline:
            cancelled.set()
            server.cancelled += 1
            raise ApiError(408, f"the request took more than its limit of {limit:.0f} s", type="timeout_error",
                           code="timeout")


async def stream_events(server: Server, request, path: str, duration: float, cancelled: threading.Event,
                        limit: float, folder: str, started: float):
    """Server-sent events: ``transcript.text.delta`` per segment as it is decoded, then ``transcript.text.done``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    on_segment = lambda segment: loop.call_soon_threadsafe(queue.put_nowait, segment)  # noqa: E731
    work = loop.run_in_executor(server.pool, transcribe_upload, server, path, duration, cancelled, on_segment)
    deadline = loop.time() + limit
    sent = 0
    try:
        while True:
            try:
                segment = await asyncio.wait_for(queue.get(), timeout=0.1)
            except asyncio.TimeoutError:
                segment = None
            if segment is not None:
                if segment.text:
                    delta = (" " if sent else "") + segment.text
                    sent += 1
                    yield sse({"type": "transcript.text.delta", "delta": delta})
                continue
            if work.done() and queue.empty():
                break
            if await request.is_disconnected() or loop.time() > deadline:
                cancelled.set()
                server.cancelled += 1
                return
        try:
            result = work.result()
        except (ApiError, Cancelled) as e:
            yield sse({"type": "error", "error": ApiError(400, str(e)).body()["error"]})
            return
        yield sse({"type": "transcript.text.done", "text": result.text,
                   "usage": {"type": "duration", "seconds": round(result.duration, 3)}})
    finally:
        cancelled.set()
        shutil.rmtree(folder, ignore_errors=True)
        server.release(time.monotonic() - started, duration)


def sse(event: dict) -> str:
    return f"data: {json.dumps(event)}\n\n"


# -- running it ---------------------------------------------------------------------------------------------

CONFIG_ENV = "ASR_SERVE_CONFIG"  # how uvicorn's worker processes learn the model and settings


def app_from_env():
    """The app, built from ``$ASR_SERVE_CONFIG`` (JSON): what each of uvicorn's ``--workers`` processes runs."""
    from asr.api import load

    config = json.loads(os.environ[CONFIG_ENV])
    # Loaded on a thread of its own, not the main one: once the main thread has run a parallel torch op (loading
    # does), every forward pass on another thread, the batcher's, runs 4-5 x slower on this 2-core machine
    # (measured: 49 vs 11 ms for a 6 s clip; OpenMP's thread team of the main thread competes with the
    # batcher's). The main thread then only runs the event loop.
    with ThreadPoolExecutor(max_workers=1) as loader:
        model = loader.submit(load, config["model"], **config["load"]).result()
    return create_app(Server(model, ServeSettings(**config["settings"])))


def serve(model: str, load_options: dict, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1) -> None:
    """Load the model and serve until interrupted (uvicorn; several worker processes with ``workers``)."""
    import ipaddress
    import sys

    import uvicorn

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and settings.api_key is None:
        print(f"asr: warning: serving on {host} without --api-key: anyone who can reach this port can use it",
              file=sys.stderr)
    from dataclasses import asdict

    os.environ[CONFIG_ENV] = json.dumps({"model": model, "load": load_options, "settings": asdict(settings)})
    if workers > 1:
        uvicorn.run("asr.server.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level="info")
    else:  # loaded before the port opens: a bad model is a one-line error, not a server that fails later
        uvicorn.run(app_from_env(), host=host, port=port, log_level="info")
