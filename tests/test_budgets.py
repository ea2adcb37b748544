"""Budgets and rate limits of gateway keys, and providers' spend caps: limits that hold before any provider is asked."""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import time

import httpx
import openai
import pytest
import redis
import yaml

from tests.conftest import ADMIN, AUTH, MESSAGES, config_dict, figure, wait_for
from tests.fakes import Reply

KEY = "sk-gw-test-crm-0123456789"
OTHER = "sk-gw-test-other-0123456789"


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def keyed_config(fakes, order=("openai", "deepseek"), **crm):
    """openai at $1 per output token (the canned answer: 5 of them), and two keys: crm-tool with `crm` limits."""
    config = config_dict(fakes, order=order)
    config["providers"][0]["prices"] = {"gpt-4o-mini": {"input_per_mtok": 0, "output_per_mtok": 1_000_000}}
    config["client_keys"] = [
        {"name": "crm-tool", "key": digest(KEY), "project": "crm", **crm},
        {"name": "other", "key": digest(OTHER)},
    ]
    return config


def client(gateway, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def lines(gateway, count: int) -> list[dict]:
    wait_for(lambda: len(gateway.log_lines()) >= count, what=f"{count} request log lines")
    return gateway.log_lines()


def test_a_key_over_its_budget_gets_insufficient_quota_and_reaches_no_provider(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, budget={"daily_usd": 4.0, "monthly_usd": 100.0}))
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # costs $5
    lines(gateway, 1)
    scraped = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    assert 'gateway_budget_remaining_usd{name="crm-tool",period="monthly",scope="key"} 95.0' in scraped
    assert 'gateway_budget_remaining_usd{name="crm-tool",period="daily",scope="key"} 0.0' in scraped
    calls = fakes["openai"].calls()
    with pytest.raises(openai.RateLimitError) as refused:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert fakes["openai"].calls() == calls and fakes["deepseek"].calls() == 0
    error = refused.value.body
    assert error["type"] == "insufficient_quota" and error["code"] == "insufficient_quota"
    tomorrow = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() + 86400))
    assert error["message"] == (
        f"Gateway key 'crm-tool' has spent $5.00 of its $4.00 daily budget; it resets at {tomorrow}."
    )
    headers = refused.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert 0 < int(headers["retry-after"]) <= 86400
    assert lines(gateway, 2)[-1]["outcome"] == "over_limit"
    # Another key is unaffected.
    assert client(gateway, OTHER).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


def test_parallel_requests_cannot_overspend_together_their_cost_is_reserved(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, budget={"daily_usd": 10.0}))
    gates = [threading.Event(), threading.Event()]
    fakes["openai"].script(*(Reply(gate=gate) for gate in gates))
    ask = lambda: client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=6)  # noqa: E731
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(ask), pool.submit(ask)]  # each reserves $6: the first $6, then $12 in all
        wait_for(lambda: fakes["openai"].calls() == 2, what="both requests upstream")
        with pytest.raises(openai.RateLimitError) as refused:
            ask()
        assert "has spent $0.00 of its $10.00 daily budget" in refused.value.body["message"]
        assert "($12.00 more is reserved by its requests in flight)" in refused.value.body["message"]
        for gate in gates:
            gate.set()
        assert all(f.result().choices for f in held)
    lines(gateway, 3)
    with pytest.raises(openai.RateLimitError) as spent:  # settled to the real cost: $5 each
        ask()
    assert "has spent $10.00 of its $10.00 daily budget" in spent.value.body["message"]
    assert fakes["openai"].calls() == 2


def test_a_provider_whose_spend_cap_is_reached_is_skipped_and_the_chain_fails_over(fakes, start_gateway):
    config = keyed_config(fakes)
    config["providers"][0]["budget"] = {"monthly_usd": 3.0}
    gateway = start_gateway(config)
    first = client(gateway).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert first.headers["x-gateway-provider"] == "openai"  # $5: over its $3 cap
    lines(gateway, 1)  # charged once its line is out
    second = client(gateway).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert second.headers["x-gateway-provider"] == "deepseek"
    assert fakes["openai"].calls() == 1
    skipped = lines(gateway, 2)[-1]["skipped"]
    assert skipped[0]["provider"] == "openai" and skipped[0]["reason"] == "budget"
    health = gateway.provider("openai")
    assert health["state"] == "cooldown" and health["reason"] == "budget"
    assert health["detail"] == "spent $5.00 of its $3.00 monthly budget"
    next_month = time.gmtime(time.time())
    year, month = next_month.tm_year + next_month.tm_mon // 12, next_month.tm_mon % 12 + 1
    assert health["until"] == f"{year:04d}-{month:02d}-01T00:00:00Z"


def test_a_provider_over_its_cap_and_alone_is_named_in_the_503(fakes, start_gateway):
    config = keyed_config(fakes, order=("openai",))
    config["providers"][0]["budget"] = {"daily_usd": 1.0}
    gateway = start_gateway(config)
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    lines(gateway, 1)
    with pytest.raises(openai.APIStatusError) as out:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert out.value.status_code == 503
    assert "openai: its spend cap (budget) is reached" in out.value.body["message"]


def within_one_minute() -> int:
    """Limits count per UTC minute: start a scenario with at least 10 s of its minute left, and return it."""
    wait_for(lambda: time.time() % 60 < 50, timeout=15, what="a minute with 10 s left")
    return int(time.time() // 60)


def test_requests_per_minute_are_limited_with_openai_headers(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, rate_limits={"requests_per_minute": 2}))
    minute = within_one_minute()
    for _ in range(2):
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as refused:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert int(time.time() // 60) == minute
    assert fakes["openai"].calls() == 2
    body, headers = refused.value.body, refused.value.response.headers
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "requests"
    assert body["message"].startswith(
        "Rate limit reached for gateway key 'crm-tool' on requests per minute (RPM): Limit 2, Used 2."
    )
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s") and 1 <= int(headers["retry-after"]) <= 60
    assert client(gateway, OTHER).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices


def test_tokens_per_minute_are_limited(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, rate_limits={"tokens_per_minute": 18}))
    minute = within_one_minute()
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # 13 + 5 tokens
    lines(gateway, 1)
    with pytest.raises(openai.RateLimitError) as refused:
        client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert int(time.time() // 60) == minute
    assert refused.value.body["type"] == "tokens"
    assert refused.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_rate_limits_are_shared_by_replicas(fakes, start_gateway, redis_server):
    config = keyed_config(fakes, rate_limits={"requests_per_minute": 3})
    first, second = start_gateway(config, redis_server.url), start_gateway(config, redis_server.url)
    minute = within_one_minute()
    for _ in range(3):
        client(first).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    # The other replica sees the count once it reads the totals back (every 0.1 s).
    wait_for(lambda: second.app.ledger.rate("crm-tool", minute)[0] >= 3, what="the count on the other replica")
    calls = fakes["openai"].calls()
    with pytest.raises(openai.RateLimitError):
        client(second).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert int(time.time() // 60) == minute
    assert fakes["openai"].calls() == calls


def test_two_replicas_share_one_budget_under_parallel_load(fakes, spawn_gateway, redis_server):
    """Spend is shared through Redis (read back every 0.1 s), reservations are per replica: measure the overshoot."""
    config = keyed_config(fakes, budget={"daily_usd": 1.0})
    config["providers"][0]["prices"]["gpt-4o-mini"]["output_per_mtok"] = 5000  # 5 tokens: $0.025 a request
    replicas = [spawn_gateway(config, redis_server.url), spawn_gateway(config, redis_server.url)]
    fakes["openai"].script(*(Reply(delay_s=0.1) for _ in range(120)))  # an answer takes 100 ms, as a short one does
    parallel, sent = 8, 120

    def ask(index: int) -> int:
        gateway = replicas[index % 2]
        try:
            client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
            return 200
        except openai.RateLimitError as exc:
            assert exc.body["code"] == "insufficient_quota"
            return 429

    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        statuses = list(pool.map(ask, range(sent)))
    served = statuses.count(200)
    day = time.strftime("d%Y%m%d", time.gmtime())
    store = redis.Redis.from_url(redis_server.url)
    # Every replica flushes within 0.1 s: wait until Redis holds all that was served.
    expected = served * 25_000_000
    wait_for(lambda: int(store.hget(f"{{gateway}}:spend:{day}", "key:crm-tool") or 0) == expected, what="spend")
    overshoot = served - 40
    assert 40 <= served < 60  # the budget was reached, and far from twice over (each replica on its own)
    assert statuses.count(429) == sent - served
    for gateway in replicas:
        with pytest.raises(openai.RateLimitError):
            client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
    figure(
        f"shared budget: 2 replicas, {parallel} parallel clients, $0.025 requests of 100 ms, a $1.00 budget: "
        f"{served} served, ${served * 0.025:.3f} spent, overshoot {overshoot} requests (${overshoot * 0.025:.3f})"
    )


def test_a_provider_cap_raised_by_a_reload_serves_again(fakes, start_gateway, tmp_path):
    config = keyed_config(fakes)
    config["providers"][0]["budget"] = {"daily_usd": 3.0}
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = start_gateway(config, admin_key=ADMIN, config_path=path)
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # $5: over its $3 cap
    lines(gateway, 1)
    assert gateway.provider("openai")["reason"] == "budget"
    config["providers"][0]["budget"] = {"daily_usd": 50.0}
    path.write_text(yaml.safe_dump(config))
    assert httpx.post(f"{gateway.url}/admin/reload", headers=AUTH, timeout=10).status_code == 200
    assert gateway.provider("openai")["state"] == "available"
    served = client(gateway).chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert served.headers["x-gateway-provider"] == "openai"


def test_n_choices_reserve_n_completions(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, budget={"daily_usd": 10.0}))
    gates = [threading.Event(), threading.Event()]
    fakes["openai"].script(*(Reply(gate=gate) for gate in gates))
    ask = lambda: client(gateway).chat.completions.create(  # noqa: E731
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=3, n=2
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(ask), pool.submit(ask)]  # 2 x 3 tokens at $1: $6 each, $12 in all
        wait_for(lambda: fakes["openai"].calls() == 2, what="both requests upstream")
        with pytest.raises(openai.RateLimitError) as refused:
            ask()
        for gate in gates:
            gate.set()
        assert all(f.result().choices for f in held)
    assert "($12.00 more is reserved by its requests in flight)" in refused.value.body["message"]


def test_model_names_nobody_serves_are_not_kept(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes, budget={"daily_usd": 10.0}))
    for index in range(20):
        with pytest.raises(openai.NotFoundError):
            client(gateway).chat.completions.create(model=f"no-such-model-{index}" * 50, messages=MESSAGES)
    client(gateway).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    # What admission remembers per model (the dearest price to reserve at): configured models only.
    assert {model for _, model in gateway.app.meter._dearest} == {"gpt-4o-mini"}
