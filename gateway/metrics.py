"""Prometheus metrics, one registry per gateway. The only module that uses prometheus-client.

The request path only adds to plain dicts keyed by label tuples (no locks, no label lookups:
prometheus-client's own counters cost a lock per increment, which showed in profiles). Every
update and every scrape runs on the event loop, so nothing here needs a lock. A collector turns
the dicts into Prometheus families when /metrics is scraped, and reads provider state from the
router at that moment (`gateway.status`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.status import State

if TYPE_CHECKING:
    from gateway.status import ProviderStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Upstream answers run from milliseconds (a cached error) to minutes (a long completion).
_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _Histogram:
    __slots__ = ("counts", "sums")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = defaultdict(float)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(_BUCKETS) + 1)
        counts[bisect_left(_BUCKETS, value)] += 1  # le is inclusive: a value equal to a bound counts in it
        self.sums[labels] += value

    def family(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for key, counts in self.counts.items():
            cumulative, buckets = 0, []
            for bound, count in zip([*map(str, _BUCKETS), "+Inf"], counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric(list(key), buckets, self.sums[key])
        return family


def _counter(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in values.items():
        family.add_metric(list(key), value)
    return family


class Metrics(Collector):
    def __init__(self, statuses: Callable[[], list[ProviderStatus]]) -> None:
        self._statuses = statuses
        self.requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.failovers: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.skips: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.cooldowns: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        # What was charged, by provider and client-facing model (gateway.accounting.meter).
        self.charged_tokens: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.cost_usd: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.unpriced: defaultdict[tuple[str, str], int] = defaultdict(int)
        # (scope, name, period, USD left) of every budget, read at the scrape.
        self.budgets: Callable[[], list[tuple[str, str, str, float]]] = list
        self.attempts = _Histogram()
        self.first_chunks = _Histogram()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- the request path: one dict update each ---------------------------------------------------

    def request(self, endpoint: str, provider: str, outcome: str) -> None:
        self.requests[endpoint, provider, outcome] += 1

    def failover(self, provider: str, reason: str) -> None:
        self.failovers[provider, reason] += 1

    def skipped(self, provider: str, reason: str) -> None:
        self.skips[provider, reason] += 1

    def cooldown(self, provider: str, reason: str) -> None:
        self.cooldowns[provider, reason] += 1

    def attempt(self, provider: str, ok: bool, seconds: float) -> None:
        self.attempts.observe((provider, "ok" if ok else "failed"), seconds)

    def first_chunk(self, provider: str, seconds: float) -> None:
        self.first_chunks.observe((provider,), seconds)

    def tokens_used(self, provider: str, prompt: int, completion: int) -> None:
        if prompt:
            self.tokens[provider, "prompt"] += prompt
        if completion:
            self.tokens[provider, "completion"] += completion

    def charged(self, provider: str, model: str, tokens: tuple[int, int], cost_nano: int | None, unpriced: int) -> None:
        """What a batch of usage charged (the ledger's, every 0.1 s: not once a request). `cost_nano`
        is None when none of it was priced: no cost is shown then, rather than $0."""
        self.charged_tokens[provider, model, "input"] += tokens[0]
        self.charged_tokens[provider, model, "output"] += tokens[1]
        if cost_nano is not None:
            self.cost_usd[provider, model] += cost_nano / 1e9
        if unpriced:
            self.unpriced[provider, model] += unpriced

    # -- the scrape ----------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield _counter(
            "gateway_requests", "Client requests by endpoint, serving provider and outcome",
            ["endpoint", "provider", "outcome"], self.requests,
        )  # fmt: skip
        yield _counter(
            "gateway_failovers", "Attempts that failed and moved on to the next provider, by failure class",
            ["provider", "reason"], self.failovers,
        )  # fmt: skip
        yield _counter(
            "gateway_provider_skips", "Providers passed over without an attempt (benched, probing, no key)",
            ["provider", "reason"], self.skips,
        )  # fmt: skip
        yield _counter("gateway_cooldowns", "Cooldowns set, by reason", ["provider", "reason"], self.cooldowns)
        yield _counter("gateway_tokens", "Tokens reported by providers", ["provider", "type"], self.tokens)
        yield _counter(
            "gateway_usage_tokens", "Tokens charged, by serving provider and client-facing model",
            ["provider", "model", "type"], self.charged_tokens,
        )  # fmt: skip
        yield _counter(
            "gateway_cost_usd", "Cost charged in USD, by serving provider and client-facing model (priced requests)",
            ["provider", "model"], self.cost_usd,
        )  # fmt: skip
        yield _counter(
            "gateway_unpriced_requests", "Requests served by a model without a price: cost unknown, not $0",
            ["provider", "model"], self.unpriced,
        )  # fmt: skip
        budget = GaugeMetricFamily(
            "gateway_budget_remaining_usd", "USD left in a budget this period", labels=["scope", "name", "period"]
        )
        for scope, name, period, left in self.budgets():
            budget.add_metric([scope, name, period], left)
        yield budget
        yield self.attempts.family(
            "gateway_upstream_duration_seconds",
            "One upstream attempt: to the whole answer, or for a stream to its first event",
            ["provider", "outcome"],
        )
        yield self.first_chunks.family(
            "gateway_time_to_first_chunk_seconds",
            "From the client's request to the first streamed chunk sent",
            ["provider"],
        )
        state = GaugeMetricFamily(
            "gateway_provider_state", "1 for the provider's current state, else 0", labels=["provider", "state"]
        )
        remaining = GaugeMetricFamily(
            "gateway_provider_cooldown_remaining_seconds",
            "Seconds until the provider's cooldown ends (0 when not benched)",
            labels=["provider", "reason"],
        )
        for status in self._statuses():
            for name in State:
                state.add_metric([status.name, name.value], 1.0 if status.state is name else 0.0)
            remaining.add_metric([status.name, status.reason or ""], status.remaining_s or 0.0)
        yield state
        yield remaining

    def render(self) -> bytes:
        return generate_latest(self.registry)
