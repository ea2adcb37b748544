"""The dashboard's JSON (`/v1/dashboard/*`): traffic, failovers and keys as recorded, for the admin or one key.

Against real fakes, through the gateway's own HTTP; with Redis, two gateways sharing it are one view.
"""

from __future__ import annotations

import hashlib
import time

import httpx
import openai
import pytest

from tests.conftest import ADMIN, MESSAGES, config_dict, wait_for
from tests.fakes import Reply, error

CRM_KEY, OPS_KEY = "sk-gw-crm-0123456789", "sk-gw-ops-0123456789"


def keyed_config(fakes, **sections):
    keys = [
        {"name": "crm", "key": _digest(CRM_KEY), "project": "sales", "budget": {"daily_usd": 5}},
        {"name": "ops", "key": _digest(OPS_KEY), "rate_limits": {"requests_per_minute": 100}},
    ]
    return config_dict(fakes, client_keys=keys, **sections)


def _digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def get(gateway, path: str, key: str = ADMIN) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/dashboard/{path}", headers={"authorization": f"Bearer {key}"}, timeout=5)


def chat(gateway, key: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def this_minute(gateway, key: str = ADMIN) -> dict:
    """The traffic of the minutes that saw any, added up (a test may cross a minute)."""
    data = get(gateway, "traffic", key).json()["data"]
    total: dict = {"served": {}, "failovers": 0, "errors": 0}
    for minute in data:
        for name, count in minute["served"].items():
            total["served"][name] = total["served"].get(name, 0) + count
        total["failovers"] += minute["failovers"]
        total["errors"] += minute["errors"]
    return total


def test_who_is_signed_in(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes), admin_key=ADMIN)
    assert get(gateway, "session").json() == {"role": "admin"}
    assert get(gateway, "session", CRM_KEY).json() == {"role": "key", "key": "crm", "project": "sales"}
    refused = get(gateway, "session", "sk-wrong")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


def test_traffic_failovers_and_errors_by_minute_and_who_sees_what(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes), admin_key=ADMIN)
    chat(gateway, CRM_KEY)
    chat(gateway, CRM_KEY)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    chat(gateway, OPS_KEY)  # openai out of credits: groq serves, a failover
    for name in ("groq", "gemini", "deepseek", "ollama"):  # then nobody can: an error
        fakes[name].script(Reply(status=500, body=b'{"error":{"message":"down"}}'))
    with pytest.raises(openai.APIStatusError):
        chat(gateway, OPS_KEY)
    expected = {"served": {"openai": 2, "groq": 1}, "failovers": 1, "errors": 1}  # failovers: served ones
    wait_for(lambda: this_minute(gateway) == expected, what="the traffic recorded")
    answer = get(gateway, "traffic").json()
    assert answer["providers"] == ["openai", "groq", "gemini", "deepseek", "ollama"]
    assert len(answer["data"]) == 60 and answer["data"][-1]["start_time"] == int(time.time()) // 60 * 60
    assert this_minute(gateway, CRM_KEY) == {"served": {"openai": 2}, "failovers": 0, "errors": 0}
    # The last request failed over too (openai benched) and was not served.
    failovers = get(gateway, "failovers").json()["data"]
    assert [(f["key"], f["provider"], f["status"]) for f in failovers] == [("ops", None, 503), ("ops", "groq", 200)]
    assert [(s["provider"], s["reason"]) for s in failovers[1]["skipped"]] == [("openai", "quota_exhausted")]
    reasons = [(s["provider"], s["reason"]) for s in failovers[0]["skipped"]]
    down = [(name, "transient") for name in ("groq", "gemini", "deepseek", "ollama")]
    assert reasons == [("openai", "quota_exhausted"), *down]
    assert get(gateway, "failovers", CRM_KEY).json() == {"data": []}
    # Requests nobody served are not usage: the usage API counts the three served.
    today = int(time.time()) // 86400 * 86400
    usage = httpx.get(
        f"{gateway.url}/v1/organization/usage/completions",
        params={"start_time": today, "group_by": "provider"},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=5,
    ).json()
    served = {r["provider"]: r["num_model_requests"] for b in usage["data"] for r in b["results"]}
    assert served == {"openai": 2, "groq": 1}


def test_keys_spend_against_budgets_and_this_minutes_use(fakes, start_gateway):
    gateway = start_gateway(keyed_config(fakes), admin_key=ADMIN)
    for _ in range(3):
        chat(gateway, CRM_KEY)
    chat(gateway, OPS_KEY)
    cost = 13 * 0.15e-6 + 5 * 0.6e-6  # gpt-4o-mini on openai: 13 in, 5 out

    def by_name(key: str = ADMIN) -> dict:
        return {entry["name"]: entry for entry in get(gateway, "keys", key).json()["data"]}

    def recorded() -> dict | None:  # the day and the minute are two reads: a flush may land between them
        keys = by_name()
        done = keys["ops"]["spent_usd"]["day"] > 0.5 * cost and keys["crm"]["spent_usd"]["day"] > 2.5 * cost
        return keys if done else None

    keys = wait_for(recorded, what="the keys' usage")
    crm = keys["crm"]
    assert crm["project"] == "sales" and crm["budget"] == {"daily_usd": 5.0, "monthly_usd": None}
    assert crm["spent_usd"]["day"] == pytest.approx(3 * cost) and crm["spent_usd"]["month"] >= crm["spent_usd"]["day"]
    assert crm["rate_limits"] is None and crm["this_minute"]["requests"] <= 3  # fewer if the minute turned
    assert crm["this_minute"]["tokens"] == 18 * crm["this_minute"]["requests"]
    assert keys["ops"]["rate_limits"] == {"requests_per_minute": 100, "tokens_per_minute": None}
    assert list(by_name(CRM_KEY)) == ["crm"]  # a key sees its own entry only


def test_with_redis_every_replica_is_counted(fakes, start_gateway, redis_server):
    config = keyed_config(fakes)
    first = start_gateway(config, redis_server.url, ADMIN)
    second = start_gateway(config, redis_server.url, ADMIN)
    chat(first, CRM_KEY)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    chat(second, CRM_KEY)
    expected = {"served": {"openai": 1, "groq": 1}, "failovers": 1, "errors": 0}
    for gateway in (first, second):
        wait_for(lambda gateway=gateway: this_minute(gateway) == expected, what="both replicas' traffic")
        failovers = get(gateway, "failovers").json()["data"]
        assert [f["provider"] for f in failovers] == ["groq"]


def test_a_later_provider_without_a_key_makes_no_failover(fakes, start_gateway, monkeypatch):
    config = keyed_config(fakes)
    monkeypatch.delenv(config["providers"][3]["api_key_env"])  # deepseek: listed in every request's skips
    gateway = start_gateway(config, admin_key=ADMIN)
    chat(gateway, CRM_KEY)
    assert gateway.line(1)["skipped"] == [{"provider": "deepseek", "reason": "missing_key", "status": None,
                                           "cooldown_s": None}]  # fmt: skip
    wait_for(lambda: this_minute(gateway)["served"] == {"openai": 1}, what="the request recorded")
    assert this_minute(gateway)["failovers"] == 0 and get(gateway, "failovers").json() == {"data": []}
