"""OpenAI-compatible HTTP to every provider that speaks it. The only module that uses aiohttp.

aiohttp's exceptions become ours in one place, `_failure`: a connection that cannot be made, one
reset before any byte (the one failure worth a same-provider retry), a response or stream that
breaks. One pooled session serves all providers. A deadline of `total_s` covers an attempt up to
its first real byte: the whole body for a plain request, the first data event for a stream; after
a stream is committed the same deadline bounds the gap between events (see `sse`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from gateway.classify import judge, parse_error
from gateway.endpoints import BodyKind
from gateway.errors import CallerFault, Failure, FailureClass, ProviderFailed
from gateway.transport import audio, sse
from gateway.transport.base import Answer, ByteReader

if TYPE_CHECKING:
    from gateway.endpoints import Endpoint
    from gateway.providers import Provider
    from gateway.settings import Timeouts

_MAX_ERROR_BODY = 64 * 1024


_WORDS = {
    "request": "request failed",
    "get": "request failed",
    "response": "response broken",
    "stream": "stream broken",
}


def _drop_tracebacks(exc: BaseException) -> None:
    """Let go of the tracebacks of a library's exception and of its causes.

    aiohttp and aiohappyeyeballs keep the exceptions they raise where the frames of their tracebacks
    reach them again (`last_exc` and a list of errors in those frames' locals; a stream reader that
    stores its error, reached from the frame that reads it): each failure would leave a reference
    cycle of exception, traceback and frames, and all those frames held, for the cyclic collector
    (issue 15: 27 to 97 objects per failed attempt). By now the error is classified as ours; its
    message and type stay for any chained report, its frames are freed at once.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 8:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _failure(exc: aiohttp.ClientError, phase: str) -> ProviderFailed:
    """The one mapping of aiohttp's errors to ours, in the words of the phase it happened in (see _WORDS)."""
    _drop_tracebacks(exc)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ProviderFailed.transient(f"TLS certificate rejected: {exc.certificate_error}")
    if isinstance(exc, aiohttp.ClientSSLError):
        return ProviderFailed.transient(f"TLS handshake failed: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, no route, DNS: nothing answers there
        return ProviderFailed.unreachable(f"cannot connect: {exc.os_error.strerror or type(exc.os_error).__name__}")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ProviderFailed.unreachable("cannot connect: no connection within the connect timeout")
    if phase == "request" and isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        # Usually a pooled keep-alive connection the server had closed: safe to send again.
        return ProviderFailed.transient(f"connection reset before any byte: {type(exc).__name__}", reset=True)
    return ProviderFailed.transient(f"{_WORDS[phase]}: {type(exc).__name__}")


def _redirected(response: aiohttp.ClientResponse) -> ProviderFailed:
    """A 3xx: the provider's base_url is wrong (or moved); where it points, by origin only."""
    target = urlsplit(response.headers.get("location", ""))
    where = f" to {target.scheme}://{target.hostname}" if target.hostname else ""
    detail = f"HTTP {response.status}: base_url redirects{where}; not followed"
    return ProviderFailed(Failure(FailureClass.REDIRECTED, detail, status=response.status))


def _reader(response: aiohttp.ClientResponse, phase: str) -> ByteReader:
    readany = response.content.readany

    async def read() -> bytes:
        try:
            return await readany()
        except aiohttp.ClientError as exc:
            raise _failure(exc, phase) from exc

    return read


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body up to `cap` bytes. read(n) returns what is buffered, not n bytes: read to the end or the cap."""
    pieces: list[bytes] = []
    size = 0
    while size < cap and (piece := await response.content.read(cap - size)):
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


def _error_under_200(provider: Provider, response: aiohttp.ClientResponse, data: bytes) -> ProviderFailed:
    """An error under a 200 is the provider's failure to answer, whatever it says: fail over."""
    judged = judge(provider, parse_error(500, response.headers, data), data)
    return judged if isinstance(judged, ProviderFailed) else ProviderFailed(judged.failure)


class HttpTransport:
    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self.max_response_bytes = 128 * 1024 * 1024  # Limits' default, until the gateway configures it
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
        assert self._session is not None, "HttpTransport.start() was not awaited"
        try:
            # Never a redirect: it would carry the user's prompt, and our key, wherever it points.
            return await self._session.post(
                provider.config.base_url + path, data=body, headers=provider.headers, allow_redirects=False
            )
        except aiohttp.ClientError as exc:
            raise _failure(exc, "request") from exc

    async def _fail(self, provider: Provider, response: aiohttp.ClientResponse) -> ProviderFailed | CallerFault:
        if 300 <= response.status < 400:
            response.close()
            return _redirected(response)
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

    async def _open(self, provider: Provider, path: str, payload: bytes) -> aiohttp.ClientResponse:
        response = await self._post(provider, path, payload)
        if response.status != 200:
            raise await self._fail(provider, response)
        return response

    def _abandon(self, response: aiohttp.ClientResponse | None, exc: BaseException, waited_for: str) -> BaseException:
        """Drop the connection of a failed or cancelled attempt, and say what to raise for it.

        Returned, not raised: raised here, `exc` would be both a local of this frame and, through its
        traceback, the holder of this frame, a reference cycle per failed attempt.
        """
        if response is not None:
            response.close()
        if isinstance(exc, TimeoutError):
            failed = ProviderFailed.transient(f"no {waited_for} within {self.timeouts.total_s:g} s")
        elif isinstance(exc, aiohttp.ClientError):
            failed = _failure(exc, "response")
        else:
            return exc
        failed.__cause__ = exc
        return failed

    async def complete(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> Answer:
        """A non-streamed call: the provider's JSON body, or ProviderFailed / CallerFault."""
        payload = orjson.dumps(body)  # before the deadline starts: it bounds the provider, not us
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                response = await self._open(provider, endpoint.path, payload)
                data = await self._read_answer(response)
        except BaseException as exc:
            raise self._abandon(response, exc, "answer")  # noqa: B904 (_abandon sets the cause)
        # DeepSeek pads a queued non-streamed answer with blank lines before the JSON.
        data = data.strip()
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderFailed.transient("malformed response body") from exc
        if not isinstance(doc, dict) or doc.get("error") is not None:  # `"error": null` is no error
            raise _error_under_200(provider, response, data)
        return Answer(data, response.headers, endpoint.usage(doc))

    async def _read_answer(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, up to max_response_bytes; past it, a failed attempt (the connection is dropped)."""
        cap = self.max_response_bytes
        length = response.content_length
        if length is not None and length <= cap:
            return await response.read()  # the usual case: a known length, read in one go
        data = b"" if length is not None else await _read_capped(response, cap + 1)
        if length is not None or len(data) > cap:
            raise ProviderFailed.transient(f"answer larger than {cap} bytes (limits.max_response_bytes)")
        return data

    async def stream(
        self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]
    ) -> sse.SseStream | audio.ByteStream:
        """Open a stream and read up to its first data event; only then is it worth committing."""
        if endpoint.answer is BodyKind.BYTES:
            return await self._bytes(provider, endpoint, body)
        payload = orjson.dumps(body)
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                response = await self._open(provider, endpoint.path, payload)
                first, rest = await sse.first_event(provider, _reader(response, "response"), response.headers)
        except BaseException as exc:
            raise self._abandon(response, exc, "first event")  # noqa: B904 (_abandon sets the cause)
        read = _reader(response, "stream")  # committed from here: a break is the stream's
        return sse.SseStream(
            provider, read, response.headers, response.close, first, rest, endpoint.usage, self.timeouts.total_s
        )

    async def _bytes(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> audio.ByteStream:
        """Open a raw body (audio) and read its first bytes; only then is it worth committing."""
        payload = orjson.dumps(body)
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                response = await self._open(provider, endpoint.path, payload)
                if response.content_type == "application/json":  # not audio: an error under a 200
                    raise _error_under_200(provider, response, await _read_capped(response, _MAX_ERROR_BODY))
                first = await audio.first_bytes(_reader(response, "response"))
        except BaseException as exc:
            raise self._abandon(response, exc, "audio")  # noqa: B904 (_abandon sets the cause)
        return audio.ByteStream(
            _reader(response, "stream"), response.headers, response.close, first, self.timeouts.total_s
        )

    async def get(self, provider: Provider, url: str) -> tuple[int, bytes]:
        """A free read (a model list, a balance) for `gateway doctor`: its status and body, capped.

        Network and TLS failures raise ProviderFailed with the same words a request would get.
        """
        assert self._session is not None, "HttpTransport.start() was not awaited"
        headers = {k: v for k, v in provider.headers.items() if k != "content-type"}
        try:
            async with asyncio.timeout(self.timeouts.total_s):
                async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                    if 300 <= response.status < 400:
                        raise _redirected(response)
                    return response.status, await _read_capped(response, _MAX_ERROR_BODY * 16)
        except aiohttp.ClientError as exc:  # first: a connect timeout is a ClientError and a TimeoutError
            raise _failure(exc, "get") from exc
        except TimeoutError as exc:
            raise ProviderFailed.transient(f"no answer within {self.timeouts.total_s:g} s") from exc
