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

It also tells the app when a request's client leaves (web.client_watch's DisconnectHook).

Each refusal is an OpenAI-shaped JSON error with `connection: close`. One timer per connection
serves both deadlines and is re-armed lazily, so a request pays a few attribute stores, not a timer.
The cap on requests in flight is the app's (web.app), since only it knows a request is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.settings import Limits
from gateway.web.client_watch import DISCONNECT_HOOK, DisconnectHook
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


_HEAD, _BODY = "head", "body"  # what a connection awaits from its client
_NEVER = float("inf")
_base = HttpToolsProtocol  # called directly, not through super(): this runs for every request


def guarded_protocol(limits: Callable[[], Limits]) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, guarded by the limits `limits()` returns when a connection opens.

    Measured with callgrind, a first version cost 42,700 instructions a request (6.6 %): a Python
    override per header, super() calls, a timer check per request. This one costs a request three
    overrides and one pass over its headers; the timer moves only when a deadline comes sooner,
    and the head is counted byte by byte only while it is unfinished.
    """

    class GuardedProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _base.__init__(self, *args, **kwargs)
            current = limits()
            self._max_head, self._max_headers = current.max_head_bytes, current.max_headers
            self._head_timeout, self._body_timeout = current.head_timeout_s, current.body_timeout_s
            self._max_connections = current.max_connections
            self._deadline: float | None = None  # when the head or body now awaited is too late
            self._waiting_for = _HEAD
            self._timer: asyncio.TimerHandle | None = None
            self._timer_at = _NEVER
            self._head_bytes = 0  # received while the head is unfinished (httptools buffers it)
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
                _base.send_400_response(self, msg)

        def _head_too_large(self) -> None:
            message = f"The request head is larger than {self._max_head} bytes."
            self._refuse(refusal(431, message, code="request_head_too_large"))

        # -- deadlines -----------------------------------------------------------------------

        def _deadline_in(self, seconds: float) -> None:
            """Set the deadline now awaited; one timer per connection, moved only when it must come sooner."""
            deadline = self._deadline = self.loop.time() + seconds
            if self._timer_at > deadline:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer, self._timer_at = self.loop.call_at(deadline, self._check_deadline), deadline

        def _check_deadline(self) -> None:
            self._timer, self._timer_at = None, _NEVER
            if self._deadline is None or self.transport.is_closing():
                return
            if self._waiting_for is _BODY and self.cycle is not None and not self.cycle.more_body:
                return  # the body is complete: the app's own deadlines take over
            if self.loop.time() < self._deadline:  # moved on since: wait for the new one
                self._timer_at = self._deadline
                self._timer = self.loop.call_at(self._deadline, self._check_deadline)
                return
            limit = self._head_timeout if self._waiting_for is _HEAD else self._body_timeout
            message = f"The request {self._waiting_for} did not arrive within {limit:g} s."
            self._refuse(refusal(408, message, code="request_timeout"))

        # -- the connection and its requests -------------------------------------------------

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            _base.connection_made(self, transport)
            if len(self.connections) > self._max_connections:
                message = f"The gateway is at its limit of {self._max_connections} connections; retry shortly."
                self._refuse(refusal(503, message, code="too_many_connections", retry_after=1))
                return
            self._deadline_in(self._head_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            cycle = self.cycle
            _base.connection_lost(self, exc)
            if cycle is not None and not cycle.response_complete:  # its client left mid-request: say so
                hook = cycle.scope.get(DISCONNECT_HOOK)
                if hook is not None and hook.callback is not None:
                    hook.callback()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for is not _HEAD:  # the usual case: a whole request in one read
                return _base.data_received(self, data)
            _base.data_received(self, data)
            if self._waiting_for is _HEAD and not self.transport.is_closing():
                # Still no end of the head: all of it was head. httptools buffers an unfinished
                # header, so this bounds what a client can make us hold, not only what we keep.
                self._head_bytes += len(data)
                if self._head_bytes > self._max_head:
                    self._head_too_large()

        def on_message_begin(self) -> None:
            _base.on_message_begin(self)
            self._waiting_for, self._head_bytes = _HEAD, 0
            self._deadline_in(self._head_timeout)

        def on_headers_complete(self) -> None:
            headers = self.headers
            if len(headers) > self._max_headers:
                message = f"The request has more than {self._max_headers} headers."
                self._refused = refusal(431, message, code="too_many_headers")
                raise _Refused
            if len(self.url) + sum([len(name) + len(value) for name, value in headers]) > self._max_head:
                message = f"The request head is larger than {self._max_head} bytes."
                self._refused = refusal(431, message, code="request_head_too_large")
                raise _Refused
            self._waiting_for = _BODY  # until the body is complete (the timer reads cycle.more_body)
            self._deadline_in(self._body_timeout)
            # The app's ClientWatch hangs its callback here: told of a lost connection without a task.
            self.scope[DISCONNECT_HOOK] = DisconnectHook()
            _base.on_headers_complete(self)

    return GuardedProtocol
