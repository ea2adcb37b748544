"""Shared cooldowns on a real redis-server: shared by replicas, and never a reason to fail or stall."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import redis

from gateway.routing.policy import RECOVERY_WINDOW_S
from gateway.store import Cooldown
from gateway.store.cooldowns import RedisCooldowns
from tests.conftest import KEYS, bench_in_redis, config_dict, free_port, redis_key, served_by, wait_for
from tests.fakes import error

OPENAI_KEY = redis_key("cooldown", "openai")
INDEX = redis_key("cooldown-keys")


def test_a_cooldown_set_by_one_replica_is_honoured_by_another(fakes, spawn_gateway, redis_server):
    config = config_dict(fakes)
    first = spawn_gateway(config, redis_server.url)
    second = spawn_gateway(config, redis_server.url)
    assert served_by(second.client()) == "openai"

    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(first.client()) == "groq"
    wait_for(lambda: second.provider("openai")["state"] == "cooldown", timeout=5, what="the second replica to learn")
    assert second.provider("openai")["reason"] == "quota_exhausted"
    assert served_by(second.client()) == "groq"
    assert fakes["openai"].calls() == 2  # the first 200 and the one 429; nothing after the bench


def test_redis_holds_reason_and_ttl_and_no_secrets(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: client.exists(OPENAI_KEY), timeout=5, what="the cooldown in redis")
    value = json.loads(client.get(OPENAI_KEY))
    assert value["reason"] == "quota_exhausted"
    assert value["until"] - value["since"] == 3600
    assert "exceeded your current quota" in value["detail"]
    # The key outlives the cooldown by the recovery window: after it, one probe must succeed first.
    assert value["probe_until"] - value["until"] == RECOVERY_WINDOW_S
    assert 3500 + RECOVERY_WINDOW_S < client.ttl(OPENAI_KEY) <= 3600 + RECOVERY_WINDOW_S
    dump = b"".join(client.dump(k) or b"" for k in client.keys("*"))
    assert not any(key.encode() in dump for key in KEYS.values())


def test_killing_redis_mid_test_keeps_serving_and_resyncs(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    assert served_by(gateway.client()) == "openai"
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", timeout=5, what="redis to be seen")

    redis_server.kill()
    for _ in range(5):
        assert served_by(gateway.client()) == "openai"
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"  # the cooldown still works, in the local view
    assert served_by(gateway.client()) == "groq"
    wait_for(lambda: gateway.health()["store"]["state"] == "down", timeout=5, what="the store to report redis down")
    assert gateway.provider("openai")["state"] == "cooldown"

    redis_server.start()  # an empty redis on the same port: the replica gives back what it knows
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: client.exists(OPENAI_KEY), timeout=15, what="the cooldown to be pushed back")
    assert gateway.health()["store"]["state"] == "ok"
    assert served_by(gateway.client()) == "groq"


def test_a_gateway_started_while_redis_is_down_starts_and_serves(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes), f"redis://127.0.0.1:{free_port()}/0")
    assert served_by(gateway.client()) == "openai"
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    store = gateway.health()["store"]
    assert (store["backend"], store["state"]) == ("redis", "down")
    assert "last_error" in store


def test_a_hung_redis_does_not_stall_requests(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", timeout=5, what="redis to be seen")
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        fakes["openai"].script(error("openai-429-insufficient-quota"))
        client = gateway.client(timeout=5)  # a stall would surface as a client timeout
        assert served_by(client) == "groq"
        for _ in range(5):
            assert served_by(client) == "groq"
        wait_for(lambda: gateway.health()["store"]["state"] == "down", timeout=5, what="the hang to be noticed")
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    check = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: check.exists(OPENAI_KEY), timeout=15, what="the cooldown to reach redis")


def test_a_write_that_failed_once_is_retried_and_does_not_blind_the_replica(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", timeout=5, what="redis to be seen")
    client.execute_command("CLIENT", "PAUSE", "400", "WRITE")  # the next write times out
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    wait_for(lambda: client.exists(OPENAI_KEY), timeout=10, what="the failed write to be retried")
    bench_in_redis(client, "groq")  # another replica benches groq: this one must still learn it
    wait_for(lambda: gateway.provider("groq")["state"] == "cooldown", timeout=5, what="groq's bench to be seen")
    assert served_by(gateway.client()) == "gemini"


def test_an_unreadable_value_in_redis_does_not_stop_syncing(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    client.set(redis_key("cooldown", "bogus"), b"{not json", ex=600)
    client.sadd(INDEX, "bogus")
    client.set(redis_key("cooldown", "deepseek"), b'{"detail": "no reason"}', ex=600)
    client.sadd(INDEX, "deepseek")
    client.incr(redis_key("cooldown-version"))
    bench_in_redis(client, "openai")
    wait_for(lambda: gateway.provider("openai")["state"] == "cooldown", timeout=5, what="the valid bench")
    assert gateway.provider("deepseek")["state"] == "available"
    bench_in_redis(client, "groq")  # still syncing afterwards
    wait_for(lambda: gateway.provider("groq")["state"] == "cooldown", timeout=5, what="a later bench")
    assert gateway.health()["store"]["state"] == "ok"


def test_a_bench_is_never_shortened_in_redis(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    client = redis.Redis.from_url(redis_server.url)
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", timeout=5, what="redis to be seen")
    # Another replica's long bench, not yet announced: this replica still sends openai traffic.
    client.set(OPENAI_KEY, b'{"reason": "quota_exhausted", "detail": "", "since": 0}', ex=3000)
    fakes["openai"].script(error("openai-429-rpm-retry-after"))  # a 7 s rate limit
    assert served_by(gateway.client()) == "groq"
    wait_for(lambda: not gateway.health()["store"].get("unsynced"), timeout=5, what="the write to be answered")
    assert client.ttl(OPENAI_KEY) > 2900


def test_a_later_bench_wins_in_redis_even_with_a_shorter_ttl(redis_server):
    """Extend-only compares when benches end: a recovery window in a TTL does not block a longer bench."""
    client = redis.Redis.from_url(redis_server.url)
    now = time.time()
    value = {"reason": "transient", "detail": "", "since": now, "until": now + 30, "probe_until": now + 30 + 86400}
    client.set(OPENAI_KEY, json.dumps(value), ex=86430)

    async def bench_for_auth() -> None:
        store = RedisCooldowns(redis_server.url, timeout_s=2.0)
        await store.start()
        try:
            store.set("openai", Cooldown("auth", "key rejected", now, now + 3600))
            assert await store.flush()
        finally:
            await store.close()

    asyncio.run(bench_for_auth())
    assert json.loads(client.get(OPENAI_KEY))["reason"] == "auth"
    assert 3500 < client.ttl(OPENAI_KEY) <= 3600
