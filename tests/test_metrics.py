"""Prometheus /metrics: what was served, what failed over and why, who is out, how long it took, tokens."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.client_keys import digest
from tests.conftest import MESSAGES, config_dict, served_by
from tests.fakes import error


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_a_failover_is_counted_by_reason_and_the_bench_shows(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    assert served_by(gateway.client()) == "groq"  # openai is benched now: skipped, not tried
    samples = scrape(gateway.url)
    chat = "/chat/completions"
    assert value(samples, "gateway_requests_total", endpoint=chat, provider="groq", outcome="ok") == 2
    assert value(samples, "gateway_failovers_total", provider="openai", reason="quota_exhausted") == 1
    assert value(samples, "gateway_cooldowns_total", provider="openai", reason="quota_exhausted") == 1
    assert value(samples, "gateway_provider_skips_total", provider="openai", reason="quota_exhausted") == 1
    assert value(samples, "gateway_provider_state", provider="openai", state="cooldown") == 1
    assert value(samples, "gateway_provider_state", provider="openai", state="available") == 0
    assert value(samples, "gateway_provider_state", provider="groq", state="available") == 1
    remaining = "gateway_provider_cooldown_remaining_seconds"
    assert 3500 < value(samples, remaining, provider="openai", reason="quota_exhausted") <= 3600
    duration = "gateway_upstream_duration_seconds_count"
    assert value(samples, duration, provider="openai", outcome="failed") == 1
    assert value(samples, duration, provider="groq", outcome="ok") == 2
    # Groq's canned answer reports 55 prompt and 11 completion tokens.
    assert value(samples, "gateway_tokens_total", provider="groq", type="prompt") == 110
    assert value(samples, "gateway_tokens_total", provider="groq", type="completion") == 22


def test_streams_report_time_to_first_chunk_and_their_usage_chunk(gateway, fakes):
    stream = gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello from openai"
    samples = scrape(gateway.url)
    assert value(samples, "gateway_time_to_first_chunk_seconds_count", provider="openai") == 1
    assert value(samples, "gateway_tokens_total", provider="openai", type="prompt") == 13
    assert value(samples, "gateway_tokens_total", provider="openai", type="completion") == 5


def test_refusals_are_counted_without_a_provider(gateway):
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json", timeout=5)
    assert response.status_code == 400
    samples = scrape(gateway.url)
    refused = {"endpoint": "/chat/completions", "provider": "none", "outcome": "bad_request"}
    assert value(samples, "gateway_requests_total", **refused) == 1


def test_metrics_stay_open_when_gateway_keys_guard_the_api(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, client_keys=[digest("a-client-key")]))
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json={}, timeout=5).status_code == 401
    samples = scrape(gateway.url)
    assert value(samples, "gateway_provider_state", provider="openai", state="available") == 1


def test_metric_names_follow_prometheus_conventions(gateway, fakes):
    served_by(gateway.client())
    response = httpx.get(f"{gateway.url}/metrics", timeout=5)
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("gateway_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")
