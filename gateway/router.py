"""The failover loop: try each provider that can serve the model, in order; the next provider is the retry.

A failure is recorded (and, by its class, benches the provider or just this model) and the next
provider is tried at once, with no sleep. When none is left, one aggregate error says, for each
provider, what is wrong and for how long.

Recovery: a quota or circuit-breaker cooldown ends in a recovering state, not at once in full
traffic. The first request to reach the provider then (one across all replicas: the store's probe
lock) is the probe; the others go on to the fallbacks. A probe that succeeds brings the provider
back for everyone; one that fails benches it again for twice as long as before.

Pacing: a success whose `x-ratelimit-remaining-*` says 0 benches the provider until the reset,
instead of spending the next request on a certain 429.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson

from gateway import retry_after
from gateway.cooldown import Cooldown, LocalStore
from gateway.errors import Failure, FailureClass, ProviderFailed
from gateway.metrics import Metrics
from gateway.providers import DIALECTS
from gateway.request_log import Trace
from gateway.retry import retry_reset
from gateway.settings import Config
from gateway.upstream import Provider

log = logging.getLogger("gateway.router")
T = TypeVar("T")
MISSING_KEY = "missing_key"
PROBING = "probing"
# Failures whose cooldown ends with a probe: they last until something changes upstream, so
# full traffic should not return on a timer alone.
_PROBED = frozenset({FailureClass.QUOTA, FailureClass.TRANSIENT})
RECOVERY_WINDOW_S = 86400.0  # how long a recovering provider waits for its probe before it is simply back
_MAX_BENCH_S = 86400.0  # failed probes double the bench up to this


class Endpoint(enum.Enum):
    CHAT = "/chat/completions"
    EMBEDDINGS = "/embeddings"


@dataclass(frozen=True, slots=True)
class Skip:
    """Why one provider did not serve a request."""

    provider: Provider
    kind: str  # a FailureClass value, or MISSING_KEY
    remaining_s: float | None = None  # benched for this long; None: not benched
    status: int | None = None
    cause: str = ""  # our own words for a network failure; never provider text
    request_only: bool = False  # the failure belongs to this request (too large), not to the provider
    probing: bool = False  # recovering, and another request is its probe

    def describe(self, model: str) -> str:
        name = self.provider.name
        wait = f", retry in {math.ceil(self.remaining_s)} s" if self.remaining_s else ""
        env = self.provider.config.api_key_env
        if self.probing:
            return f"{name}: recovering from {self.kind}; a probe request is in flight"
        match self.kind:
            case FailureClass.QUOTA:
                return f"{name}: credits exhausted{wait} or add credits"
            case FailureClass.RATE_LIMIT if self.request_only:
                return f"{name}: this request exceeds its per-minute token budget"
            case FailureClass.RATE_LIMIT:
                return f"{name}: rate limited{wait}"
            case FailureClass.AUTH:
                return f"{name}: API key rejected{wait}; check {env}"
            case FailureClass.MODEL_NOT_FOUND:
                upstream_model = self.provider.config.models.get(model, model)
                return f"{name}: has no model '{upstream_model}'{wait}; fix its models map"
            case FailureClass.TRANSIENT if self.remaining_s:
                return f"{name}: failing repeatedly{wait}"
            case FailureClass.TRANSIENT:
                return f"{name}: {f'upstream error (HTTP {self.status})' if self.status else self.cause}"
            case FailureClass.CALLER:
                return f"{name}: rejected the request (HTTP {self.status})"
            case _:
                return f"{name}: no API key; set {env}"


class UnknownModel(Exception):
    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


class NoProviderAvailable(Exception):
    def __init__(self, model: str, skips: list[Skip]) -> None:
        self.model = model
        self.skips = skips
        super().__init__(self.message())

    def message(self) -> str:
        reasons = "; ".join(skip.describe(self.model) for skip in self.skips)
        return f"No provider can serve model '{self.model}' right now. {reasons}."

    def retry_after_s(self) -> int:
        """The soonest a retry can help: the shortest cooldown, or 1 s after failures that benched nothing."""
        waits = [s.remaining_s or 1.0 for s in self.skips if s.kind != MISSING_KEY and not s.request_only]
        return max(1, math.ceil(min(waits))) if waits else 3600

    def request_too_large(self) -> bool:
        """Every provider that was tried refused this request's size, and none is out: retrying cannot help."""
        tried = [s for s in self.skips if s.kind != MISSING_KEY]
        return bool(tried) and all(s.request_only for s in tried)


class Router:
    def __init__(self, config: Config, store: LocalStore, upstream: Any, metrics: Metrics | None = None) -> None:
        self.config = config
        self.store = store
        self.upstream = upstream
        self.metrics = metrics or Metrics(self.health)
        self._probe_lock_s = config.timeouts.total_s + 5  # an attempt's longest life, and a margin
        self.providers = [Provider(p, DIALECTS[p.flavor], config.api_key(p)) for p in config.providers]
        self._chains: dict[tuple[Endpoint, str], list[Provider]] = {}
        # Last-resort providers go after all others, whatever their place in the file.
        for provider in sorted(self.providers, key=lambda p: p.config.last_resort):
            for model in provider.config.models:
                self._chains.setdefault((Endpoint.CHAT, model), []).append(provider)
                if provider.dialect.supports_embeddings:
                    self._chains.setdefault((Endpoint.EMBEDDINGS, model), []).append(provider)
        self._streak: dict[str, int] = {}  # transient failures in a row, per provider
        self._ejections: dict[str, int] = {}  # circuit-breaker openings since the last success

    def adopt(self, previous: Router) -> None:
        """Keep the circuit breaker's counts across a reload, so a flapping provider keeps its doubling."""
        self._streak, self._ejections = previous._streak, previous._ejections

    def models(self) -> list[str]:
        return list(dict.fromkeys(m for p in self.providers for m in p.config.models))

    async def complete(self, endpoint: Endpoint, body: dict[str, Any], trace: Trace) -> tuple[Provider, Any]:
        return await self._route(endpoint, body, self.upstream.complete, trace)

    async def stream(self, body: dict[str, Any], trace: Trace) -> tuple[Provider, Any]:
        return await self._route(Endpoint.CHAT, body, self.upstream.stream, trace)

    async def _route(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        call: Callable[[Provider, str, bytes], Awaitable[T]],
        trace: Trace,
    ) -> tuple[Provider, T]:
        model = body["model"]
        chain = self._chains.get((endpoint, model))
        if not chain:
            raise UnknownModel(model)
        now = time.time()
        skips = trace.skips
        ready: list[tuple[Provider, Cooldown | None]] = []  # with the cooldown it recovers from, if any
        for provider in chain:
            state = self._unavailable(provider, model, now)
            if isinstance(state, Skip):
                skips.append(state)
                self.metrics.skipped(provider.name, state.kind)
            else:
                ready.append((provider, state))
        last = len(ready) - 1
        for index, (provider, recovering) in enumerate(ready):
            if recovering is not None and not await self.store.claim_probe(provider.name, self._probe_lock_s):
                skips.append(Skip(provider, recovering.reason, probing=True))
                self.metrics.skipped(provider.name, PROBING)
                continue
            body["model"] = provider.config.models[model]
            attempt = partial(call, provider, endpoint.value, orjson.dumps(body))
            started = time.perf_counter()
            try:
                result = await (retry_reset(attempt) if index == last else attempt())
            except ProviderFailed as exc:
                self.metrics.attempt(provider.name, False, time.perf_counter() - started)
                self.metrics.failover(provider.name, exc.failure.kind.value)
                skips.append(self.record_failure(provider, model, exc.failure, probe=recovering is not None))
                continue
            except BaseException:
                if recovering is not None:  # the caller's fault or a cancel proves nothing either way
                    self.store.release_probe(provider.name)
                raise
            self.metrics.attempt(provider.name, True, time.perf_counter() - started)
            if recovering is not None:
                trace.probe = True
                self._recovered(provider, recovering)
            elif self._streak or self._ejections:
                self.record_success(provider)
            if (spent := retry_after.exhausted(result.headers)) is not None:
                self._pace(provider, model, *spent)
            return provider, result
        raise NoProviderAvailable(model, skips)

    def _unavailable(self, provider: Provider, model: str, now: float) -> Skip | Cooldown | None:
        """A Skip when the provider cannot take this request; a Cooldown when it is recovering from one."""
        if provider.key is None:
            return Skip(provider, MISSING_KEY)
        cooldown = self.store.get(provider.name, now)
        if cooldown is not None and cooldown.until > now:
            return Skip(provider, cooldown.reason, cooldown.remaining(now))
        per_model = self.store.get(f"{provider.name}/{model}", now)
        if per_model is not None and per_model.until > now:
            return Skip(provider, per_model.reason, per_model.remaining(now))
        return cooldown  # None, or recovering: the request must win the probe first

    def _recovered(self, provider: Provider, cooldown: Cooldown) -> None:
        self.store.clear(provider.name)
        self.store.release_probe(provider.name)
        self.record_success(provider)
        log.warning("%s is back: the probe request after its %s cooldown succeeded", provider.name, cooldown.reason)

    def _pace(self, provider: Provider, model: str, budget: str, reset_s: float | None) -> None:
        detail = f"paced: x-ratelimit-remaining-{budget} is 0"
        self.record_failure(provider, model, Failure(FailureClass.RATE_LIMIT, detail, retry_after_s=reset_s))

    def record_success(self, provider: Provider) -> None:
        self._streak.pop(provider.name, None)
        self._ejections.pop(provider.name, None)

    def record_failure(self, provider: Provider, model: str, failure: Failure, probe: bool = False) -> Skip:
        """Bench the provider (or just this model) as the failure's class says, and say why it was skipped."""
        key = f"{provider.name}/{model}" if failure.kind is FailureClass.MODEL_NOT_FOUND else provider.name
        now = time.time()
        current = self.store.get(key, now)
        benched = current is not None and current.until > now
        seconds = None if provider.config.last_resort else self._cooldown_s(provider, failure, benched)
        if probe and failure.bench and current is not None and not benched:
            # The probe failed: back on the bench, for twice as long as last time.
            doubled = 2 * (current.until - current.since)
            seconds = max(seconds or 0.0, min(doubled, _MAX_BENCH_S))
        if seconds and (current is None or now + seconds > current.until):
            until = now + seconds
            # Only a whole provider recovers through a probe; a model's bench, or a rate limit, just ends.
            probed = key == provider.name and (probe or failure.kind in _PROBED)
            probe_until = until + RECOVERY_WINDOW_S if probed else 0.0
            self.store.set(key, Cooldown(failure.kind.value, failure.detail, now, until, probe_until))
            self.metrics.cooldown(provider.name, failure.kind.value)
            if probe:
                log.warning("%s: the probe failed (%s); benched for %.0f s", provider.name, failure.kind, seconds)
        elif benched:
            # A late answer from a request already in flight never shortens a longer bench.
            seconds = current.remaining(now)
        if probe:
            self.store.release_probe(provider.name)
        cause = failure.detail if failure.status is None else ""
        return Skip(provider, failure.kind.value, seconds, failure.status, cause, request_only=not failure.bench)

    def _cooldown_s(self, provider: Provider, failure: Failure, already_benched: bool) -> float | None:
        limits = self.config.cooldowns
        hint = failure.retry_after_s
        match failure.kind:
            case FailureClass.QUOTA:
                return min(hint, limits.quota_s) if hint and hint > 0 else limits.quota_s
            case FailureClass.RATE_LIMIT if failure.bench:
                # The provider's hint, clamped: at least a second, at most a quota cooldown.
                return min(max(hint if hint is not None else limits.rate_limit_s, 1.0), limits.quota_s)
            case FailureClass.AUTH | FailureClass.MODEL_NOT_FOUND:
                return limits.auth_s
            case FailureClass.TRANSIENT if not already_benched:
                # Failures of requests that were in flight when the breaker opened do not count again.
                streak = self._streak[provider.name] = self._streak.get(provider.name, 0) + 1
                if streak < limits.transient_failures:
                    return None
                self._streak[provider.name] = 0
                ejections = self._ejections[provider.name] = self._ejections.get(provider.name, 0) + 1
                return min(limits.transient_s * 2 ** (ejections - 1), max(limits.quota_s, limits.transient_s))
        return None

    def health(self) -> list[dict[str, Any]]:
        now = time.time()
        active = self.store.active(now)
        report = []
        for provider in self.providers:
            cooldown = active.get(provider.name)
            entry: dict[str, Any] = {"name": provider.name, "flavor": provider.config.flavor}
            if provider.config.last_resort:
                entry["last_resort"] = True
            if provider.key is None:
                entry.update(
                    state="misconfigured",
                    reason=MISSING_KEY,
                    cooldown_remaining_s=None,
                    detail=f"set {provider.config.api_key_env}",
                )
            elif cooldown is not None and cooldown.until <= now:
                entry.update(
                    state="recovering",
                    reason=cooldown.reason,
                    cooldown_remaining_s=0.0,
                    detail="cooldown over; the next request to reach it is the probe",
                )
            elif cooldown is not None:
                state = "misconfigured" if cooldown.reason == FailureClass.AUTH else "cooldown"
                entry.update(
                    state=state,
                    reason=cooldown.reason,
                    cooldown_remaining_s=round(cooldown.remaining(now), 1),
                    until=_iso(cooldown.until),
                    detail=cooldown.detail,
                )
            else:
                entry.update(state="available", reason=None, cooldown_remaining_s=None)
            entry["models"] = {
                model: _model_state(active.get(f"{provider.name}/{model}"), now) for model in provider.config.models
            }
            report.append(entry)
        return report


def _model_state(cooldown: Cooldown | None, now: float) -> dict[str, Any]:
    if cooldown is None:
        return {"state": "available"}
    return {"state": "cooldown", "reason": cooldown.reason, "cooldown_remaining_s": round(cooldown.remaining(now), 1)}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
