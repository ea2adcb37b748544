"""Relaying a committed answer as it comes: server-sent events, and raw bytes (speech audio).

Both commit (send the status and headers) only once the provider's first real piece is in hand,
so that every failure before it fails over. After it, a failure can no longer change the status:
- a stream of events ends with our error event and no `[DONE]`, which every SDK reports;
- raw bytes have no room for an error, so the connection is cut before the body's end (chunked
  encoding's last chunk is never sent): the client's download fails, and a truncated file never
  looks complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from gateway.errors import ProviderFailed
from gateway.request_log import Outcome, Trace
from gateway.web import messages
from gateway.web.wire import error_body

if TYPE_CHECKING:
    from gateway.endpoints import Endpoint
    from gateway.web.client_watch import ClientWatch
    from gateway.web.edge import Edge, Send

log = logging.getLogger("gateway.edge")

_INCLUDE_USAGE = {"include_usage": True}
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class RelayAborted(Exception):
    """Raised out of the app to cut a relay of raw bytes that broke after its first bytes.

    uvicorn answers an exception after the response started by closing the connection, without
    the final chunk: the one way an ASGI app can tell a client its body is incomplete.
    """


class _QuietAborts(logging.Filter):
    """uvicorn logs every exception out of the app with its traceback; a cut relay is logged by us, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], RelayAborted))


logging.getLogger("uvicorn.error").addFilter(_QuietAborts())


async def relay_sse(
    edge: Edge, endpoint: Endpoint, body: dict[str, Any], send: Send, watch: ClientWatch, trace: Trace
) -> None:
    model = body["model"]
    # The usage report is asked for on every stream, so that streams are charged what they used;
    # a client that did not ask for it does not get it.
    options = body.get("stream_options")
    asked = options is not None and options.get("include_usage") is True
    if not asked:
        body["stream_options"] = {**options, "include_usage": True} if options else _INCLUDE_USAGE
    try:
        provider, stream = await edge.router.stream(endpoint, body, trace)
    except Exception as exc:
        watch.disarm()
        return await edge.fail(send, exc, trace)
    stream.strip_usage = not asked
    headers = [*_SSE_HEADERS, served_by(provider.name), (b"x-request-id", trace.request_id)]
    trace.provider, trace.served, trace.status, trace.outcome = provider.name, provider, 200, Outcome.OK
    trace.upstream_request_id = stream.headers.get("x-request-id")
    task = _draining_ends(edge)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": stream.first, "more_body": True})
        trace.first_chunk_s = time.perf_counter() - trace.started
        trace.events = 1
        async for block in stream.events():
            await send({"type": "http.response.body", "body": block, "more_body": True})
            trace.events += block.count(b"\n\n")  # events relayed: a cut stream's estimate
    except ProviderFailed as exc:
        trace.outcome = Outcome.STREAM_BROKEN
        attempt = edge.router.record_failure(provider, model, exc.failure)
        message = messages.stream_broken(attempt, model)
        event = b"data: " + error_body(502, message, code="upstream_stream_error") + b"\n\n"
        await send({"type": "http.response.body", "body": event, "more_body": True})
    except asyncio.CancelledError:
        if not _ended_by_drain(edge, task):
            raise
        trace.outcome = Outcome.CANCELLED
        message = "The gateway is shutting down and could not finish this stream in time; the answer is incomplete."
        event = b"data: " + error_body(503, message, code="gateway_draining") + b"\n\n"
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": event, "more_body": True})
    except Exception:
        # Ours, not the provider's (nothing is benched), and still never a clean-looking truncation.
        log.exception("relaying the stream from %s failed", provider.name)
        trace.outcome = Outcome.ERROR
        message = f"The gateway failed while relaying the stream from {provider.name}; the answer is incomplete."
        event = b"data: " + error_body(500, message, code="gateway_stream_error") + b"\n\n"
        with contextlib.suppress(Exception):  # the failure may have been the sending itself
            await send({"type": "http.response.body", "body": event, "more_body": True})
    finally:
        edge.drain.streams.discard(task)
        trace.usage = stream.usage
        stream.close()  # idempotent; covers a cancel before the relay began
    watch.disarm()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_bytes(
    edge: Edge, endpoint: Endpoint, body: dict[str, Any], send: Send, watch: ClientWatch, trace: Trace
) -> None:
    """Raw bytes with the provider's content-type, in chunked encoding (never its content-length: a
    cut must show as a cut); a failure after the first bytes raises RelayAborted."""
    model = body["model"]
    try:
        provider, stream = await edge.router.stream(endpoint, body, trace)
    except Exception as exc:
        watch.disarm()
        return await edge.fail(send, exc, trace)
    headers = [(b"content-type", stream.content_type), served_by(provider.name), (b"x-request-id", trace.request_id)]
    trace.provider, trace.served, trace.status, trace.outcome = provider.name, provider, 200, Outcome.OK
    trace.upstream_request_id = stream.headers.get("x-request-id")
    relayed = len(stream.first)
    task = _draining_ends(edge)
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": stream.first, "more_body": True})
        trace.first_chunk_s = time.perf_counter() - trace.started
        async for piece in stream.events():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            relayed += len(piece)
    except ProviderFailed as exc:
        trace.outcome = Outcome.STREAM_BROKEN
        attempt = edge.router.record_failure(provider, model, exc.failure)
        log.warning("cut the answer after %d bytes: %s", relayed, messages.stream_broken(attempt, model))
        raise RelayAborted from None
    except asyncio.CancelledError:
        if not _ended_by_drain(edge, task):
            raise
        trace.outcome = Outcome.CANCELLED
        log.warning("cut the answer from %s after %d bytes: the drain's deadline passed", provider.name, relayed)
        raise RelayAborted from None
    except Exception:
        log.exception("relaying the answer from %s failed; cut after %d bytes", provider.name, relayed)
        trace.outcome = Outcome.ERROR
        raise RelayAborted from None
    finally:
        edge.drain.streams.discard(task)
        stream.close()  # idempotent; covers a cancel before the relay began
    watch.disarm()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _draining_ends(edge: Edge) -> asyncio.Task[Any]:
    """This relay's task, which a drain that runs out of time cancels (see web.drain)."""
    task = asyncio.current_task()
    assert task is not None
    edge.drain.streams.add(task)
    return task


def _ended_by_drain(edge: Edge, task: asyncio.Task[Any]) -> bool:
    """Whether a cancel is the drain's deadline (then it is absorbed here), not a client or a shutdown's."""
    return edge.drain.ending and task.uncancel() == 0


def served_by(name: str) -> tuple[bytes, bytes]:
    return (b"x-gateway-provider", name.encode())
