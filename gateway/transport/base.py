"""The Transport protocol: send a request to a provider, get an Answer or a Stream.

A transport knows how to reach one family of providers (OpenAI-compatible HTTP through aiohttp
today; an SDK or litellm tomorrow) and nothing about routing. It raises only our own errors:
`ProviderFailed` for a failure the next provider may not share, `CallerFault` for an upstream's
rejection of the request itself. Whatever its library raises is mapped at its own boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gateway.endpoints import Endpoint
    from gateway.providers import Provider
    from gateway.settings import Timeouts

# The next piece of a response body, b"" at its end; raises ProviderFailed when the connection breaks.
ByteReader = Callable[[], Awaitable[bytes]]


class Answer:
    """A non-streamed success: the body to relay as it came, and what the gateway reads from it."""

    __slots__ = ("body", "content_type", "headers", "usage")

    def __init__(
        self,
        body: bytes,
        headers: Mapping[str, str],
        usage: dict[str, Any] | None,
        content_type: bytes = b"application/json",
    ) -> None:
        self.body = body
        self.headers = headers
        self.usage = usage
        self.content_type = content_type


class Stream(Protocol):
    """A committed stream: its first piece is already read and proven good."""

    first: bytes
    headers: Mapping[str, str]
    usage: dict[str, Any] | None
    # The gateway asked for the usage report and the client did not: it is read, not relayed.
    strip_usage: bool

    def events(self) -> AsyncIterator[bytes]:
        """The rest, in blocks as they come; raises ProviderFailed if the stream breaks or stalls."""
        ...

    def close(self) -> None:
        """Drop the upstream connection (idempotent): the provider stops generating, and billing."""
        ...


class Transport(Protocol):
    timeouts: Timeouts
    max_response_bytes: int  # a non-streamed answer past this fails the attempt

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def complete(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> Answer:
        """A whole answer, or ProviderFailed / CallerFault."""
        ...

    async def stream(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any]) -> Stream:
        """A stream read up to its first real piece, or ProviderFailed / CallerFault."""
        ...

    async def get(self, provider: Provider, url: str) -> tuple[int, bytes]:
        """A free read (a model list, a balance) for `gateway doctor`: its status and body."""
        ...
