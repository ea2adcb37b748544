"""Server-sent events: framing, the first-event commit, and the stall watchdog. No I/O library here.

A stream is read through a `ByteReader` (the next piece of the body, b"" at its end, our own
errors only), so any transport that gets SSE bytes can use this module. `first_event` reads up to
the first real data event (keep-alive blank lines and `: comments` do not count, and an in-band
error before it is a failure to fail over from); only then is a stream worth committing. After
that, `SseStream.events` relays complete events as they come, ends at `data: [DONE]`, and turns a
break, a stall longer than the deadline, or an in-band error event into ProviderFailed, with
nothing after the last good event relayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from gateway.classify import judge, parse_error
from gateway.errors import CallerFault, ProviderFailed

if TYPE_CHECKING:
    from gateway.providers import Provider
    from gateway.transport.base import ByteReader

_DATA, _DONE, _ERROR, _OTHER = range(4)
# Compact JSON, as every provider we know sends, or with a space (Python's json.dumps, some local
# servers); `"usage":null` chunks are skipped.
_USAGE, _USAGE_SPACED = b'"usage":{', b'"usage": {'


def _has_usage(block: bytes) -> bool:
    return _USAGE in block or _USAGE_SPACED in block


UsageOf = Callable[[dict[str, Any]], dict[str, Any] | None]


def _event(block: bytes) -> tuple[int, bytes]:
    """What one SSE event is (_DATA, _DONE, _ERROR, _OTHER), and its data, by the SSE rules.

    Nearly every event is one `data:` line, read at once. Otherwise its lines are read one by one:
    `data:` lines join with line breaks, `event: error` makes it an error whatever its data, and
    `id:`, `retry:`, other `event:` types and `: comments` are not data.
    """
    block = block.strip(b"\n")
    if block.startswith(b"data:") and b"\n" not in block:
        payload = block[5:].strip()
    else:
        data: list[bytes] = []
        error = False
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line.startswith(b"event:"):
                error = line[6:].strip() == b"error"
        payload = b"\n".join(data).strip()
        if error:
            return _ERROR, payload
        if not data:
            return _OTHER, b""  # comments (`: keep-alive`), `id:`/`retry:` alone, blank keep-alives
    if payload == b"[DONE]":
        return _DONE, payload
    # A bare substring test first: parsing every chunk would cost more than the relay itself.
    if b'"error"' in payload:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return _DATA, payload
        if isinstance(doc, dict) and doc.get("error") is not None:  # `"error": null` is no error
            return _ERROR, payload
    return _DATA, payload


def _usage(block: bytes, usage_of: UsageOf) -> tuple[dict[str, Any] | None, bool]:
    """Token counts from one data event, as the endpoint finds them in a parsed chunk, and whether
    the event is nothing but the usage report (`"choices": []`, as `include_usage` adds)."""
    try:
        doc = orjson.loads(_event(block)[1])
    except orjson.JSONDecodeError:
        return None, False
    if not isinstance(doc, dict):
        return None, False
    usage = usage_of(doc)
    return usage, usage is not None and doc.get("choices") == []


def _append(buffer: bytes, chunk: bytes) -> bytes:
    """Add a chunk to the unparsed rest, with CRLF line ends folded to LF (even when split across chunks)."""
    buffer += chunk
    return buffer.replace(b"\r\n", b"\n") if b"\r" in buffer else buffer


def _in_band_failure(provider: Provider, payload: bytes, headers: Mapping[str, str]) -> ProviderFailed | CallerFault:
    """An error event's data, classified like an error answer (and scrubbed of our key by `judge`)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        doc = None  # `event: error` with plain text: a failure of the provider's, in its own words
    error = doc.get("error") if isinstance(doc, dict) else None
    status = error.get("code") if isinstance(error, dict) else None
    # Google-style errors carry their HTTP status as `code`; OpenAI's in-band errors are 5xx.
    status = status if isinstance(status, int) and 400 <= status <= 599 else 500
    return judge(provider, parse_error(status, headers, payload), payload)


async def first_event(provider: Provider, read: ByteReader, headers: Mapping[str, str]) -> tuple[bytes, bytes]:
    """Read up to the first data event: it, and what was read past it. The caller bounds this with its deadline.

    Raises ProviderFailed / CallerFault for what comes before it: an end, `[DONE]`, an in-band error.
    """
    buffer = b""
    while True:
        chunk = await read()
        if not chunk:
            raise ProviderFailed.transient("stream ended before the first event")
        buffer = _append(buffer, chunk)
        while (end := buffer.find(b"\n\n")) >= 0:
            event, buffer = buffer[: end + 2], buffer[end + 2 :]
            kind, payload = _event(event)
            if kind == _DATA:
                return event, buffer
            if kind == _DONE:
                raise ProviderFailed.transient("stream ended before the first event")
            if kind == _ERROR:
                raise _in_band_failure(provider, payload, headers)


class StallWatchdog:
    """Cancels the current task when no data event has arrived for `limit_s`.

    Cheaper than rescheduling an `asyncio.timeout` on every chunk (which cost a quarter of the
    relay's CPU): a chunk only stamps the time, and the one timer re-arms itself lazily. Used as a
    context manager around a relay's reads: on leaving, its timer stops, and its own cancel becomes
    the stream's failure ("<what> stalled"); any other cancel goes on as it came.
    """

    __slots__ = ("_fired", "_handle", "_last", "_limit_s", "_loop", "_paused_at", "_task", "_what")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit_s: float, what: str = "stream") -> None:
        task = asyncio.current_task()
        assert task is not None
        self._loop, self._task, self._limit_s, self._what = loop, task, limit_s, what
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

    def __enter__(self) -> StallWatchdog:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.stop()
        if kind is not None and issubclass(kind, asyncio.CancelledError) and self.fired():
            raise ProviderFailed.transient(f"{self._what} stalled for more than {self._limit_s:g} s") from None


class SseStream:
    """A committed upstream stream: its first data event is already read and proven good."""

    def __init__(
        self,
        provider: Provider,
        read: ByteReader,
        headers: Mapping[str, str],
        close: Callable[[], None],
        first: bytes,
        rest: bytes,
        usage_of: UsageOf,
        total_s: float,
    ) -> None:
        self._provider = provider
        self._read = read
        self.close = close  # drops the connection, so the upstream stops generating and billing
        self.first = first
        self._rest = rest
        self._usage_of = usage_of
        self._total_s = total_s
        self.headers = headers
        self.usage: dict[str, Any] | None = _usage(first, usage_of)[0] if _has_usage(first) else None
        self.strip_usage = False

    async def events(self) -> AsyncIterator[bytes]:
        """Yield blocks of complete SSE events as they come; raise ProviderFailed if the stream breaks.

        The last block on success ends with `data: [DONE]`; on failure nothing after the last good
        event is yielded (an upstream error event included), so the caller ends the stream with its
        own error event instead.
        """
        buffer, self._rest = self._rest, b""
        read = self._read
        try:
            with StallWatchdog(asyncio.get_running_loop(), self._total_s) as watchdog:
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
                    chunk = await read()
                    if not chunk:
                        raise ProviderFailed.transient("stream ended without [DONE]")
                    buffer = _append(buffer, chunk)
        finally:
            self.close()

    def _scan(self, complete: bytes, watchdog: StallWatchdog) -> tuple[bytes, Any]:
        """The good prefix of a run of complete events, and _DONE, a failure, or None to go on."""
        if _has_usage(complete):  # the last chunk or two, when usage is reported at all
            kept = []
            for event in complete.split(b"\n\n"):
                if _has_usage(event):
                    usage, only_usage = _usage(event, self._usage_of)
                    if usage is not None:
                        self.usage = usage
                    if only_usage and self.strip_usage:
                        continue
                kept.append(event)
            complete = b"\n\n".join(kept)
            if not complete:
                return b"", None
        # Fast path, nearly every block: content events only (no `[DONE]`, no error object, no
        # `event: error`: none of them can be there without the word). Comments do not feed the watchdog.
        if b"[DONE]" not in complete and b"error" not in complete:
            if complete.startswith(b"data:") or b"\ndata:" in complete:
                watchdog.fed()
            return complete, None
        events = complete.split(b"\n\n")
        for index, event in enumerate(events):
            kind, payload = _event(event)
            if kind == _DATA:
                watchdog.fed()
            elif kind == _DONE:
                return b"\n\n".join(events[: index + 1]) + b"\n\n", _DONE
            elif kind == _ERROR:
                failure = _in_band_failure(self._provider, payload, self.headers)
                if isinstance(failure, CallerFault):  # too late to relay a status: it ends the stream
                    failure = ProviderFailed(failure.failure)
                good = b"\n\n".join(events[:index])
                return (good + b"\n\n" if good else b""), failure
        return complete, None
