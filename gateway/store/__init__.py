"""Shared state: the cooldown store contract, in-process and on Redis."""

from __future__ import annotations

from gateway.store.base import Cooldown, CooldownStore
from gateway.store.memory import MemoryStore


def make_store(redis_url: str | None) -> CooldownStore:
    """Redis when REDIS_URL is set, shared by every replica; else this process alone."""
    if not redis_url:
        return MemoryStore()
    from gateway.store.cooldowns import RedisCooldowns  # redis is imported only when used

    return RedisCooldowns(redis_url)


__all__ = ["Cooldown", "CooldownStore", "MemoryStore", "make_store"]
