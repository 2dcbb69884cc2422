"""Live sessions over WebSockets: admission, authentication, limits, and the recogniser run off the event loop.

Both live protocols (:mod:`asr.server.realtime`, OpenAI's Realtime transcription; :mod:`asr.server.vosk`,
Vosk's) run on this: a bounded number of sessions at once (more are told so and closed with 1013, "try again
later"), the server's API key (a Bearer header, or for browsers, which cannot set headers on a WebSocket, an
``api_key`` query parameter or OpenAI's ``openai-insecure-api-key.KEY`` subprotocol), a session closed after
``idle_seconds`` without a message or ``max_seconds`` in all, and each session's :class:`asr.stream.Stream` run
on a small thread pool so that no session's decoding holds up another's messages.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.endpoint import Endpointer
from asr.stream import Stream, StreamOptions

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # authentication failed, or a limit was reached
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_LATER = 1013

log = logging.getLogger("asr.server")


def _gone(websocket) -> bool:
    """Whether the connection is already closed (by the client, or by us)."""
    from starlette.websockets import WebSocketState

    return WebSocketState.DISCONNECTED in (websocket.client_state, websocket.application_state)


@dataclass(frozen=True)
class LiveSettings:
    max_sessions: int = 32  # live sessions at once; more are refused
    idle_seconds: float = 30.0  # a session that sends nothing for this long is closed
    max_seconds: float = 3600.0  # and none lasts longer than this
    max_message_bytes: int = 1 << 20  # largest WebSocket message (an append of 1 MiB is 22 s of 24 kHz audio)
    stream: StreamOptions = StreamOptions()  # chunks, endpoints; sessions may change the endpoints


class SessionEnd(Exception):
    """Close the session: ``code`` and ``reason`` for the WebSocket close frame."""

    def __init__(self, code: int, reason: str, notify: bool = True):
        super().__init__(reason)
        self.code, self.reason, self.notify = code, reason, notify  # notify: tell the client why, first


class LiveSessions:
    """Every live session of one server: the shared model, the admission count, the workers."""

    def __init__(self, model, settings: LiveSettings = LiveSettings(), api_key: str | None = None):
        self.model = model
        self.settings = settings
        self.api_key = api_key
        self.active = 0
        self.opened = 0
        self.refused = 0
        self.lock = threading.Lock()
        # As many workers as cores: a session's decoding is CPU work, more threads would only compete.
        self.workers = max(os.cpu_count() or 1, 1)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="asr-live")

    def warm_up(self) -> None:
        """Read a second of quiet through every worker thread before the first client comes: the VAD's model
        loads and each thread's kernels are built now, so the first session is not slower than the rest and
        the server's memory at start is what it is between sessions (docs/streaming.md)."""
        together = threading.Barrier(self.workers)  # each worker takes one: a thread waits until all are busy

        quiet = np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32)  # read, never written

        def one() -> None:
            together.wait(timeout=60)
            Endpointer(self.settings.stream.endpoints).accept(quiet)
            session = self.model.stream(replace(self.settings.stream, vad=False))
            session.accept(quiet)
            session.finish()

        for done in [self.pool.submit(one) for _ in range(self.workers)]:
            done.result()
        _trim_heap()

    def authorized(self, websocket) -> bool:
        if self.api_key is None:
            return True
        if websocket.headers.get("authorization", "") == f"Bearer {self.api_key}":
            return True
        if websocket.query_params.get("api_key") == self.api_key:
            return True
        protocols = websocket.headers.get("sec-websocket-protocol", "")
        return f"openai-insecure-api-key.{self.api_key}" in [p.strip() for p in protocols.split(",")]

    def admit(self) -> bool:
        with self.lock:
            if self.active >= self.settings.max_sessions:
                self.refused += 1
                return False
            self.active += 1
            self.opened += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.active -= 1
            idle = self.active == 0
        if idle:
            _trim_heap()

    def stream(self, options: StreamOptions | None = None) -> Stream:
        return self.model.stream(options or self.settings.stream)

    async def run(self, fn, *args):
        """``fn(*args)`` on a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Clock:
    """A session's limits: idle time between messages, and its whole length."""

    def __init__(self, settings: LiveSettings):
        self.settings = settings
        self.started = time.monotonic()

    def timeout(self) -> float:
        left = self.settings.max_seconds - (time.monotonic() - self.started)
        if left <= 0:
            raise SessionEnd(CLOSE_NORMAL, f"the session reached its limit of {self.settings.max_seconds:g} s")
        return min(self.settings.idle_seconds, left)


async def receive(websocket, clock: Clock) -> dict:
    """The next message (``{"type": "websocket.receive", "text" | "bytes": ...}``), or :class:`SessionEnd` for
    a session that went quiet or ran out of time; ``{"type": "websocket.disconnect"}`` when the client left."""
    try:
        return await asyncio.wait_for(websocket.receive(), timeout=clock.timeout())
    except asyncio.TimeoutError:
        if time.monotonic() - clock.started >= clock.settings.max_seconds:
            raise SessionEnd(CLOSE_NORMAL, f"the session reached its limit of {clock.settings.max_seconds:g} s")
        raise SessionEnd(CLOSE_NORMAL, f"no message for {clock.settings.idle_seconds:g} s") from None


def with_endpoints(options: StreamOptions, silence: float | None = None, threshold: float | None = None,
                   prefix: float | None = None, vad: bool | None = None) -> StreamOptions:
    """``options`` with the endpoint rules a client asked for (None: as they were)."""
    rules = options.endpoints
    rules = replace(rules, **{k: v for k, v in (("silence", silence), ("threshold", threshold), ("prefix", prefix))
                              if v is not None})
    return replace(options, endpoints=rules, vad=options.vad if vad is None else vad)


def _trim_heap() -> None:
    """Give the pages that ended sessions freed back to the system: glibc's malloc keeps them for reuse, and the
    server's resident memory would stay at its busiest (docs/streaming.md). Nothing where libc has no malloc_trim."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


async def serve_session(live: LiveSessions, websocket, make_session) -> None:
    """Run one WebSocket session: authenticate, admit, then hand each message to the session made by
    ``make_session(send)`` until the client leaves, ends it, goes quiet or runs out of time. The session's
    ``notice(code, message)`` tells the client why the server ends it, in its protocol, before the close."""
    from starlette.websockets import WebSocketDisconnect

    if not live.authorized(websocket):
        await websocket.close(code=CLOSE_POLICY, reason="invalid or missing API key")  # before accept: HTTP 403
        return
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)

    async def send(body: dict) -> None:
        await websocket.send_text(json.dumps(body))

    session = make_session(send)
    if not live.admit():
        await session.notice("session_limit", f"the server is busy: {live.settings.max_sessions} live sessions "
                                              f"at most; try again later")
        await websocket.close(code=CLOSE_TRY_LATER, reason="too many sessions")
        return
    clock = Clock(live.settings)
    try:
        await session.open()
        while True:
            message = await receive(websocket, clock)
            if message["type"] == "websocket.disconnect":
                break
            await session.handle(message)
    except SessionEnd as end:
        try:
            if end.notify:
                await session.notice("session_ended", end.reason)
            await websocket.close(code=end.code, reason=end.reason[:120])
        except RuntimeError:  # already closed
            pass
    except WebSocketDisconnect:  # the client went away mid-session: nothing to tell anyone
        pass
    except Exception:  # anything else is the server's fault: logged, told in the protocol, closed with 1011
        if not _gone(websocket):
            log.exception("live session failed")
            try:
                await session.notice("server_error", "the server failed on this session (logged); please reconnect")
                await websocket.close(code=CLOSE_SERVER_ERROR, reason="server error")
            except Exception:  # the connection broke meanwhile: nothing more to send
                pass
    finally:
        await session.close()
        live.release()
