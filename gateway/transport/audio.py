"""Raw bytes (speech audio): committed on the first bytes; after them, a break or a stall is the stream's.

Any transport that gets a body as a `ByteReader` can use this module. Audio has no framing to
check and no end marker: the body's own end (its length, or chunked encoding's last chunk) is the
only proof it is complete, and the reader raises ProviderFailed when that proof is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from gateway.errors import ProviderFailed
from gateway.transport.sse import StallWatchdog

if TYPE_CHECKING:
    from gateway.transport.base import ByteReader


async def first_bytes(read: ByteReader) -> bytes:
    """The first non-empty piece of the body; the caller bounds this with its deadline."""
    piece = await read()  # b"" only at the body's end: aiohttp's readany never returns an empty piece before it
    if not piece:
        raise ProviderFailed.transient("answer ended before any audio")
    return piece


class ByteStream:
    """A committed upstream body: its first bytes are already read."""

    def __init__(
        self, read: ByteReader, headers: Mapping[str, str], close: Callable[[], None], first: bytes, total_s: float
    ) -> None:
        self._read = read
        self.headers = headers
        self.close = close  # drops the connection, so the upstream stops generating, and billing
        self.first = first
        self._total_s = total_s
        self.content_type = headers.get("content-type", "application/octet-stream").encode("latin-1")
        self.usage = None  # speech is counted from the request (its characters), not from the answer
        self.strip_usage = False

    async def events(self) -> AsyncIterator[bytes]:
        """The rest of the body as it comes; ProviderFailed if it breaks, or stalls longer than the deadline."""
        read = self._read
        try:
            with StallWatchdog(asyncio.get_running_loop(), self._total_s, "audio") as watchdog:
                while piece := await read():
                    watchdog.fed()
                    watchdog.pause()  # a slow client is not a stalled upstream
                    yield piece
                    watchdog.resume()
        finally:
            self.close()
