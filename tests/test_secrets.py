"""Provider keys never leave for anywhere but their own provider: a canary scan of everything a run produced.

A gateway process with Redis and the admin API serves a mix of requests (answers, a stream, a
failover, a rejected key, a caller fault, a 503) while the fakes echo the canary keys back in their
error messages, as OpenAI does with a rejected key. Then every response, the health, metrics and
admin views, every Redis key and value, and the process's whole output are searched for the keys.
"""

from __future__ import annotations

import json

import httpx
import redis

from tests.conftest import ADMIN, AUTH, KEY_ENV, KEYS, config_dict, wait_for
from tests.fakes import Reply

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def echoing(status: int, flavor: str, kind: str) -> Reply:
    message = f"Incorrect API key provided: {KEYS[flavor]}. You can find your API key in your settings."
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": None}})
    return Reply(status=status, body=body.encode(), headers={"content-type": "application/json"})


def redis_dump(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts = []
    for key in client.keys("*"):
        kind = client.type(key).decode()
        value = client.get(key) if kind == "string" else sorted(client.smembers(key)) if kind == "set" else kind
        parts.append(f"{key!r}={value!r}")
    assert parts, "the run left nothing in redis: the scan would prove nothing"
    return "\n".join(parts)


def test_no_provider_key_appears_in_responses_logs_metrics_or_redis(fakes, spawn_gateway, redis_server):
    gateway = spawn_gateway(config_dict(fakes), redis_server.url, admin_key=ADMIN)
    url = f"{gateway.url}/v1/chat/completions"
    seen: list[str] = []

    def post(body: dict, **kwargs) -> httpx.Response:
        response = httpx.post(url, json=body, timeout=10, **kwargs)
        seen.append(f"{response.status_code} {response.headers} {response.text}")
        return response

    assert post(CHAT).headers["x-gateway-provider"] == "openai"
    assert "data: [DONE]" in post({**CHAT, "stream": True}).text
    fakes["openai"].script(echoing(401, "openai", "invalid_request_error"))  # rejected key: benched, failed over
    assert post(CHAT).headers["x-gateway-provider"] == "groq"
    fakes["groq"].script(echoing(400, "groq", "invalid_request_error"))  # a caller fault: relayed to the client
    relayed = post(CHAT)
    assert relayed.status_code == 400 and "[redacted]" in relayed.text
    for flavor in ("groq", "gemini", "deepseek", "ollama"):
        fakes[flavor].script(Reply(status=500, body=b'{"error":{"message":"boom"}}'))
    assert post(CHAT).status_code == 503
    for path in ("/health", "/metrics", "/v1/models"):
        seen.append(httpx.get(f"{gateway.url}{path}", timeout=5).text)
    seen.append(httpx.get(f"{gateway.url}/admin/cooldowns", headers=AUTH, timeout=5).text)
    seen.append(redis_dump(redis_server.url))
    gateway.stop()
    output = "".join(gateway.output)
    assert output.count('"event":"request"') == 5  # the logs were there to scan
    seen.append(output)

    everything = "\n".join(seen)
    assert "invalid_api_key" in everything or "auth" in everything  # the failures themselves were recorded
    for key in KEYS.values():
        assert key not in everything
        assert key[-16:] not in everything  # not even the tail of one


def test_a_key_of_no_known_shape_echoed_anywhere_in_an_error_is_redacted(fakes, start_gateway, monkeypatch):
    plain = "plain-secret-value-4711"  # no sk-/gsk_/AIza prefix: the generic redaction cannot spot it
    monkeypatch.setenv(KEY_ENV["deepseek"], plain)
    gateway = start_gateway(config_dict(fakes, ("deepseek", "ollama")))
    rejected = {"error": {"message": "bad request", "type": "invalid_request_error", "param": plain, "code": None}}
    fakes["deepseek"].script(Reply(status=400, body=json.dumps(rejected).encode()))
    relayed = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert relayed.status_code == 400 and relayed.json()["error"]["param"] == "[redacted]"
    # An error under a 200 fails over; its words reach the 503 and the health report.
    fakes["deepseek"].script(Reply(body=json.dumps({"error": {"message": f"key {plain} is broken"}}).encode()))
    fakes["ollama"].script(Reply(status=500, body=b'{"error":{"message":"boom"}}'))
    failed = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert failed.status_code == 503
    wait_for(lambda: len(gateway.log_lines()) == 2, what="both log lines")
    everything = f"{relayed.text}{failed.text}{httpx.get(f'{gateway.url}/health').text}{gateway.log}"
    assert plain not in everything
