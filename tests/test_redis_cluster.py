"""Redis Cluster on loopback: every store operation (scripts, transactions, pipelines) on a real
three-primary cluster with no CROSSSLOT, through the gateway, the stores and the CLIs; then a
primary lost under traffic (see tests/topologies.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.accounting.ledger import Batch
from gateway.accounting.redis_store import RedisUsageStore
from gateway.store.cooldowns import RedisCooldowns
from tests.conftest import ADMIN, AUTH, config_dict, figure, redis_key, served_by, wait_for
from tests.fakes import error
from tests.test_admin import cli
from tests.test_doctor import doctor, table
from tests.topologies import ClusterTopology, Traffic, poll


@pytest.fixture
def cluster(tmp_path) -> Iterator[ClusterTopology]:
    topology = ClusterTopology(tmp_path)
    yield topology
    topology.stop()


@pytest.fixture
def cluster_with_replicas(tmp_path) -> Iterator[ClusterTopology]:
    topology = ClusterTopology(tmp_path, replicas=True)
    yield topology
    topology.stop()


def usage_requests(gateway, since: int) -> int:
    answer = httpx.get(
        f"{gateway.url}/v1/organization/usage/completions",
        params={"start_time": since, "bucket_width": "1h"},
        headers=AUTH,
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return sum(r["num_model_requests"] for bucket in answer.json()["data"] for r in bucket["results"])


def quiet(*gateways) -> None:
    """Every Redis call of every gateway has succeeded so far (a CROSSSLOT would show here)."""
    for gateway in gateways:
        health = gateway.health()
        for part in (health["store"], health.get("usage", {})):
            assert part.get("state", "ok") == "ok" and "last_error" not in part, health


def test_every_store_operation_works_on_a_cluster(fakes, start_gateway, cluster, tmp_path):
    since = int(time.time()) // 3600 * 3600
    url = cluster.url()
    first, second = (start_gateway(config_dict(fakes), url, ADMIN) for _ in range(2))
    for gateway in (first, second):
        wait_for(lambda g=gateway: g.health()["store"]["state"] == "ok", what="the cluster to be used")

    # A failure's bench (the extend-only script), seen by the other replica (index, pipeline of reads).
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(first.client()) == "groq"
    wait_for(lambda: second.provider("openai")["state"] == "cooldown", timeout=5, what="the bench to be shared")
    # The admin API: a clear (a transaction of three keys) and a replace, each seen by the other.
    assert httpx.delete(f"{second.url}/admin/cooldowns/openai", headers=AUTH).status_code == 200
    wait_for(lambda: first.provider("openai")["state"] == "available", timeout=5, what="the clear to be shared")
    put = httpx.put(f"{first.url}/admin/cooldowns/groq", json={"seconds": 300, "reason": "billing"}, headers=AUTH)
    assert put.status_code == 200, put.text
    wait_for(lambda: second.provider("groq")["reason"] == "billing", timeout=5, what="the replace to be shared")

    # Usage counters (one script per batch) and the failovers list, read back through the APIs.
    wait_for(lambda: usage_requests(second, since) == 1, timeout=5, what="the usage to be stored")
    failovers = httpx.get(f"{second.url}/v1/dashboard/failovers", headers=AUTH)
    assert failovers.status_code == 200 and "openai" in failovers.text, failovers.text

    async def stores() -> None:
        cooldowns = RedisCooldowns(url, timeout_s=2.0)
        usage = RedisUsageStore(url, retention_days=7, timeout_s=2.0)
        await cooldowns.start()
        await usage.start()
        try:
            assert await cooldowns.claim_probe("deepseek", 5)  # the probe lock: claim and release scripts
            cooldowns.release_probe("deepseek")
            assert await cooldowns.gateways() in (2, 3)  # check-ins: both gateways (and this store, once polled)
            assert await usage.write(Batch("cluster-test:1", failovers=[b'{"test": 1}']))
            day, month = time.strftime("d%Y%m%d", time.gmtime()), time.strftime("m%Y%m", time.gmtime())
            assert await usage.totals([day, month], int(time.time() // 60)) is not None  # a transaction
            assert (await usage.recent_failovers())[0] == b'{"test": 1}'
            assert not cooldowns.link.last_error and not usage.link.last_error
        finally:
            await cooldowns.close()
            await usage.close()

    asyncio.run(stores())
    # The CLIs and the doctor take the same URL.
    result = cli("set", "deepseek", "--seconds", "300", "--reason", "billing", REDIS_URL=url)
    assert result.returncode == 0 and "2 running gateway(s) use it" in result.stdout, result.stdout + result.stderr
    wait_for(lambda: first.provider("deepseek")["reason"] == "billing", timeout=5, what="the CLI's bench")
    for fake in fakes.values():
        fake.reset()  # the doctor's check: it sends nothing but free reads
    report = doctor(fakes, config_dict(fakes), tmp_path, REDIS_URL=url)
    assert f"redis: ok ({url})" in report.stdout, report.stdout + report.stderr
    assert table(report.stdout)["groq"]["QUOTA"] == "billing"
    quiet(first, second)


def test_a_lost_primary_is_replaced_and_no_request_fails(fakes, start_gateway, cluster_with_replicas):
    cluster = cluster_with_replicas
    gateways = [start_gateway(config_dict(fakes), cluster.url(), ADMIN) for _ in range(2)]
    for gateway in gateways:
        wait_for(lambda g=gateway: g.health()["store"]["state"] == "ok", what="the cluster to be used")
    traffic = Traffic(gateways).start()
    wait_for(lambda: traffic.sent >= 20, what="steady traffic")

    owner = cluster.owner(redis_key("cooldown-version"))  # the primary of the gateway's one slot
    cluster.node(owner).kill()
    lost = time.monotonic()
    fakes["openai"].script(error("openai-429-insufficient-quota"))  # learnt while the slot has no primary
    poll(lambda: cluster.owner(redis_key("cooldown-version")) != owner, 30, "a replica to take the slot over")
    healed_s = time.monotonic() - lost
    wait_for(lambda: all(g.provider("openai")["state"] == "cooldown" for g in gateways), timeout=15, what="the bench")
    fakes["groq"].script(error("groq-429-rpd-daily-quota"))  # learnt after the heal: shared again
    wait_for(lambda: all(g.provider("groq")["state"] == "cooldown" for g in gateways), timeout=15, what="groq's bench")
    sent = traffic.stop()
    assert traffic.failures == []
    quiet(*gateways)
    figure(f"cluster node loss: {sent} requests, 0 failed; the slot had a new primary {healed_s:.1f} s after the kill")
