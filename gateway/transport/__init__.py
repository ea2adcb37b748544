"""How the gateway speaks to providers: the Transport protocol, what a call returns, and one instance per kind.

`http` is the only aiohttp user and serves every flavor that speaks OpenAI's HTTP API; `sse` is
the server-sent-events framing any streaming transport can use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.transport.base import Answer, ByteReader, Stream, Transport

if TYPE_CHECKING:
    from gateway.providers import Flavor
    from gateway.settings import Timeouts


class Transports:
    """One transport per kind, shared by every provider of the flavors that use it and kept across reloads.

    Made for every registered flavor at once, so a reload that brings a new flavor finds its
    transport already started.
    """

    def __init__(self, timeouts: Timeouts) -> None:
        from gateway.providers import FLAVORS

        self._by_class: dict[type[Transport], Transport] = {}
        for flavor in FLAVORS.values():
            kind = flavor.transport_class()
            if kind not in self._by_class:
                self._by_class[kind] = kind(timeouts)

    def for_flavor(self, flavor: Flavor) -> Transport:
        return self._by_class[flavor.transport_class()]

    def configure(self, timeouts: Timeouts, max_response_bytes: int) -> None:
        for transport in self._by_class.values():
            transport.timeouts = timeouts
            transport.max_response_bytes = max_response_bytes

    async def start(self) -> None:
        for transport in self._by_class.values():
            await transport.start()

    async def close(self) -> None:
        for transport in self._by_class.values():
            await transport.close()


__all__ = ["Answer", "ByteReader", "Stream", "Transport", "Transports"]
