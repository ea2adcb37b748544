"""Who is still listening: a request's task is cancelled when its client disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ClientWatch:
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
