"""Prometheus metrics, one registry per gateway. The only module that uses prometheus-client.

Counters and histograms are updated on the request path, through labelled children cached on
first use (a label lookup costs more than the increment). Provider state is not updated on the
request path at all: a collector reads it from the router when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("available", "recovering", "cooldown", "misconfigured")
# Upstream answers run from milliseconds (a cached error) to minutes (a long completion).
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _ProviderState(Collector):
    def __init__(self, health: Callable[[], list[dict[str, Any]]]) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = GaugeMetricFamily(
            "gateway_provider_state", "1 for the provider's current state, else 0", labels=["provider", "state"]
        )
        remaining = GaugeMetricFamily(
            "gateway_provider_cooldown_remaining_seconds",
            "Seconds until the provider's cooldown ends (0 when not benched)",
            labels=["provider", "reason"],
        )
        for entry in self._health():
            for name in STATES:
                state.add_metric([entry["name"], name], 1.0 if entry["state"] == name else 0.0)
            remaining.add_metric([entry["name"], entry["reason"] or ""], entry["cooldown_remaining_s"] or 0.0)
        yield state
        yield remaining


class Metrics:
    def __init__(self, health: Callable[[], list[dict[str, Any]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._requests = Counter(
            "gateway_requests", "Client requests by endpoint, serving provider and outcome",
            ["endpoint", "provider", "outcome"], registry=r,
        )  # fmt: skip
        self._failovers = Counter(
            "gateway_failovers", "Attempts that failed and moved on to the next provider, by failure class",
            ["provider", "reason"], registry=r,
        )  # fmt: skip
        self._skips = Counter(
            "gateway_provider_skips", "Providers passed over without an attempt (benched, probing, no key)",
            ["provider", "reason"], registry=r,
        )  # fmt: skip
        self._cooldowns = Counter("gateway_cooldowns", "Cooldowns set, by reason", ["provider", "reason"], registry=r)
        self._attempts = Histogram(
            "gateway_upstream_duration_seconds",
            "One upstream attempt: to the whole answer, or for a stream to its first event",
            ["provider", "outcome"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._first_chunk = Histogram(
            "gateway_time_to_first_chunk_seconds", "From the client's request to the first streamed chunk sent",
            ["provider"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._tokens = Counter("gateway_tokens", "Tokens reported by providers", ["provider", "type"], registry=r)
        r.register(_ProviderState(health))
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, endpoint: str, provider: str, outcome: str) -> None:
        self._child(self._requests, endpoint, provider, outcome).inc()

    def failover(self, provider: str, reason: str) -> None:
        self._child(self._failovers, provider, reason).inc()

    def skipped(self, provider: str, reason: str) -> None:
        self._child(self._skips, provider, reason).inc()

    def cooldown(self, provider: str, reason: str) -> None:
        self._child(self._cooldowns, provider, reason).inc()

    def attempt(self, provider: str, ok: bool, seconds: float) -> None:
        self._child(self._attempts, provider, "ok" if ok else "failed").observe(seconds)

    def first_chunk(self, provider: str, seconds: float) -> None:
        self._child(self._first_chunk, provider).observe(seconds)

    def tokens(self, provider: str, prompt: int, completion: int) -> None:
        if prompt:
            self._child(self._tokens, provider, "prompt").inc(prompt)
        if completion:
            self._child(self._tokens, provider, "completion").inc(completion)

    def render(self) -> bytes:
        return generate_latest(self.registry)
