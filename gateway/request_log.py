"""One JSON line per request: who asked for what, who served, who was skipped and why, how long, tokens.

Cheap by construction: the edge fills a slotted `Trace` as the request goes (the router adds the
providers it skipped), and one `orjson.dumps` makes the line at the end. Lines that end in the
same turn of the event loop leave in one `write` at the end of that turn, so under load the log
costs less than a syscall per request, and a line is still out at once. Nothing
here ever holds a key: a trace has no headers, and an attempt's words are our own (see web.messages)
or an already redacted provider message.
"""

from __future__ import annotations

import asyncio
import enum
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.client_keys import ClientKey
    from gateway.errors import Attempt
    from gateway.providers import Provider


class Outcome(enum.StrEnum):
    """How a client request ended: the `outcome` of its log line and of gateway_requests_total."""

    OK = "ok"
    UNAUTHORIZED = "unauthorized"  # no valid gateway key
    BAD_REQUEST = "bad_request"  # refused by the gateway's own checks
    UNKNOWN_MODEL = "unknown_model"
    CALLER_FAULT = "caller_fault"  # a provider rejected the request itself; relayed
    REQUEST_TOO_LARGE = "request_too_large"  # every provider refused its size
    NO_PROVIDER = "no_provider"
    SHED = "shed"  # past limits.max_in_flight: answered 503 at once
    OVER_LIMIT = "over_limit"  # its gateway key's budget or rate limit: answered 429, no provider reached
    STREAM_BROKEN = "stream_broken"  # after the stream was committed
    CLIENT_GONE = "client_gone"
    CANCELLED = "cancelled"  # by the server, at shutdown
    ERROR = "error"  # the gateway failed; also a request that ended without saying how


class Trace:
    """What happened to one client request, filled in as it goes."""

    __slots__ = (
        "attempting",
        "attempts",
        "cost_nano",
        "endpoint",
        "estimated",
        "events",
        "first_chunk_s",
        "key",
        "model",
        "outcome",
        "probe",
        "provider",
        "request_bytes",
        "request_id",
        "reserved",
        "reserved_nano",
        "served",
        "started",
        "status",
        "stream",
        "upstream_request_id",
        "usage",
        "user",
    )

    def __init__(self, request_id: bytes, endpoint: str) -> None:
        self.request_id = request_id
        self.endpoint = endpoint
        self.started = time.perf_counter()
        self.model: str | None = None
        self.stream = False
        self.provider: str | None = None
        self.attempts: list[Attempt] = []  # the providers that did not serve it, and why
        self.probe = False  # this request was the one sent to a recovering provider
        self.status = 0
        self.outcome = Outcome.ERROR
        self.first_chunk_s: float | None = None
        self.usage: dict[str, Any] | None = None
        self.upstream_request_id: str | None = None
        # Who it counts for and what it cost (gateway.accounting fills these in).
        self.key: ClientKey | None = None
        self.user: str | None = None
        self.served: Provider | None = None  # the provider that answered it; `provider` is its name
        self.attempting: Provider | None = None  # the provider that has the request now, while it is tried
        self.request_bytes = 0
        self.events = 0  # data events relayed, for a stream's estimate when its usage report never came
        self.reserved: tuple[tuple[str, str], ...] = ()  # budget entries this request reserved from
        self.reserved_nano = 0
        self.cost_nano: int | None = None  # None: nothing charged, or unpriced (see `served`)
        self.estimated = False

    def tokens(self) -> tuple[int, int]:
        usage = self.usage
        if not usage:
            return 0, 0
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return (prompt if isinstance(prompt, int) else 0), (completion if isinstance(completion, int) else 0)


def _stdout(line: bytes) -> None:
    # os.write, not a buffered stream: lines are out at the end of the loop turn their requests ended
    # in, not whenever a buffer happens to fill (or never, if the process dies).
    while line:
        line = line[os.write(1, line) :]


class RequestLog:
    def __init__(self, write: Callable[[bytes], Any] | None = _stdout) -> None:
        self._write = write  # None: request logging is off
        self._pending: list[bytes] = []

    def emit(self, trace: Trace) -> None:
        """Queue the request's line for the end of this turn of the event loop."""
        if self._write is None:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(orjson.dumps(self._fields(trace), option=orjson.OPT_APPEND_NEWLINE))

    def _flush(self) -> None:
        lines, self._pending = self._pending, []
        assert self._write is not None
        try:
            self._write(b"".join(lines))
        except OSError:  # a log that cannot be written (closed, full) loses lines, never a request
            pass

    def _fields(self, trace: Trace) -> dict[str, Any]:
        ended = time.perf_counter()
        line: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "event": "request",
            "request_id": trace.request_id.decode(),
            "endpoint": trace.endpoint,
            "model": trace.model[:200] if isinstance(trace.model, str) else trace.model,  # the client chose it
            "stream": trace.stream,
            "provider": trace.provider,
            "status": trace.status,
            "outcome": trace.outcome,
            "latency_ms": round((ended - trace.started) * 1000, 2),
        }
        if trace.attempts:
            line["skipped"] = [_skipped(a) for a in trace.attempts]
        if trace.probe:
            line["probe"] = True
        if trace.first_chunk_s is not None:
            line["first_chunk_ms"] = round(trace.first_chunk_s * 1000, 2)
        if trace.usage:
            characters = trace.usage.get("characters")
            if characters is not None:  # speech: known from the request, shown when it was served
                if trace.served is not None:
                    line["characters"] = characters
            else:
                prompt, completion = trace.tokens()
                line["tokens"] = {"prompt": prompt, "completion": completion}
        if trace.upstream_request_id:
            line["upstream_request_id"] = trace.upstream_request_id
        if trace.key is not None:
            line["key"], line["project"] = trace.key.name, trace.key.project
        if trace.served is not None:  # charged: its cost, null when its model has no price
            line["cost_usd"] = trace.cost_nano / 1e9 if trace.cost_nano is not None else None
            if trace.estimated:
                line["estimated"] = True
        return line


def failover_entry(trace: Trace, ended: float) -> bytes:
    """A request that skipped a provider, for the dashboard's recent failovers: the facts of its log line.
    Made when its batch of usage leaves, from the finished trace; `ended` is when it ended (epoch s)."""
    entry = {
        "ts": round(ended, 3),
        "request_id": trace.request_id.decode(),
        "endpoint": trace.endpoint,
        "model": trace.model[:200] if isinstance(trace.model, str) else None,
        "key": trace.key.name if trace.key is not None else None,
        "provider": trace.provider,
        "status": trace.status,
        "outcome": trace.outcome,
        "skipped": [_skipped(a) for a in trace.attempts],
    }
    return orjson.dumps(entry)


def _skipped(attempt: Attempt) -> dict[str, Any]:
    return {
        "provider": attempt.provider.name,
        "reason": attempt.label,
        "status": attempt.status,
        "cooldown_s": round(attempt.remaining_s, 1) if attempt.remaining_s else None,
    }
