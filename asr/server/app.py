"""``asr serve``: an OpenAI-compatible transcription server (FastAPI + uvicorn) with a web page.

``POST /v1/audio/transcriptions`` takes OpenAI's multipart fields and answers in OpenAI's shapes
(:mod:`asr.server.responses`), so every OpenAI client library works unchanged. A request goes through four
steps: admission (a bounded number at once; 429 with ``Retry-After`` beyond it), the upload
(:mod:`asr.server.uploads`: saved under a cap, fields checked, audio probed), transcription on a pool thread
within a time limit that grows with its audio (408), its windows sharing the network's forward passes with
other requests' through :class:`asr.server.batcher.DynamicBatcher`, and rendering. Work for a client that
disconnects is cancelled. Every error, unknown routes and wrong methods included, is in OpenAI's error shape.

Live recognition runs over WebSockets: OpenAI's Realtime transcription protocol at ``/v1/realtime``
(:mod:`asr.server.realtime`) and Vosk's at ``/ws`` (:mod:`asr.server.vosk`), both on :mod:`asr.server.live`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fastapi import Request, WebSocket  # resolved by FastAPI at run time: module level, not inside create_app

from asr.assemble import Result
from asr.chunked import ChunkSettings
from asr.errors import Cancelled
from asr.server.batcher import BatchedNetwork, DynamicBatcher
from asr.server.live import LiveSessions, LiveSettings, serve_session
from asr.server.protocol import HEAD_TIMEOUT_ENV
from asr.server.realtime import RealtimeSession
from asr.server.responses import ApiError, render, sse
from asr.server.uploads import invalid_audio, parse_fields, probe, read_upload
from asr.server.vosk import VoskSession
from asr.stream import StreamOptions
from asr.transcribe import Transcriber
from asr.windows import Span

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
    max_sessions: int = 32  # live WebSocket sessions at once (/v1/realtime, /ws); more are refused
    session_idle: float = 30.0  # seconds a live session may send nothing before it is closed
    session_max: float = 3600.0  # seconds a live session may last
    chunk: float = 0.64  # live sessions: seconds the network reads at once, and its look-ahead
    right_context: float = 0.32
    max_message_mb: float = 1.0  # largest WebSocket message
    head_timeout: float = 10.0  # seconds a new connection has to send a whole request head (asr.server.protocol)

    def live(self) -> LiveSettings:
        chunking = ChunkSettings(self.chunk, self.right_context)
        return LiveSettings(self.max_sessions, self.session_idle, self.session_max,
                            int(self.max_message_mb * 1024 * 1024), StreamOptions(chunking=chunking))


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
        self.live = LiveSessions(model, settings.live(), settings.api_key)

    def admit(self) -> "Job":
        """A place for one request, or a 429 when every place is taken."""
        with self.lock:
            if self.active >= self.settings.max_queue:
                retry = max(1, round(self.busy_seconds / max(self.served, 1)))
                raise ApiError(429, f"the server is busy: {self.active} requests in progress, at most "
                                    f"{self.settings.max_queue}; retry in {retry} s", type="rate_limit_error",
                               code="rate_limit_exceeded", headers={"Retry-After": str(retry)})
            self.active += 1
        return Job(self)

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
        self.live.close()
        if hasattr(self.model.decoder, "close"):  # a pool of beam-search processes
            self.model.decoder.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class Job:
    """One admitted request: its upload folder, its clock, its cancellation; closed once, by whoever ends it
    (the route, or the event stream it hands the work to)."""

    def __init__(self, server: Server):
        self.server = server
        self.started = time.monotonic()
        self.folder = tempfile.mkdtemp(prefix="asr-upload-")
        self.cancelled = threading.Event()
        self.path = ""
        self.duration = 0.0  # seconds of audio, once probed

    @property
    def limit(self) -> float:
        settings = self.server.settings
        return settings.time_limit + settings.time_per_audio_second * self.duration

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def transcribe(self, on_segment=None) -> Result:
        """On a pool thread: the transcript (``on_segment(segment)`` as each is decoded)."""
        notify = (lambda result, segment: on_segment(segment)) if on_segment else None
        result = next(self.server.transcriber(self.duration, self.cancelled, notify).transcribe([Span(self.path)]))
        if result.error:
            raise invalid_audio(result.error, self.path)
        return result

    def cancel(self) -> None:
        self.cancelled.set()
        self.server.cancelled += 1

    def close(self) -> None:
        if self.folder is None:
            return
        self.cancelled.set()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
        self.server.release(self.elapsed, self.duration)


def add_error_handlers(app) -> None:
    """Every error the app answers in OpenAI's shape: ours, FastAPI's (unknown routes, wrong methods, invalid
    fields) and anything unexpected (never a traceback to the client)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):  # unknown routes, wrong methods
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        message = {404: f"no route {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(e.status_code, str(e.detail))
        return JSONResponse(ApiError(e.status_code, message, code=code).body(), status_code=e.status_code,
                            headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse(ApiError(400, f"invalid request: {str(e)[:200]}").body(), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, e: Exception):  # never a traceback to the client
        return JSONResponse(ApiError(500, f"internal error: {type(e).__name__}", "server_error").body(),
                            status_code=500)


def create_app(server: Server):
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse

    @asynccontextmanager
    async def lifespan(app):
        yield
        server.close()

    app = FastAPI(title="asr", version="1", docs_url="/docs", lifespan=lifespan)
    settings = server.settings
    web = Path(str(files("asr.server").joinpath(WEB)))

    add_error_handlers(app)

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
                "served": server.served, "cancelled": server.cancelled, "forward_passes": server.batcher.batches,
                "live_sessions": server.live.active, "max_sessions": settings.max_sessions,
                "live_sessions_opened": server.live.opened, "live_sessions_refused": server.live.refused}

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket):  # OpenAI's Realtime transcription (?intent=transcription)
        await serve_session(server.live, websocket, lambda send: RealtimeSession(server.live, send, settings.model_id))

    @app.websocket("/ws")
    async def vosk(websocket: WebSocket):  # Vosk's protocol
        await serve_session(server.live, websocket, lambda send: VoskSession(server.live, send))

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
        job = server.admit()
        handed_over = False  # to the event stream, which closes the job when it ends
        try:
            upload = await read_upload(request, job.folder, settings.max_upload_mb)
            options = parse_fields(upload.fields)
            job.path = upload.path
            job.duration = await asyncio.get_running_loop().run_in_executor(server.pool, probe, upload.path)
            if options.stream:
                handed_over = True
                return StreamingResponse(stream_events(job, request), media_type="text/event-stream")
            result = await run_request(job, request)
            headers = {"X-Processing-Seconds": f"{job.elapsed:.3f}", "X-Audio-Seconds": f"{result.duration:.3f}"}
            kind, body = render(result, options, job.elapsed)
            return (JSONResponse if kind == "json" else PlainTextResponse)(body, headers=headers)
        finally:
            if not handed_over:
                job.close()

    return app


async def run_request(job: Job, request) -> Result:
    """Transcribe on the pool, watching the clock and the client; cancel the work if either runs out."""
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(job.server.pool, job.transcribe)
    deadline = loop.time() + job.limit
    while True:
        done, _ = await asyncio.wait({work}, timeout=0.1)
        if done:
            try:
                return work.result()
            except Cancelled:
                raise ApiError(408, "the request was cancelled", type="timeout_error", code="cancelled") from None
        if await request.is_disconnected():
            job.cancel()
            raise ApiError(499, "the client closed the connection", code="client_closed")
        if loop.time() > deadline:
            job.cancel()
            raise ApiError(408, f"the request took more than its limit of {job.limit:.0f} s", type="timeout_error",
                           code="timeout")


async def stream_events(job: Job, request):
    """Server-sent events: ``transcript.text.delta`` per segment as it is decoded, then ``transcript.text.done``."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    on_segment = lambda segment: loop.call_soon_threadsafe(queue.put_nowait, segment)  # noqa: E731
    work = loop.run_in_executor(job.server.pool, job.transcribe, on_segment)
    deadline = loop.time() + job.limit
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
                job.cancel()
                return
        try:
            result = work.result()
        except (ApiError, Cancelled) as e:
            yield sse({"type": "error", "error": ApiError(400, str(e)).body()["error"]})
            return
        yield sse({"type": "transcript.text.done", "text": result.text,
                   "usage": {"type": "duration", "seconds": round(result.duration, 3)}})
    finally:
        job.close()


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
    server = Server(model, ServeSettings(**config["settings"]))
    server.live.warm_up()
    return create_app(server)


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
    os.environ[HEAD_TIMEOUT_ENV] = str(settings.head_timeout)  # read by each worker's connections
    # oneDNN keeps up to 1,024 compiled kernels, one per input shape, and a live session's rereads are each a new
    # shape: 45 MB kept after sessions end for nothing reused; 16 keep the repeating chunk shapes (docs/streaming.md).
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
    common = {"host": host, "port": port, "log_level": "info", "ws_max_size": int(settings.max_message_mb * 1048576),
              "http": "asr.server.protocol:HeadTimeoutProtocol"}  # sockets that never send a request are closed
    if workers > 1:
        uvicorn.run("asr.server.app:app_from_env", factory=True, workers=workers, **common)
    else:  # loaded before the port opens: a bad model is a one-line error, not a server that fails later
        uvicorn.run(app_from_env(), **common)
