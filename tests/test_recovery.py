"""Recovery probes and pacing: a provider comes back through one probe request, and a spent budget benches early."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from tests.conftest import config_dict, redis_key, served_by, wait_for
from tests.fakes import Reply, error

SHORT_QUOTA = {"cooldowns": {"quota_s": 1}}


def bench_for_quota(gateway, fakes) -> None:
    """One insufficient_quota from OpenAI, then wait (on the health report) for the 1 s cooldown to end."""
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    wait_for(lambda: gateway.provider("openai")["state"] == "recovering", what="openai to start recovering")


def test_a_successful_probe_brings_the_provider_back(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, **SHORT_QUOTA))
    bench_for_quota(gateway, fakes)
    entry = gateway.provider("openai")
    assert (entry["reason"], entry["cooldown_remaining_s"]) == ("quota_exhausted", 0.0)
    assert "openai" in gateway.health()["serving"]
    assert served_by(gateway.client()) == "openai"  # the probe
    assert gateway.provider("openai")["state"] == "available"
    lines = wait_for(lambda: len(gateway.log_lines()) == 2 and gateway.log_lines(), what="two log lines")
    assert [line.get("probe", False) for line in lines] == [False, True]
    assert fakes["openai"].calls() == 2


def test_a_failed_probe_benches_for_twice_as_long(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, **SHORT_QUOTA))
    bench_for_quota(gateway, fakes)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    cooldown = gateway.app.store.get("openai", time.time())
    assert cooldown.reason == "quota_exhausted" and cooldown.until - cooldown.since == 2.0
    assert cooldown.probe_until > cooldown.until  # and when that ends, another probe
    assert fakes["openai"].calls() == 2


def test_a_probe_the_caller_spoiled_proves_nothing(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, **SHORT_QUOTA))
    bench_for_quota(gateway, fakes)
    fakes["openai"].script(error("openai-400-context-length-exceeded"))
    with pytest.raises(Exception, match="maximum context length"):
        served_by(gateway.client())
    assert gateway.provider("openai")["state"] == "recovering"
    assert served_by(gateway.client()) == "openai"  # the lock was released: the next request probes


def test_exactly_one_probe_across_two_replicas(fakes, spawn_gateway, redis_server):
    config = config_dict(fakes, **SHORT_QUOTA)
    first, second = spawn_gateway(config, redis_server.url), spawn_gateway(config, redis_server.url)
    bench_for_quota(first, fakes)
    for replica in (first, second):
        wait_for(lambda r=replica: r.provider("openai")["state"] == "recovering", what="both replicas recovering")
    gate = threading.Event()
    fakes["openai"].script(Reply(gate=gate))  # the probe's answer waits for the test
    probe: dict[str, str] = {}
    thread = threading.Thread(target=lambda: probe.setdefault("by", served_by(second.client())))
    thread.start()
    try:
        wait_for(lambda: fakes["openai"].calls() == 2, what="the probe to reach openai")
        # Meanwhile, every other request on either replica goes to the fallback, and none to openai.
        for replica in (first, second, first, second):
            assert served_by(replica.client()) == "groq"
        assert fakes["openai"].calls() == 2
    finally:
        gate.set()
        thread.join(10)
    assert probe["by"] == "openai"
    for replica in (first, second):
        wait_for(lambda r=replica: r.provider("openai")["state"] == "available", what="openai back everywhere")
        assert served_by(replica.client()) == "openai"


@pytest.mark.parametrize("budget", ["requests", "tokens"])
def test_pacing_benches_until_the_reset_instead_of_waiting_for_a_429(gateway, fakes, budget):
    left = {f"x-ratelimit-remaining-{budget}": "5", f"x-ratelimit-reset-{budget}": "2s"}
    spent = {f"x-ratelimit-remaining-{budget}": "0", f"x-ratelimit-reset-{budget}": "20s"}
    fakes["openai"].script(Reply(headers=left), Reply(headers=spent))
    assert served_by(gateway.client()) == "openai"
    assert gateway.provider("openai")["state"] == "available"  # budget left: nothing to do
    assert served_by(gateway.client()) == "openai"  # the answer is served; the bench is for what follows
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("cooldown", "rate_limited")
    assert 15 < entry["cooldown_remaining_s"] <= 20
    assert entry["detail"] == f"paced: x-ratelimit-remaining-{budget} is 0"
    assert served_by(gateway.client()) == "groq"
    assert fakes["openai"].calls() == 2


def test_a_probe_that_also_spends_the_budget_ends_paced_everywhere(fakes, start_gateway, redis_server):
    """The probe's clear and the pacing bench land together: Redis must not keep the old quota entry."""
    gateway = start_gateway(config_dict(fakes, **SHORT_QUOTA), redis_server.url)
    bench_for_quota(gateway, fakes)
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}
    fakes["openai"].script(Reply(headers=spent))
    assert served_by(gateway.client()) == "openai"  # the probe, and it said the budget is spent
    client = redis.Redis.from_url(redis_server.url)

    def shared_reason() -> str | None:
        raw = client.get(redis_key("cooldown", "openai"))
        return json.loads(raw)["reason"] if raw else None

    wait_for(lambda: shared_reason() == "rate_limited", what="the pacing bench to replace the quota entry in redis")
    value = json.loads(client.get(redis_key("cooldown", "openai")))
    assert value["probe_until"] == 0.0  # a pacing bench just ends
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("cooldown", "rate_limited")


def test_with_redis_down_a_replica_probes_on_its_own(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes, **SHORT_QUOTA), redis_server.url)
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", what="redis to be seen")
    bench_for_quota(gateway, fakes)
    redis_server.kill()
    assert served_by(gateway.client()) == "openai"  # the probe: the lock could not be asked for, so it is ours
    assert gateway.provider("openai")["state"] == "available"


def test_a_probe_that_succeeds_on_one_replica_resets_the_breaker_on_every_replica(fakes, start_gateway, redis_server):
    config = config_dict(fakes, cooldowns={"transient_failures": 3, "transient_s": 0.3})
    first, second = start_gateway(config, redis_server.url), start_gateway(config, redis_server.url)
    broken = error("openai-500-server-error")
    fakes["openai"].script(broken, broken)
    for _ in range(2):  # two failures in a row on the second replica: its breaker is one away from opening
        assert served_by(second.client()) == "groq"
    fakes["openai"].script(broken, broken, broken)
    for _ in range(3):  # the first replica's breaker opens
        assert served_by(first.client()) == "groq"
    for replica in (first, second):
        wait_for(lambda r=replica: r.provider("openai")["state"] == "recovering", what="both replicas recovering")
    assert served_by(first.client()) == "openai"  # the probe succeeds: openai is back, everywhere
    wait_for(lambda: second.provider("openai")["state"] == "available", what="the second replica to learn")
    fakes["openai"].script(broken)
    assert served_by(second.client()) == "groq"
    # One failure after a fresh start is one failure, not the third of a stale count.
    assert second.provider("openai")["state"] == "available"
