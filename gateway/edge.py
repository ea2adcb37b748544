"""The hot path as plain ASGI: /v1/chat/completions and /v1/embeddings.

Kept off FastAPI's request and response machinery on purpose: the body is read once against the
size limit, parsed once (orjson), checked, and the upstream bytes are relayed as they came.
A stream is committed (headers sent) only after its first real event; after that, a failure
ends it with an error event and no `[DONE]`, and a client that leaves cancels the upstream call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import CallerFault, ProviderFailed
from gateway.router import Endpoint, NoProviderAvailable, Router, UnknownModel
from gateway.wire import EdgeError, check_chat, check_embeddings, error_body, parse_json, relayable_error

log = logging.getLogger("gateway.edge")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientGone(Exception):
    """The client disconnected: nothing to answer, nothing to blame on a provider."""


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [_JSON, (b"content-length", str(len(body)).encode())]
    if headers:
        head += headers
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _served_by(name: str) -> tuple[bytes, bytes]:
    return (b"x-gateway-provider", name.encode())


class Edge:
    def __init__(self, router: Router, max_body_bytes: int) -> None:
        self.router = router
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> EdgeError:
        limit = self.max_body_bytes
        return EdgeError(413, f"Request body too large: the limit is {limit} bytes.", code="request_too_large")

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

    async def chat(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send, Endpoint.CHAT)

    async def embeddings(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await self._handle(scope, receive, send, Endpoint.EMBEDDINGS)

    async def _handle(self, scope: dict[str, Any], receive: Receive, send: Send, endpoint: Endpoint) -> None:
        try:
            body = parse_json(await self._read_body(scope, receive))
            if endpoint is Endpoint.CHAT:
                check_chat(body)
            else:
                check_embeddings(body)
        except Exception as exc:
            return await self._fail(send, exc)
        watch = _ClientWatch(receive)
        try:
            if endpoint is Endpoint.CHAT and body.get("stream") is True:
                await self._stream(body, send, watch)
            else:
                await self._complete(endpoint, body, send, watch)
        except asyncio.CancelledError:
            if not watch.client_left or watch.task.uncancel() > 0:
                raise  # cancelled by the server, not by our watch: let it through
        finally:
            watch.disarm()

    async def _complete(self, endpoint: Endpoint, body: dict[str, Any], send: Send, watch: _ClientWatch) -> None:
        try:
            provider, data = await self.router.complete(endpoint, body)
        except Exception as exc:
            watch.disarm()
            return await self._fail(send, exc)
        watch.disarm()
        await respond(send, 200, data, [_served_by(provider.name)])

    async def _fail(self, send: Send, exc: Exception) -> None:
        """Answer a request that failed before anything was sent, in OpenAI's error shape."""
        match exc:
            case EdgeError():
                await respond(send, exc.status, exc.body())
            case UnknownModel():
                message = f"The model '{exc.model}' does not exist or no configured provider serves it."
                await respond(send, 404, error_body(404, message, param="model", code="model_not_found"))
            case NoProviderAvailable() if exc.request_too_large():
                await respond(send, 413, error_body(413, exc.message(), code="request_too_large"))
            case NoProviderAvailable():
                wait = exc.retry_after_s()
                headers = [(b"retry-after", str(wait).encode())]
                # The official SDKs retry a 503 on their own; past a minute that only delays the user.
                headers.append((b"x-should-retry", b"true" if wait <= 60 else b"false"))
                body = error_body(503, exc.message(), code="no_provider_available")
                await respond(send, 503, body, headers)
            case CallerFault():
                await respond(send, exc.status, relayable_error(exc.error, exc.body))
            case ClientGone():
                pass
            case _:
                log.exception("unexpected error on the request path")
                await respond(send, 500, error_body(500, "The gateway failed unexpectedly; see its log."))

    async def _stream(self, body: dict[str, Any], send: Send, watch: _ClientWatch) -> None:
        model = body["model"]
        try:
            provider, stream = await self.router.stream(body)
        except Exception as exc:
            watch.disarm()
            return await self._fail(send, exc)
        headers = [*_SSE_HEADERS, _served_by(provider.name)]
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": stream.first, "more_body": True})
            async for block in stream.events():
                await send({"type": "http.response.body", "body": block, "more_body": True})
        except ProviderFailed as exc:
            skip = self.router.record_failure(provider, model, exc.failure)
            message = (
                f"The stream from {provider.name} broke after it started ({skip.describe(model)}); "
                "the answer is incomplete."
            )
            event = b"data: " + error_body(502, message, code="upstream_stream_error") + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": True})
        finally:
            stream.close()  # idempotent; covers a cancel before the relay began
        watch.disarm()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _ClientWatch:
    """Cancels the request's task when its client disconnects: the upstream call, and its bill, stop.

    uvicorn does not tell a handler that its client left (sends to a closed connection are
    silently dropped), so one task waits on `receive()` for `http.disconnect`. Disarmed once the
    answer is complete, when the server itself reports a disconnect for every finished request.
    """

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self._armed = True
        self._watcher = asyncio.create_task(_wait_disconnect(receive))
        self._watcher.add_done_callback(self._fire)

    def _fire(self, watcher: asyncio.Task[None]) -> None:
        if self._armed and not watcher.cancelled():
            self.task.cancel()

    @property
    def client_left(self) -> bool:
        return self._watcher.done() and not self._watcher.cancelled()

    def disarm(self) -> None:
        self._armed = False
        self._watcher.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
