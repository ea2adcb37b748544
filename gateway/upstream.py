"""The one OpenAI-compatible HTTP path to every provider. The only module that uses aiohttp.

Every aiohttp and socket exception is mapped to a classified `ProviderFailed` here, at this
boundary. One pooled session serves all providers. A deadline of `total_s` covers an attempt up
to its first real byte: the whole body for a plain request, the first data event for a stream
(keep-alive blank lines and SSE comments do not count). After a stream is committed the same
deadline bounds the gap between data events, so a stalled stream ends instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import aiohttp
import orjson

from gateway.errors import (
    CallerFault,
    Failure,
    FailureClass,
    ProviderFailed,
    UpstreamError,
    classify,
    parse_error,
)
from gateway.providers import Dialect
from gateway.settings import ProviderConfig, Timeouts

_MAX_ERROR_BODY = 64 * 1024
_DATA, _DONE, _ERROR, _OTHER = range(4)


class Answer:
    """A non-streamed success: the body to relay as it came, and what the gateway reads from it."""

    __slots__ = ("body", "headers", "usage")

    def __init__(self, body: bytes, headers: Mapping[str, str], usage: dict[str, Any] | None) -> None:
        self.body = body
        self.headers = headers
        self.usage = usage


class Provider:
    """A configured provider, ready to call."""

    __slots__ = ("config", "dialect", "headers", "key", "name")

    def __init__(self, config: ProviderConfig, dialect: Dialect, key: str | None) -> None:
        self.config = config
        self.dialect = dialect
        self.key = key  # None: the key variable is unset, the provider is misconfigured
        self.name = config.name
        # Built once: the provider's own key, never the client's token.
        self.headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"


def _transient(detail: str, *, reset: bool = False) -> ProviderFailed:
    return ProviderFailed(Failure(FailureClass.TRANSIENT, detail, reset_before_first_byte=reset))


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body up to `cap` bytes. read(n) returns what is buffered, not n bytes: read to the end or the cap."""
    pieces: list[bytes] = []
    size = 0
    while size < cap and (piece := await response.content.read(cap - size)):
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


def _cannot_connect(exc: aiohttp.ClientConnectorError) -> ProviderFailed:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _transient(f"TLS certificate rejected: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return _transient(f"TLS handshake failed: {exc.os_error}")
    return _transient(f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}")


def _event_kind(event: bytes) -> int:
    if not event.startswith(b"data:"):
        return _OTHER  # comments (`: keep-alive`), `event:`/`id:` lines, blank keep-alives
    payload = event[5:].strip()
    if payload == b"[DONE]":
        return _DONE
    # A bare substring test first: parsing every chunk would cost more than the relay itself.
    if b'"error"' in payload:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return _DATA
        if isinstance(doc, dict) and "error" in doc:
            return _ERROR
    return _DATA


_USAGE = b'"usage":{'  # compact JSON, as every provider sends; `"usage":null` chunks are skipped


def _usage(event: bytes) -> dict[str, Any] | None:
    """Token counts from one SSE data event: OpenAI's `usage`, or Groq's `x_groq.usage`."""
    try:
        doc = orjson.loads(event.lstrip(b"\n")[5:])
    except (orjson.JSONDecodeError, IndexError):
        return None
    if not isinstance(doc, dict):
        return None
    usage = doc.get("usage") or (doc.get("x_groq") or {}).get("usage")
    return usage if isinstance(usage, dict) else None


def _append(buffer: bytes, chunk: bytes) -> bytes:
    """Add a chunk to the unparsed rest, with CRLF line ends folded to LF (even when split across chunks)."""
    buffer += chunk
    return buffer.replace(b"\r\n", b"\n") if b"\r" in buffer else buffer


def _in_band_failure(provider: Provider, event: bytes, headers: Any) -> ProviderFailed | CallerFault:
    payload = event[5:].strip()
    code = orjson.loads(payload)["error"]
    status = code.get("code") if isinstance(code, dict) else None
    # Google-style errors carry their HTTP status as `code`; OpenAI's in-band errors are 5xx.
    status = status if isinstance(status, int) and 400 <= status <= 599 else 500
    return judge(provider, parse_error(status, headers, payload), payload)


def judge(provider: Provider, err: UpstreamError, body: bytes) -> ProviderFailed | CallerFault:
    """A classified upstream error, our key scrubbed: the caller's fault to relay, or a failure to fail over from."""
    if provider.key:
        # A provider that echoes our key (in any shape `redact` cannot guess) never gets it relayed or stored.
        err.message = err.message.replace(provider.key, "[redacted]")
        body = body.replace(provider.key.encode(), b"[redacted]")
    failure = classify(provider.dialect, err)
    if failure.kind is FailureClass.CALLER:
        return CallerFault(err, body, failure)
    return ProviderFailed(failure)


class _StallWatchdog:
    """Cancels the current task when no data event has arrived for `limit_s`.

    Cheaper than rescheduling an `asyncio.timeout` on every chunk (which cost a quarter of the
    relay's CPU): a chunk only stamps the time, and the one timer re-arms itself lazily.
    """

    __slots__ = ("_fired", "_handle", "_last", "_limit_s", "_loop", "_paused_at", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_s: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._loop, self._task, self._limit_s = loop, task, limit_s
        self._fired = False
        self._paused_at: float | None = None
        self._last = loop.time()
        self._handle = loop.call_at(self._last + limit_s, self._check)

    def fed(self) -> None:
        self._last = self._loop.time()

    def pause(self) -> None:
        self._paused_at = self._loop.time()

    def resume(self) -> None:
        # The clock stops while the relay waits on the client: shift the last feed by the pause.
        assert self._paused_at is not None
        self._last += self._loop.time() - self._paused_at
        self._paused_at = None

    def _check(self) -> None:
        if self._paused_at is not None:
            self._handle = self._loop.call_at(self._loop.time() + self._limit_s, self._check)
            return
        due = self._last + self._limit_s
        if self._loop.time() >= due:
            self._fired = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)

    def fired(self) -> bool:
        """Whether this cancellation is the watchdog's own (then it is absorbed), not the caller's."""
        return self._fired and self._task.uncancel() == 0

    def stop(self) -> None:
        self._handle.cancel()


class Stream:
    """A committed upstream stream: its first data event is already read and proven good."""

    def __init__(
        self, provider: Provider, response: aiohttp.ClientResponse, first: bytes, rest: bytes, total_s: float
    ) -> None:
        self._provider = provider
        self._response = response
        self.first = first
        self._rest = rest
        self._total_s = total_s
        self.headers: Mapping[str, str] = response.headers
        self.usage: dict[str, Any] | None = _usage(first) if _USAGE in first else None

    async def events(self) -> AsyncIterator[bytes]:
        """Yield blocks of complete SSE events as they come; raise ProviderFailed if the stream breaks.

        The last block on success ends with `data: [DONE]`; on failure nothing after the last good
        event is yielded (an upstream error event included), so the caller ends the stream with its
        own error event instead.
        """
        buffer, self._rest = self._rest, b""
        loop = asyncio.get_running_loop()
        watchdog = _StallWatchdog(loop, self._total_s)
        try:
            while True:
                end = buffer.rfind(b"\n\n")
                if end >= 0:
                    complete, buffer = buffer[: end + 2], buffer[end + 2 :]
                    good, outcome = self._scan(complete, watchdog)
                    if good:
                        watchdog.pause()  # a slow client is not a stalled upstream
                        yield good
                        watchdog.resume()
                    if outcome is not None:
                        if outcome is _DONE:
                            return
                        raise outcome
                chunk = await self._response.content.readany()
                if not chunk:
                    raise _transient("stream ended without [DONE]")
                buffer = _append(buffer, chunk)
        except asyncio.CancelledError:
            if watchdog.fired():
                raise _transient(f"stream stalled for more than {self._total_s:g} s") from None
            raise
        except aiohttp.ClientError as exc:
            raise _transient(f"stream broken: {type(exc).__name__}") from exc
        finally:
            watchdog.stop()
            self.close()

    def _scan(self, complete: bytes, watchdog: _StallWatchdog) -> tuple[bytes, Any]:
        """The good prefix of a run of complete events, and _DONE, a failure, or None to go on."""
        if _USAGE in complete:  # the last chunk or two, when usage is reported at all
            for event in complete.split(b"\n\n"):
                if _USAGE in event and (usage := _usage(event)) is not None:
                    self.usage = usage
        # Fast path, nearly every block: content events only. Comments alone do not feed the watchdog.
        if b"[DONE]" not in complete and b'"error"' not in complete:
            if complete.startswith(b"data:") or b"\ndata:" in complete:
                watchdog.fed()
            return complete, None
        events = complete.split(b"\n\n")
        for index, event in enumerate(events):
            kind = _event_kind(event.lstrip(b"\n"))
            if kind == _DATA:
                watchdog.fed()
            elif kind == _DONE:
                return b"\n\n".join(events[: index + 1]) + b"\n\n", _DONE
            elif kind == _ERROR:
                failure = _in_band_failure(self._provider, event.lstrip(b"\n"), self._response.headers)
                if isinstance(failure, CallerFault):  # too late to relay a status: it ends the stream
                    failure = ProviderFailed(failure.failure)
                good = b"\n\n".join(events[:index])
                return (good + b"\n\n" if good else b""), failure
        return complete, None

    def close(self) -> None:
        # Closing (not releasing) drops the connection, so the upstream stops generating and billing.
        self._response.close()


class Upstream:
    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.timeouts.connect_s)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, provider: Provider, path: str, body: bytes) -> aiohttp.ClientResponse:
        assert self._session is not None, "Upstream.start() was not awaited"
        try:
            return await self._session.post(provider.config.base_url + path, data=body, headers=provider.headers)
        except aiohttp.ClientConnectorError as exc:
            raise _cannot_connect(exc) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _transient(f"connection reset before any byte: {type(exc).__name__}", reset=True) from exc
        except aiohttp.ClientError as exc:
            raise _transient(f"request failed: {type(exc).__name__}") from exc

    async def _fail(self, provider: Provider, response: aiohttp.ClientResponse) -> ProviderFailed | CallerFault:
        try:
            body = await _read_capped(response, _MAX_ERROR_BODY)
        finally:
            # A fully read error keeps its connection for the next call (a failover per request
            # would otherwise open a new one each time); a cut one must not be reused.
            if response.content.at_eof():
                response.release()
            else:
                response.close()
        return judge(provider, parse_error(response.status, response.headers, body), body)

    async def _open(self, provider: Provider, path: str, body: bytes) -> aiohttp.ClientResponse:
        response = await self._post(provider, path, body)
        if response.status != 200:
            raise await self._fail(provider, response)
        return response

    def _abandon(self, response: aiohttp.ClientResponse | None, exc: BaseException, waited_for: str) -> NoReturn:
        """Drop the connection of a failed or cancelled attempt, and raise what the failure was."""
        if response is not None:
            response.close()
        if isinstance(exc, TimeoutError):
            raise _transient(f"no {waited_for} within {self.timeouts.total_s:g} s") from exc
        if isinstance(exc, aiohttp.ClientError):
            raise _transient(f"response broken: {type(exc).__name__}") from exc
        raise exc

    async def complete(self, provider: Provider, path: str, body: bytes) -> Answer:
        """A non-streamed call: the provider's JSON body, or ProviderFailed / CallerFault."""
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                response = await self._open(provider, path, body)
                data = await response.read()
        except BaseException as exc:
            self._abandon(response, exc, "answer")
        # DeepSeek pads a queued non-streamed answer with blank lines before the JSON.
        data = data.strip()
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _transient("malformed response body") from exc
        if not isinstance(doc, dict) or "error" in doc:
            judged = judge(provider, parse_error(500, response.headers, data), data)
            # An error under a 200 is the provider's failure to answer, whatever it says: fail over.
            raise judged if isinstance(judged, ProviderFailed) else ProviderFailed(judged.failure)
        usage = doc.get("usage")
        return Answer(data, response.headers, usage if isinstance(usage, dict) else None)

    async def stream(self, provider: Provider, path: str, body: bytes) -> Stream:
        """Open a stream and read up to its first data event; only then is it worth committing."""
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                response = await self._open(provider, path, body)
                buffer = b""
                while True:
                    chunk = await response.content.readany()
                    if not chunk:
                        raise _transient("stream ended before the first event")
                    buffer = _append(buffer, chunk)
                    while (end := buffer.find(b"\n\n")) >= 0:
                        event, buffer = buffer[: end + 2], buffer[end + 2 :]
                        kind = _event_kind(event.lstrip(b"\n"))
                        if kind == _DATA:
                            return Stream(provider, response, event, buffer, self.timeouts.total_s)
                        if kind == _DONE:
                            raise _transient("stream ended before the first event")
                        if kind == _ERROR:
                            raise _in_band_failure(provider, event.lstrip(b"\n"), response.headers)
        except BaseException as exc:
            self._abandon(response, exc, "first event")

    async def get(self, provider: Provider, url: str) -> tuple[int, bytes]:
        """A free read (a model list, a balance) for `gateway doctor`: its status and body, capped.

        Network and TLS failures raise ProviderFailed with the same words a request would get.
        """
        assert self._session is not None, "Upstream.start() was not awaited"
        headers = {k: v for k, v in provider.headers.items() if k != "content-type"}
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                async with self._session.get(url, headers=headers) as response:
                    return response.status, await _read_capped(response, _MAX_ERROR_BODY * 16)
        except aiohttp.ClientConnectorError as exc:
            raise _cannot_connect(exc) from exc
        except TimeoutError as exc:
            raise _transient(f"no answer within {self.timeouts.total_s:g} s") from exc
        except aiohttp.ClientError as exc:
            raise _transient(f"request failed: {type(exc).__name__}") from exc
