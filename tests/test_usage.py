"""What a request is charged: price times tokens from the provider's usage, for the provider that served it.

Real fakes that return known `usage`, the official SDK as the client, the request log line and
/metrics as the readers.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import ADMIN, MESSAGES, config_dict, wait_for
from tests.fakes import Reply


def chat_reply(prompt: int, completion: int, cached: int = 0) -> Reply:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    return Reply(body=json.dumps(body).encode(), headers={"content-type": "application/json"})


def last_line(gateway, count: int = 1) -> dict:
    """The request log's newest line, once `count` lines are out (a line is out once its request is charged)."""
    wait_for(lambda: len(gateway.log_lines()) >= count, what=f"{count} request log lines")
    return gateway.log_lines()[-1]


def metric(gateway, name: str, **labels: str) -> float | None:
    text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    assert wanted is not None
    return None


def test_cost_is_price_times_tokens_to_the_nano_dollar(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    fakes["openai"].script(chat_reply(prompt=1000, completion=500, cached=200))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    line = last_line(gateway)
    # litellm's price file: gpt-4o-mini is $0.15 / $0.60 per 1M tokens, cached input $0.075.
    assert line["cost_usd"] == (800 * 150 + 200 * 75 + 500 * 600) / 1e9 == 0.000435
    assert "estimated" not in line
    # Metrics count the ledger's batches, every 0.1 s.
    wait_for(lambda: metric(gateway, "gateway_cost_usd_total", provider="openai", model="gpt-4o-mini") == 0.000435)
    assert metric(gateway, "gateway_usage_tokens_total", provider="openai", model="gpt-4o-mini", type="input") == 1000


def test_a_model_without_a_price_costs_null_never_zero(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("gemini",)))  # gemini-2.0-flash: not in the price file
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    line = last_line(gateway)
    assert line["provider"] == "gemini" and line["cost_usd"] is None
    wait_for(lambda: metric(gateway, "gateway_unpriced_requests_total", provider="gemini", model="gpt-4o-mini") == 1)
    assert metric(gateway, "gateway_cost_usd_total", provider="gemini", model="gpt-4o-mini") is None  # never $0


def test_a_price_override_wins_over_the_price_file(fakes, start_gateway):
    config = config_dict(fakes, order=("openai",))
    config["providers"][0]["prices"] = {"gpt-4o-mini": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    gateway = start_gateway(config)
    fakes["openai"].script(chat_reply(prompt=1000, completion=500, cached=200))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    # Cached input defaults to the input price when the override does not name one.
    assert last_line(gateway)["cost_usd"] == (1000 * 1000 + 500 * 2000) / 1e9


def test_local_ollama_costs_nothing_unless_priced(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("ollama",)))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert last_line(gateway)["cost_usd"] == 0


def test_a_stream_is_charged_exactly_and_its_client_gets_no_usage_chunk_it_did_not_ask_for(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    chunks = list(gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert fakes["openai"].last().json["stream_options"] == {"include_usage": True}  # asked for the client
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from openai"
    line = last_line(gateway)
    assert line["tokens"] == {"prompt": 13, "completion": 5}
    assert line["cost_usd"] == (13 * 150 + 5 * 600) / 1e9
    assert "estimated" not in line


def test_a_client_that_asks_for_usage_gets_it(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    stream = gateway.client().chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert fakes["openai"].last().json["stream_options"] == {"include_usage": True}


def test_a_stream_cut_before_its_usage_report_is_charged_an_estimate(fakes, start_gateway):
    from tests import payloads

    gateway = start_gateway(config_dict(fakes, order=("openai",)))
    events = payloads.STREAM_OK["openai"]
    fakes["openai"].script(Reply(events=events, stop_after=3, drop_mid_stream=True))
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
        text = b"".join(response.iter_bytes())
    assert b"upstream_stream_error" in text and b"[DONE]" not in text
    line = last_line(gateway)
    assert line["outcome"] == "stream_broken" and line["estimated"] is True
    size = len(json.dumps(body, separators=(",", ":")))
    # Prompt: about 4 bytes of request a token; completion: one token per event relayed (3).
    prompt, completion = size // 4, 3
    assert line["cost_usd"] == (prompt * 150 + completion * 600) / 1e9


def test_embeddings_are_charged_from_their_usage(fakes, start_gateway):
    config = config_dict(fakes, order=("openai",))
    config["providers"][0]["models"]["text-embedding-3-small"] = "text-embedding-3-small"
    gateway = start_gateway(config)
    gateway.client().embeddings.create(model="text-embedding-3-small", input="hi")
    line = last_line(gateway)
    assert line["endpoint"] == "/embeddings" and line["cost_usd"] == 2 * 20 / 1e9  # $0.02 per 1M tokens


def test_failed_attempts_cost_nothing_only_the_serving_provider_is_charged(fakes, start_gateway):
    config = config_dict(fakes, order=("openai", "deepseek"))
    gateway = start_gateway(config)
    fakes["openai"].script(Reply(status=500, body=b'{"error":{"message":"boom","type":"server_error"}}'))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    line = last_line(gateway)
    assert line["provider"] == "deepseek" and [s["provider"] for s in line["skipped"]] == ["openai"]
    # DeepSeek's canned usage: 11 in (of them cached per prompt_cache_hit_tokens), 4 out, at deepseek-chat's price.
    assert line["cost_usd"] is not None and line["cost_usd"] > 0
    wait_for(lambda: metric(gateway, "gateway_cost_usd_total", provider="deepseek", model="gpt-4o-mini"))
    assert metric(gateway, "gateway_cost_usd_total", provider="openai", model="gpt-4o-mini") is None


def test_the_key_and_its_project_are_on_the_log_line(fakes, start_gateway):
    digest = "sha256:" + hashlib.sha256(b"sk-gw-test-crm").hexdigest()
    gateway = start_gateway(config_dict(fakes, client_keys=[{"name": "crm-tool", "key": digest, "project": "crm"}]))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-gw-test-crm", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user="alice")
    line = last_line(gateway)
    assert line["key"] == "crm-tool" and line["project"] == "crm"


def test_a_token_count_past_any_context_window_is_clamped_and_accounting_goes_on(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai",)), admin_key=ADMIN)
    fakes["openai"].script(chat_reply(prompt=2**63, completion=2**64 - 1))  # a provider's bug, or a hostile one
    client = gateway.client()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert gateway.line(1)["cost_usd"] == (2**32 * 150 + 2**32 * 600) / 1e9
    # Both are stored: the first did not stop the store from taking anything after it.
    wait_for(lambda: usage_requests(gateway) == 2, what="both requests in usage")


def test_a_client_that_leaves_before_the_answer_is_charged_an_estimate(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai",)))
    gate = threading.Event()
    fakes["openai"].script(Reply(gate=gate))
    body = {"model": "gpt-4o-mini", "messages": MESSAGES}
    try:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up while openai has the request
            httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=httpx.Timeout(5, read=0.5))
        line = last_line(gateway)
    finally:
        gate.set()
    assert line["outcome"] == "client_gone" and line["provider"] == "openai" and line["estimated"] is True
    size = len(json.dumps(body, separators=(",", ":")))
    assert line["cost_usd"] == size // 4 * 150 / 1e9  # the prompt, from the request's size; nothing relayed


def test_a_usage_chunk_written_with_spaces_is_read_and_stripped(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai",)))
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    content = {**chunk, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
    events = [f"data: {json.dumps(doc)}\n\n".encode() for doc in (content, usage)] + [b"data: [DONE]\n\n"]
    assert b'"usage": {' in events[1]  # json.dumps's own spacing, as some local servers send it
    fakes["openai"].script(Reply(events=events))
    chunks = list(gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["hi"]
    line = last_line(gateway)
    assert line["tokens"] == {"prompt": 7, "completion": 3} and "estimated" not in line


def usage_requests(gateway) -> int:
    today = int(time.time() // 86400 * 86400)
    answer = httpx.get(
        f"{gateway.url}/v1/organization/usage/completions",
        params={"start_time": today},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=5,
    ).json()
    return sum(r["num_model_requests"] for bucket in answer["data"] for r in bucket["results"])


def test_a_local_model_named_like_a_cloud_one_costs_nothing(fakes, start_gateway):
    config = config_dict(fakes, order=("ollama",))
    config["providers"][0]["models"]["gpt-4o-mini"] = "gpt-4o-mini"  # its own model of that name
    gateway = start_gateway(config)
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert last_line(gateway)["cost_usd"] == 0
