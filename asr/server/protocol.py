"""uvicorn's HTTP/1.1 protocol with a deadline for the request head: a connection that has not sent a whole
request line and headers within ``asr serve --head-timeout`` seconds (10) of connecting is closed.

uvicorn closes idle keep-alive connections, but a connection that never finishes its first request is kept for
ever (slowloris): 200 of them held 200 sockets. The deadline ends when the head is complete: a request's body,
a response, a WebSocket session each have their own limits (upload size and time, session idle and length).
"""

from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

# uvicorn builds the protocol itself, in every worker process: the setting reaches it by environment.
HEAD_TIMEOUT_ENV = "ASR_HEAD_TIMEOUT"


class HeadTimeoutProtocol(H11Protocol):
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(float(os.environ.get(HEAD_TIMEOUT_ENV, 10.0)), self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def _head_done(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None:
            self._head_done()

    def handle_websocket_upgrade(self, event) -> None:
        self._head_done()  # the WebSocket protocol takes the connection over: its session limits apply
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)
