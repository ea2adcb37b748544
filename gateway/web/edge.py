"""The hot path as plain ASGI: every endpoint of the endpoint table (chat, embeddings, completions, speech).

Kept off FastAPI's request and response machinery on purpose: the body is read once against the
size limit, parsed once (orjson), checked, and the upstream bytes are relayed as they came.
Streams and audio are relayed by `relays`, committed only after their first real piece; a client
that leaves cancels the upstream call.

Every request carries a `Trace`; when it ends, one JSON log line and the metrics are made from it,
and its id goes back to the client as `x-request-id`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import endpoints
from gateway.accounting.meter import Meter
from gateway.endpoints import BodyKind, Endpoint
from gateway.errors import (
    BadRequest,
    CallerFault,
    ClientGone,
    NoProviderAvailable,
    OverLimit,
    UnknownModel,
)
from gateway.request_log import Outcome, RequestLog, Trace
from gateway.routing.router import Router
from gateway.web import messages, relays
from gateway.web.client_watch import ClientWatch
from gateway.web.drain import Drain
from gateway.web.relays import served_by
from gateway.web.wire import bad_request_body, error_body, parse_json, relayable_error

log = logging.getLogger("gateway.edge")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_JSON = b"application/json"
_UNAUTHORIZED = error_body(
    401,
    "Missing or invalid gateway key: send 'Authorization: Bearer <key>' with a key listed in client_keys.",
    code="invalid_api_key",
)
KEY_SCOPE = "gateway.key"  # the ClientKey the app found in the request's Authorization header
_CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection", in logs only
# Request ids: a random prefix per process, then a counter; unique across replicas, and no syscall.
_ID_PREFIX = os.urandom(8).hex().encode()
_ID_COUNTER = itertools.count()
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: bytes = _JSON
) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        head += headers
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _request_id(scope: dict[str, Any]) -> bytes:
    """The client's own `x-request-id` when it is a sane token (it ties our log to theirs), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SANE_ID.fullmatch(value):
            return value
    return b"%s%08x" % (_ID_PREFIX, next(_ID_COUNTER))


class Edge:
    def __init__(
        self, router: Router, max_body_bytes: int, request_log: RequestLog, meter: Meter, drain: Drain | None = None
    ) -> None:
        self.router = router
        self.drain = drain if drain is not None else Drain()
        self.max_body_bytes = max_body_bytes
        self.request_log = request_log
        self.metrics = router.metrics
        self.meter = meter

    def _too_large(self) -> BadRequest:
        limit = self.max_body_bytes
        return BadRequest(413, f"Request body too large: the limit is {limit} bytes.", code="request_too_large")

    async def _read_body(self, scope: dict[str, Any], receive: Receive) -> bytes:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def handle(self, endpoint: Endpoint, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        trace = Trace(_request_id(scope), endpoint.path)
        try:
            await self._serve(scope, receive, send, endpoint, trace)
        finally:
            self._finish(trace)

    async def unauthorized(self, scope: dict[str, Any], send: Send) -> None:
        """A request without a valid gateway key: a 401, logged and counted, and no provider reached."""
        trace = Trace(_request_id(scope), endpoints.label(scope["path"]))
        trace.status, trace.outcome = 401, Outcome.UNAUTHORIZED
        try:
            await respond(
                send, 401, _UNAUTHORIZED, [(b"www-authenticate", b"Bearer"), (b"x-request-id", trace.request_id)]
            )
        finally:
            self._finish(trace)

    async def shed(self, scope: dict[str, Any], send: Send, limit: int) -> None:
        """A request past `limits.max_in_flight`: a 503 at once (retry in a second), logged and counted."""
        trace = Trace(_request_id(scope), endpoints.label(scope["path"]))
        trace.status, trace.outcome = 503, Outcome.SHED
        message = f"The gateway is answering its limit of {limit} requests; retry in a second."
        headers = [(b"retry-after", b"1"), (b"x-should-retry", b"true"), (b"x-request-id", trace.request_id)]
        try:
            await respond(send, 503, error_body(503, message, code="overloaded"), headers)
        finally:
            self._finish(trace)

    async def _serve(
        self, scope: dict[str, Any], receive: Receive, send: Send, endpoint: Endpoint, trace: Trace
    ) -> None:
        try:
            raw = await self._read_body(scope, receive)
            body = parse_json(raw)
            endpoint.check(body)
            trace.model, trace.request_bytes = body["model"], len(raw)
            if endpoint.request_usage is not None:
                trace.usage = endpoint.request_usage(body)
            self.meter.admit(trace, scope.get(KEY_SCOPE), endpoint, body)
        except Exception as exc:
            return await self.fail(send, exc, trace)
        watch = ClientWatch(receive, scope)
        try:
            if endpoint.streams(body):
                trace.stream = True
                await relays.relay_sse(self, endpoint, body, send, watch, trace)
            elif endpoint.answer is BodyKind.BYTES:
                trace.stream = True
                await relays.relay_bytes(self, endpoint, body, send, watch, trace)
            else:
                await self._complete(endpoint, body, send, watch, trace)
        except asyncio.CancelledError:
            if not watch.client_left or watch.task.uncancel() > 0:
                trace.outcome = Outcome.CANCELLED  # by the server (shutdown), even mid-stream: not a full answer
                raise  # cancelled by the server, not by our watch: let it through
            trace.status, trace.outcome = _CLIENT_CLOSED, Outcome.CLIENT_GONE
        except relays.RelayAborted:
            raise  # its outcome is set: the connection is cut on purpose
        except Exception:
            trace.outcome = Outcome.ERROR
            raise
        finally:
            watch.disarm()

    def _finish(self, trace: Trace) -> None:
        try:
            self.meter.settle(trace)
        except Exception:  # a bug in accounting must not lose the log line and metrics of the request
            log.exception("charging the request failed")
        provider = trace.provider or "none"
        self.metrics.request(trace.endpoint, provider, trace.outcome)
        if trace.usage:
            self.metrics.tokens_used(provider, *trace.tokens())
        if trace.first_chunk_s is not None:
            self.metrics.first_chunk(provider, trace.first_chunk_s)
        self.request_log.emit(trace)

    async def _complete(
        self, endpoint: Endpoint, body: dict[str, Any], send: Send, watch: ClientWatch, trace: Trace
    ) -> None:
        try:
            provider, answer = await self.router.complete(endpoint, body, trace)
        except Exception as exc:
            watch.disarm()
            return await self.fail(send, exc, trace)
        watch.disarm()
        trace.provider, trace.served, trace.usage = provider.name, provider, answer.usage
        trace.upstream_request_id = answer.headers.get("x-request-id")
        trace.status, trace.outcome = 200, Outcome.OK
        headers = [served_by(provider.name), (b"x-request-id", trace.request_id)]
        await respond(send, 200, answer.body, headers, answer.content_type)

    async def fail(self, send: Send, exc: Exception, trace: Trace) -> None:
        """Answer a request that failed before anything was sent, in OpenAI's error shape."""
        match exc:
            case BadRequest():
                status, outcome, body, headers = exc.status, Outcome.BAD_REQUEST, bad_request_body(exc), None
            case UnknownModel():
                status, outcome = 404, Outcome.UNKNOWN_MODEL
                body = error_body(404, messages.unknown_model(exc.model), param="model", code="model_not_found")
                headers = None
            case NoProviderAvailable() if exc.unsupported():  # asked for what no provider can produce
                status, outcome, headers = 400, Outcome.BAD_REQUEST, None
                param = "response_format" if exc.attempts[0].reason == "unsupported_format" else "voice"
                body = error_body(400, messages.unsupported(exc), param=param, code="unsupported_value")
            case NoProviderAvailable() if exc.request_too_large():
                status, outcome = 413, Outcome.REQUEST_TOO_LARGE
                body, headers = error_body(413, messages.no_provider(exc), code="request_too_large"), None
            case NoProviderAvailable():
                # The gateway is the retry layer: the official SDKs retry a 503 on their own (sleeping,
                # then probing the same dead providers), so they are told to only when a rate limit
                # ends within seconds and the retry can be served.
                soon = exc.retry_soon_s()
                wait = math.ceil(soon) if soon is not None else exc.retry_after_s()
                headers = [(b"retry-after", str(wait).encode())]
                headers.append((b"x-should-retry", b"true" if soon is not None else b"false"))
                status, outcome = 503, Outcome.NO_PROVIDER
                body = error_body(503, messages.no_provider(exc), code="no_provider_available")
            case OverLimit():
                status, outcome, headers = 429, Outcome.OVER_LIMIT, exc.headers
                body = error_body(429, exc.message, code=exc.code, kind=exc.kind)
            case CallerFault():
                status, outcome = exc.status, Outcome.CALLER_FAULT
                body, headers = relayable_error(exc.error, exc.body), None
            case ClientGone():
                trace.status, trace.outcome = _CLIENT_CLOSED, Outcome.CLIENT_GONE
                return
            case _:
                log.exception("unexpected error on the request path")
                status, outcome, headers = 500, Outcome.ERROR, None
                body = error_body(500, "The gateway failed unexpectedly; see its log.")
        trace.status, trace.outcome = status, outcome
        await respond(send, status, body, [*(headers or ()), (b"x-request-id", trace.request_id)])
