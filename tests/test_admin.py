"""The admin API and `gateway cooldown`: an operator un-benches or benches a provider, everywhere."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
import redis

from tests.conftest import ADMIN, AUTH, ROOT, config_dict, served_by, wait_for
from tests.fakes import error


@pytest.fixture
def gateway(fakes, start_gateway):
    return start_gateway(config_dict(fakes), admin_key=ADMIN)


def test_admin_is_off_without_a_key(fakes, start_gateway):
    plain = start_gateway(config_dict(fakes))
    response = httpx.get(f"{plain.url}/admin/cooldowns", headers=AUTH)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["code"] == "admin_api_disabled"
    assert "GATEWAY_ADMIN_KEY" in response.json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {ADMIN}x"}])
def test_admin_refuses_anyone_without_the_key(gateway, headers):
    for method, path in (("GET", ""), ("DELETE", "/openai"), ("PUT", "/openai")):
        response = httpx.request(method, f"{gateway.url}/admin/cooldowns{path}", headers=headers, json={"seconds": 5})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_admin_key"
    assert gateway.provider("openai")["state"] == "available"


def test_billing_fixed_unbench_now(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    listed = httpx.get(f"{gateway.url}/admin/cooldowns", headers=AUTH).json()["cooldowns"]
    assert [(c["key"], c["reason"]) for c in listed] == [("openai", "quota_exhausted")]
    response = httpx.delete(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH)
    assert response.status_code == 200 and response.json()["cooldowns"] == []
    assert served_by(gateway.client()) == "openai"


def test_set_benches_and_may_shorten(gateway, fakes):
    response = httpx.put(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH, json={"seconds": 600})
    assert response.status_code == 200
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("cooldown", "manual") and entry["cooldown_remaining_s"] > 590
    assert served_by(gateway.client()) == "groq"
    httpx.put(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH, json={"seconds": 5, "reason": "rate_limited"})
    assert gateway.provider("openai")["cooldown_remaining_s"] <= 5


def test_unknown_targets_and_bad_bodies(gateway):
    assert httpx.delete(f"{gateway.url}/admin/cooldowns/nobody", headers=AUTH).status_code == 404
    assert httpx.delete(f"{gateway.url}/admin/cooldowns/openai/no-model", headers=AUTH).status_code == 404
    assert httpx.delete(f"{gateway.url}/admin/cooldowns/openai/gpt-4o-mini", headers=AUTH).status_code == 200
    for body in ({}, {"seconds": -1}, {"seconds": "soon"}, {"seconds": 10**9}):
        response = httpx.put(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH, json=body)
        assert response.status_code == 400, body


def test_a_clear_on_one_replica_is_seen_by_another(fakes, spawn_gateway, redis_server):
    config = config_dict(fakes)
    first = spawn_gateway(config, redis_server.url, admin_key=ADMIN)
    second = spawn_gateway(config, redis_server.url)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(first.client()) == "groq"
    wait_for(lambda: second.provider("openai")["state"] == "cooldown", timeout=5, what="the bench to spread")
    assert httpx.delete(f"{first.url}/admin/cooldowns/openai", headers=AUTH).status_code == 200
    wait_for(lambda: second.provider("openai")["state"] == "available", timeout=5, what="the clear to spread")
    assert served_by(second.client()) == "openai"


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GATEWAY_URL", "GATEWAY_ADMIN_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "cooldown", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**environ, **env},
    )


def test_cli_works_on_redis_directly(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    wait_for(lambda: gateway.health()["store"]["state"] == "ok", what="the gateway to use redis")
    result = cli("set", "openai", "--seconds", "300", "--reason", "billing", REDIS_URL=redis_server.url)
    assert result.returncode == 0, result.stderr
    assert "1 running gateway(s) use it" in result.stdout
    wait_for(lambda: gateway.provider("openai")["reason"] == "billing", timeout=5, what="the CLI bench")
    assert served_by(gateway.client()) == "groq"
    assert cli("clear", "openai", REDIS_URL=redis_server.url).returncode == 0
    wait_for(lambda: gateway.provider("openai")["state"] == "available", timeout=5, what="the CLI clear")


def test_cli_works_through_the_admin_api(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    assert cli("clear", "openai", "--url", gateway.url, GATEWAY_ADMIN_KEY=ADMIN).returncode == 0
    assert gateway.provider("openai")["state"] == "available"
    refused = cli("clear", "openai", "--url", gateway.url, GATEWAY_ADMIN_KEY="wrong")
    assert refused.returncode == 1 and "401" in refused.stderr
    assert cli("clear", "openai").returncode == 2  # neither --url nor REDIS_URL


def test_cli_says_when_the_admin_api_is_off(fakes, start_gateway):
    plain = start_gateway(config_dict(fakes))
    result = cli("clear", "openai", "--url", plain.url, GATEWAY_ADMIN_KEY=ADMIN)
    assert result.returncode == 1
    assert "admin API is off" in result.stderr and "GATEWAY_ADMIN_KEY" in result.stderr


def test_cli_on_redis_says_when_no_gateway_reads_it(fakes, start_gateway, redis_server):
    in_memory = start_gateway(config_dict(fakes))  # no REDIS_URL: its cooldowns live in its own memory
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(in_memory.client()) == "groq"
    result = cli("clear", "openai", REDIS_URL=redis_server.url)
    assert result.returncode == 0, result.stderr  # written, for gateways that start on that Redis later
    assert "no running gateway uses this Redis" in result.stdout
    assert "admin API (--url" in result.stderr and "restart" in result.stderr
    assert in_memory.provider("openai")["state"] == "cooldown"  # and indeed nothing changed for it


def test_cli_refuses_a_provider_that_is_not_configured(gateway, redis_server):
    through_api = cli("clear", "opnai", "--url", gateway.url, GATEWAY_ADMIN_KEY=ADMIN)
    in_redis = cli("set", "opnai", "--seconds", "60", REDIS_URL=redis_server.url)  # checked against providers.yaml
    for result in (through_api, in_redis):
        assert result.returncode == 1
        assert "'opnai'" in result.stderr and "openai, groq, gemini, deepseek, ollama" in result.stderr
    assert redis.Redis.from_url(redis_server.url).keys("*") == []  # nothing written
