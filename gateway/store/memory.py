"""In-process cooldowns: the whole store without Redis, and the local view behind the Redis store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gateway.store.base import Cooldown


class MemoryStore:
    backend = "memory"

    def __init__(self) -> None:
        self._view: dict[str, Cooldown] = {}
        # Told of a cooldown another replica cleared (a shared store only): its circuit breaker starts afresh.
        self.on_cleared: Callable[[str], None] = lambda _key: None
        self._probes: dict[str, float] = {}  # probe locks held or seen here: key -> monotonic expiry

    def get(self, key: str, now: float) -> Cooldown | None:
        cooldown = self._view.get(key)
        if cooldown is None or cooldown.until > now or cooldown.probe_until > now:
            return cooldown
        del self._view[key]
        return None

    def active(self, now: float) -> dict[str, Cooldown]:
        return {key: cd for key, cd in self._view.items() if cd.expires > now}

    def _claim_locally(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        if self._probes.get(key, 0.0) > now:
            return False
        self._probes[key] = now + ttl_s
        return True

    async def claim_probe(self, key: str, ttl_s: float) -> bool:
        return self._claim_locally(key, ttl_s)

    def release_probe(self, key: str) -> None:
        self._probes.pop(key, None)

    def set(self, key: str, cooldown: Cooldown) -> None:
        self._view[key] = cooldown

    def clear(self, key: str) -> None:
        self._view.pop(key, None)

    def replace(self, key: str, cooldown: Cooldown) -> None:
        self._view[key] = cooldown

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "state": "ok"}

    async def start(self) -> None:
        pass

    async def synced(self, timeout_s: float) -> None:
        pass

    async def close(self) -> None:
        pass
