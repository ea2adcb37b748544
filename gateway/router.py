"""The failover loop: try each provider that can serve the model, in order; the next provider is the retry.

A failure is recorded (and, by its class, benches the provider or just this model) and the next
provider is tried at once, with no sleep. When none is left, one aggregate error says, for each
provider, what is wrong and for how long.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson

from gateway.cooldown import Cooldown, LocalStore
from gateway.errors import Failure, FailureClass, ProviderFailed
from gateway.providers import DIALECTS
from gateway.retry import retry_reset
from gateway.settings import Config
from gateway.upstream import Provider

T = TypeVar("T")
MISSING_KEY = "missing_key"


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

    def describe(self, model: str) -> str:
        name = self.provider.name
        wait = f", retry in {math.ceil(self.remaining_s)} s" if self.remaining_s else ""
        env = self.provider.config.api_key_env
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
    def __init__(self, config: Config, store: LocalStore, upstream: Any) -> None:
        self.config = config
        self.store = store
        self.upstream = upstream
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

    def models(self) -> list[str]:
        return list(dict.fromkeys(m for p in self.providers for m in p.config.models))

    async def complete(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[Provider, bytes]:
        return await self._route(endpoint, body, self.upstream.complete)

    async def stream(self, body: dict[str, Any]) -> tuple[Provider, Any]:
        return await self._route(Endpoint.CHAT, body, self.upstream.stream)

    async def _route(
        self, endpoint: Endpoint, body: dict[str, Any], call: Callable[[Provider, str, bytes], Awaitable[T]]
    ) -> tuple[Provider, T]:
        model = body["model"]
        chain = self._chains.get((endpoint, model))
        if not chain:
            raise UnknownModel(model)
        now = time.time()
        skips: list[Skip] = []
        ready: list[Provider] = []
        for provider in chain:
            skip = self._unavailable(provider, model, now)
            if skip is None:
                ready.append(provider)
            else:
                skips.append(skip)
        last = len(ready) - 1
        for index, provider in enumerate(ready):
            body["model"] = provider.config.models[model]
            attempt = partial(call, provider, endpoint.value, orjson.dumps(body))
            try:
                result = await (retry_reset(attempt) if index == last else attempt())
            except ProviderFailed as exc:
                skips.append(self.record_failure(provider, model, exc.failure))
                continue
            if self._streak or self._ejections:
                self.record_success(provider)
            return provider, result
        raise NoProviderAvailable(model, skips)

    def _unavailable(self, provider: Provider, model: str, now: float) -> Skip | None:
        if provider.key is None:
            return Skip(provider, MISSING_KEY)
        cooldown = self.store.get(provider.name, now) or self.store.get(f"{provider.name}/{model}", now)
        if cooldown is None:
            return None
        return Skip(provider, cooldown.reason, cooldown.remaining(now))

    def record_success(self, provider: Provider) -> None:
        self._streak.pop(provider.name, None)
        self._ejections.pop(provider.name, None)

    def record_failure(self, provider: Provider, model: str, failure: Failure) -> Skip:
        """Bench the provider (or just this model) as the failure's class says, and say why it was skipped."""
        key = f"{provider.name}/{model}" if failure.kind is FailureClass.MODEL_NOT_FOUND else provider.name
        now = time.time()
        current = self.store.get(key, now)
        seconds = None if provider.config.last_resort else self._cooldown_s(provider, failure, current is not None)
        if seconds and (current is None or now + seconds > current.until):
            self.store.set(key, Cooldown(failure.kind.value, failure.detail, now, now + seconds))
        elif current is not None:
            # A late answer from a request already in flight never shortens a longer bench.
            seconds = current.remaining(now)
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
