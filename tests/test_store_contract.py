"""The cooldown store contract (gateway/store/base.py), run against every store: in-process, Redis, and
Redis on a Cluster node, where a script or transaction over keys of different slots is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from gateway.store import Cooldown, MemoryStore
from gateway.store.cooldowns import RedisCooldowns
from tests.conftest import RedisServer, redis_key

Check = Callable[[Any], Awaitable[None]]


@pytest.fixture(params=["memory", "redis", "redis-cluster-node"])
def backend(request: pytest.FixtureRequest) -> RedisServer | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster_node")


def run_with(server: RedisServer | None, check: Check, replicas: int = 1) -> None:
    """Run `check` against started stores on one backend (several replicas share a Redis), then close them."""

    async def main() -> None:
        make = MemoryStore if server is None else lambda: RedisCooldowns(server.url, timeout_s=2.0)
        stores = [make() for _ in range(replicas)]
        for store in stores:
            await store.start()
        try:
            await check(*stores)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def bench(seconds: float, reason: str = "quota_exhausted", recovery_s: float = 0.0) -> Cooldown:
    now = time.time()
    return Cooldown(reason, "detail", now, now + seconds, now + seconds + recovery_s if recovery_s else 0.0)


async def settled(store: Any) -> None:
    """A shared store has written every local change (a memory store has nothing to write)."""
    if isinstance(store, RedisCooldowns):
        assert await store.flush(), store.status()


def test_set_get_clear_and_active(backend):
    async def check(store: Any) -> None:
        now = time.time()
        assert store.get("openai", now) is None
        store.set("openai", bench(600))
        store.set("groq/llama", bench(60, "model_not_found"))
        await settled(store)
        assert store.get("openai", now).reason == "quota_exhausted"
        assert store.get("groq/llama", now).reason == "model_not_found"
        assert store.get("groq", now) is None  # a model's bench is not the provider's
        assert set(store.active(now)) == {"openai", "groq/llama"}
        store.clear("openai")
        await settled(store)
        assert store.get("openai", now) is None
        assert set(store.active(now)) == {"groq/llama"}

    run_with(backend, check)


def test_recovering_then_gone(backend):
    async def check(store: Any) -> None:
        cooldown = bench(60, recovery_s=3600)
        store.set("openai", cooldown)
        await settled(store)
        assert store.get("openai", cooldown.until - 1) is not None  # benched
        recovering = store.get("openai", cooldown.until + 1)
        assert recovering is not None and recovering.remaining(cooldown.until + 1) == 0.0
        assert "openai" in store.active(cooldown.until + 1)
        assert store.get("openai", cooldown.probe_until + 1) is None
        assert "openai" not in store.active(cooldown.probe_until + 1)

    run_with(backend, check)


def test_replace_may_shorten_a_bench(backend):
    async def check(store: Any) -> None:
        store.set("openai", bench(3600))
        store.replace("openai", bench(5, "manual"))
        await settled(store)
        cooldown = store.get("openai", time.time())
        assert cooldown.reason == "manual" and cooldown.remaining(time.time()) <= 5

    run_with(backend, check)


def test_one_probe_at_a_time_until_released_or_expired(backend):
    async def check(store: Any) -> None:
        assert await store.claim_probe("openai", 30)
        assert not await store.claim_probe("openai", 30)
        assert await store.claim_probe("groq", 30)  # locks are per provider
        store.release_probe("openai")  # a shared store tells Redis in the background: a claim may come first
        assert await store.claim_probe("openai", 0.05)
        deadline = time.monotonic() + 10
        while not await store.claim_probe("openai", 30):  # the short lock runs out by itself
            assert time.monotonic() < deadline, "the probe lock never expired"
            await asyncio.sleep(0.01)

    run_with(backend, check)


def test_status_names_the_backend(backend):
    async def check(store: Any) -> None:
        store.set("openai", bench(60))
        await settled(store)
        status = store.status()
        assert status["backend"] == ("memory" if backend is None else "redis")
        assert status["state"] == "ok"

    run_with(backend, check)


# -- what only a shared store promises ----------------------------------------------------------

shared = pytest.mark.parametrize("backend", ["redis", "redis-cluster-node"], indirect=True)


@shared
def test_replicas_share_benches_clears_and_probe_locks(backend):
    async def check(first: RedisCooldowns, second: RedisCooldowns) -> None:
        first.set("openai", bench(600))
        await settled(first)
        assert await second.load()
        assert second.get("openai", time.time()).reason == "quota_exhausted"
        first.clear("openai")
        await settled(first)
        assert await second.load()
        assert second.get("openai", time.time()) is None
        assert await first.claim_probe("openai", 30)
        assert not await second.claim_probe("openai", 30)

    run_with(backend, check, replicas=2)


@shared
def test_a_shorter_bench_from_another_replica_never_shortens_one_in_redis(backend):
    async def check(first: RedisCooldowns, second: RedisCooldowns) -> None:
        first.set("openai", bench(3600))
        await settled(first)
        second.set("openai", bench(5, "rate_limited"))  # a late answer, on a replica that had not heard
        await settled(second)
        assert await second.load()
        assert second.get("openai", time.time()).reason == "quota_exhausted"

    run_with(backend, check, replicas=2)


@shared
def test_every_key_is_under_the_one_hash_tag(backend):
    """Cooldowns, their index, the version counter and probe locks share one Cluster slot."""

    async def check(store: RedisCooldowns) -> None:
        store.set("openai", bench(600))
        store.set("groq/llama", bench(600, "model_not_found"))
        store.clear("groq/llama")
        assert await store.claim_probe("deepseek", 30)
        await settled(store)

    run_with(backend, check)
    keys = redis.Redis(port=backend.port).keys("*")
    assert {k.decode() for k in keys} >= {
        redis_key("cooldown", "openai"), redis_key("cooldown-keys"), redis_key("cooldown-version"),
        redis_key("probe", "deepseek"),
    }  # fmt: skip
    assert all(k.startswith(b"{gateway}:") for k in keys)
    assert len({key_slot(k) for k in keys}) == 1
