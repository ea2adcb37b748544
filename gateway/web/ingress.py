"""The HTTP server's guard: what a client may hold before, and while, the app sees its request.

uvicorn (with httptools) bounds none of this: a client that sends its head or body a byte at a
time holds its connection for ever, a head of a megabyte or five thousand headers is read whole,
and connections are accepted until the process runs out of file descriptors. This protocol, a
small subclass of uvicorn's own, adds (all in `limits:`, read at each connection, so a reload
applies them):

- `head_timeout_s`: from a connection's opening (or a request's first byte) to the end of its head;
- `body_timeout_s`: from the end of the head to the end of the body;
- `max_head_bytes` and `max_headers`: past either, a 431;
- `max_connections`: past it, a new connection gets a 503 and is closed at once.

Each refusal is an OpenAI-shaped JSON error with `connection: close`. One timer per connection
serves both deadlines and is re-armed lazily, so a request pays two attribute stores, not a timer.
The cap on requests in flight is the app's (web.app), since only it knows a request is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.settings import Limits
from gateway.web.wire import error_body

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


class _Refused(httptools.HttpParserError):
    """Raised from a parser callback: httptools stops parsing, and uvicorn asks for a 400 (ours instead)."""


def refusal(status: int, message: str, code: str, retry_after: int | None = None) -> bytes:
    body = error_body(status, message, code=code)
    head = [
        b"HTTP/1.1 %d %s" % (status, _REASONS[status]),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
    ]
    if retry_after is not None:
        head += [b"retry-after: %d" % retry_after, b"x-should-retry: true"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def guarded_protocol(limits: Callable[[], Limits]) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, guarded by the limits `limits()` returns when a connection opens."""

    class GuardedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._limits = limits()
            self._deadline: float | None = None  # when the head or body now awaited is too late
            self._waiting_for = "head"
            self._timer: asyncio.TimerHandle | None = None
            self._head_bytes = 0  # received while the head is unfinished (httptools buffers it)
            self._head_size = 0  # of the head parsed so far: target and headers
            self._header_count = 0
            self._refused: bytes | None = None

        # -- refusing ------------------------------------------------------------------------

        def _refuse(self, response: bytes) -> None:
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:  # never into an answer under way
                self.transport.write(response)
            self.transport.close()

        def send_400_response(self, msg: str) -> None:
            if self._refused is not None:  # our own reason to stop parsing, not a malformed request
                self._refuse(self._refused)
            else:
                super().send_400_response(msg)

        # -- deadlines -----------------------------------------------------------------------

        def _await(self, what: str, seconds: float) -> None:
            self._waiting_for = what
            self._deadline = self.loop.time() + seconds
            if self._timer is not None and self._timer.when() > self._deadline:  # sooner than the timer set
                self._timer.cancel()
                self._timer = None
            if self._timer is None:
                self._timer = self.loop.call_at(self._deadline, self._check_deadline)

        def _check_deadline(self) -> None:
            self._timer = None
            if self._deadline is None or self.transport.is_closing():
                return
            if self.loop.time() < self._deadline:  # moved on since: wait for the new one
                self._timer = self.loop.call_at(self._deadline, self._check_deadline)
                return
            limit = self._limits.head_timeout_s if self._waiting_for == "head" else self._limits.body_timeout_s
            message = f"The request {self._waiting_for} did not arrive within {limit:g} s."
            self._refuse(refusal(408, message, code="request_timeout"))

        # -- the connection and its requests -------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > self._limits.max_connections:
                message = f"The gateway is at its limit of {self._limits.max_connections} connections; retry shortly."
                self._refuse(refusal(503, message, code="too_many_connections", retry_after=1))
                return
            self._await("head", self._limits.head_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            in_head = self._waiting_for == "head" and self._deadline is not None
            super().data_received(data)
            if in_head and self._waiting_for == "head" and not self.transport.is_closing():
                # Still no end of the head: all of it was head. httptools buffers a header until it
                # ends, so this bounds what a client can make us hold, not only what we keep.
                self._head_bytes += len(data)
                if self._head_bytes > self._limits.max_head_bytes:
                    message = f"The request head is larger than {self._limits.max_head_bytes} bytes."
                    self._refuse(refusal(431, message, code="request_head_too_large"))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = self._head_size = self._header_count = 0
            self._await("head", self._limits.head_timeout_s)

        def _grew(self, size: int) -> None:
            self._head_size += size
            if self._head_size > self._limits.max_head_bytes:
                message = f"The request head is larger than {self._limits.max_head_bytes} bytes."
                self._refused = refusal(431, message, code="request_head_too_large")
                raise _Refused

        def on_url(self, url: bytes) -> None:
            self._grew(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > self._limits.max_headers:
                message = f"The request has more than {self._limits.max_headers} headers."
                self._refused = refusal(431, message, code="too_many_headers")
                raise _Refused
            self._grew(len(name) + len(value) + 4)  # with ": " and the line end
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._await("body", self._limits.body_timeout_s)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._deadline = None  # the app has the whole request: its own deadlines take over
            self._waiting_for = "answer"
            super().on_message_complete()

    return GuardedProtocol
