"""Graceful drain: a replica told to stop leaves its load balancer's pool first, then finishes what it has.

On SIGTERM (what Kubernetes and Docker send):
1. at once, `/health/ready` and `/health` answer 503 `"status": "draining"`, so the load balancer
   stops sending; requests that still arrive are served;
2. after `settle_s` (load balancers take a few seconds to notice), uvicorn stops accepting
   connections and closes idle ones, while the requests in flight go on;
3. after `drain_s` more, every stream still open ends with our error event (never a clean end)
   and the process exits 0. uvicorn's own graceful-shutdown timeout, a little longer, is the backstop
   for anything else still running.
SIGINT (Ctrl-C at a terminal) does the same without the settle window; a second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn

log = logging.getLogger("gateway")


class Drain:
    """What the app and the relays read: whether this replica drains, and the streams it must end."""

    def __init__(self) -> None:
        self.draining = False
        self.ending = False  # the drain's deadline passed: open streams end now
        self.streams: set[asyncio.Task[None]] = set()

    def end_streams(self) -> None:
        self.ending = True
        if self.streams:
            log.warning("drain: ending %d stream(s) still open at the deadline", len(self.streams))
        for task in list(self.streams):
            task.cancel(msg="drain deadline")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Drain, settle_s: float, drain_s: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.settle_s, self.drain_s = settle_s, drain_s
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's: it would re-raise the signal once shut down, and a process killed by SIGTERM
        # exits 143, not 0. A second signal stops at once, as uvicorn's second Ctrl-C does.
        if self.drain.draining or self._loop is None:
            self.should_exit = self.force_exit = True
            return
        self.drain.draining = True  # the next /health/ready says 503
        settle = 0.0 if sig == signal.SIGINT else self.settle_s
        log.warning("%s: draining; new connections refused in %g s, open streams ended %g s after", _name(sig),
                    settle, self.drain_s)  # fmt: skip
        self._loop.call_soon_threadsafe(self._loop.call_later, settle, self._stop_taking)

    def _stop_taking(self) -> None:
        self.should_exit = True  # uvicorn closes its sockets and waits for the requests in flight
        assert self._loop is not None
        self._loop.call_later(self.drain_s, self.drain.end_streams)


def _name(sig: int) -> str:
    return signal.Signals(sig).name
