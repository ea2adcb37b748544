"""Who spent what, read through OpenAI's own usage API shapes by the official SDK: across restarts and Redis trouble."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import signal
import time

import openai
import pytest

from tests.conftest import ADMIN, MESSAGES, config_dict, wait_for
from tests.fakes import error

KEY = "sk-gw-test-crm-0123456789"


def reader(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", admin_api_key=key, api_key="unused", max_retries=0)


def admin(gateway) -> openai.OpenAI:
    return reader(gateway, ADMIN)


def requests_by(gateway, *group_by: str, **query) -> dict[tuple, int]:
    """num_model_requests of today's chat usage, by the group_by fields (OpenAI's names)."""
    today = int(time.time() // 86400 * 86400)
    page = admin(gateway).admin.organization.usage.completions(start_time=today, group_by=list(group_by), **query)
    found: dict[tuple, int] = {}
    for bucket in page.data:
        for result in bucket.results:
            group = tuple(getattr(result, field) for field in group_by)
            found[group] = found.get(group, 0) + result.num_model_requests
    return found


def ask(gateway, count: int, key: str | None = None, **extra) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key or "client-token", max_retries=0)
    for _ in range(count):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def test_who_spent_what_on_which_model_by_key_project_and_user(fakes, start_gateway):
    digest = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
    config = config_dict(fakes, client_keys=[{"name": "crm-tool", "key": digest, "project": "crm"}])
    gateway = start_gateway(config, admin_key=ADMIN)
    ask(gateway, 2, KEY, user="alice")
    fakes["openai"].script(error("openai-429-insufficient-quota"))  # openai out: groq serves the third
    ask(gateway, 1, KEY)
    wait_for(lambda: sum(requests_by(gateway).values()) == 3, what="three requests in usage")
    by = requests_by(gateway, "api_key_id", "project_id", "user_id", "model", "provider")
    assert by == {
        ("crm-tool", "crm", "alice", "gpt-4o-mini", "openai"): 2,
        ("crm-tool", "crm", None, "gpt-4o-mini", "groq"): 1,
    }
    today = int(time.time() // 86400 * 86400)
    costs = admin(gateway).admin.organization.usage.costs(start_time=today, group_by=["line_item"])
    results = [r for bucket in costs.data for r in bucket.results]
    priced = {r.line_item: r.amount.value for r in results if r.amount is not None}
    # gpt-4o-mini on openai: 13 in and 5 out, twice; groq's llama-3.1-8b-instant has no price.
    assert priced == {"openai/gpt-4o-mini, input": 2 * 13 * 0.15e-6, "openai/gpt-4o-mini, output": 2 * 5 * 0.6e-6}
    [unpriced] = [r for r in results if r.amount is None]
    assert unpriced.to_dict()["unpriced"] is True and unpriced.to_dict()["quantity"] == 55 + 11
    assert unpriced.line_item.startswith("groq/llama-3.1-8b-instant, unpriced")
    # The key reads its own usage; anyone else is refused.
    assert reader(gateway, KEY).admin.organization.usage.completions(start_time=today).data
    with pytest.raises(openai.AuthenticationError):
        reader(gateway, "sk-nobody").admin.organization.usage.completions(start_time=today)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_usage_survives_a_gateway_restart(fakes, spawn_gateway, redis_server, tmp_path, store):
    config = config_dict(fakes)
    redis_url = redis_server.url if store == "redis" else None
    if store == "sqlite":
        config["usage"] = {"path": str(tmp_path / "usage.sqlite3")}
    first = spawn_gateway(config, redis_url, ADMIN)
    ask(first, 3)
    first.stop()  # a clean stop flushes what is left
    second = spawn_gateway(config, redis_url, ADMIN)
    assert requests_by(second) == {(): 3}
    ask(second, 1)
    wait_for(lambda: requests_by(second) == {(): 4}, what="the fourth request in usage")


def test_a_redis_outage_loses_no_counts_and_counts_none_twice(fakes, start_gateway, redis_server):
    gateway = start_gateway(config_dict(fakes), redis_server.url, ADMIN)
    ask(gateway, 2)
    wait_for(lambda: requests_by(gateway) == {(): 2}, what="two requests in usage")
    os.kill(redis_server.proc.pid, signal.SIGSTOP)  # Redis hangs: every call of ours times out
    try:
        ask(gateway, 3)  # served all the same
        with pytest.raises(openai.APIStatusError) as down:
            requests_by(gateway)
        assert down.value.status_code == 503  # unknown now, not "nothing spent"
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    wait_for(lambda: _readable(gateway) == {(): 5}, timeout=30, what="the outage's requests flushed")
    ask(gateway, 1)
    wait_for(lambda: requests_by(gateway) == {(): 6}, what="one more, counted once")


def _readable(gateway) -> dict[tuple, int] | None:
    try:
        return requests_by(gateway)
    except openai.APIStatusError:
        return None


def test_end_users_past_a_thousand_a_day_are_counted_together(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("ollama",)), admin_key=ADMIN)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-token", max_retries=0)
    ask = lambda user: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user=user)  # noqa: E731
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(ask, [f"user-{n}" for n in range(1002)]))  # `user` is the client's: unbounded unless bounded
    wait_for(lambda: sum(requests_by(gateway).values()) == 1002, timeout=30, what="every request in usage")
    by_user = requests_by(gateway, "user_id")
    assert len(by_user) == 1001 and by_user[("(other users)",)] == 2
