"""The failover loop: try each provider that can serve the request, in order; the next provider is the retry.

A failure is recorded (and, by its class, benches the provider or just this model) and the next
provider is tried at once, with no sleep. When none is left, one aggregate error carries, for each
provider, what is wrong and for how long.

Recovery: a quota or circuit-breaker cooldown ends in a recovering state, not at once in full
traffic. The first request to reach the provider then (one across all replicas: the store's probe
lock) is the probe; the others go on to the fallbacks. A probe that succeeds brings the provider
back for everyone; one that fails benches it again for twice as long as before.

The decisions (how long, when the breaker opens, pacing) are in `policy`; this module applies them.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

from gateway.endpoints import ENDPOINTS, Endpoint, Unsuited
from gateway.errors import (
    Attempt,
    AttemptKind,
    CallerFault,
    Failure,
    FailureClass,
    NoProviderAvailable,
    ProviderFailed,
    UnknownModel,
)
from gateway.metrics import Metrics
from gateway.providers import Provider, configure
from gateway.request_log import Trace
from gateway.retry import retry_reset
from gateway.routing import policy
from gateway.settings import Config
from gateway.status import ProviderStatus, statuses
from gateway.store import Cooldown, CooldownStore
from gateway.transport import Answer, Stream, Transports

log = logging.getLogger("gateway.router")


class Router:
    def __init__(self, config: Config, store: CooldownStore, transports: Transports, metrics: Metrics | None = None):
        self.config = config
        self.store = store
        self.metrics = metrics or Metrics(self.statuses)
        self._probe_lock_s = config.timeouts.total_s + 5  # an attempt's longest life, and a margin
        self.providers = configure(config, transports)
        self._chains: dict[tuple[Endpoint, str], list[Provider]] = {}
        # Last-resort providers go after all others, whatever their place in the file.
        for provider in sorted(self.providers, key=lambda p: p.config.last_resort):
            for model in provider.config.models:
                for endpoint in ENDPOINTS:
                    if provider.supports(endpoint.capability):
                        self._chains.setdefault((endpoint, model), []).append(provider)
        self.breaker = policy.Breaker()
        # Providers that could not be reached at all at their last try (or start-up check): name -> why.
        # Shown in their state; it benches nothing by itself (the breaker and the checks do).
        self.unreachable: dict[str, str] = {}

    def adopt(self, previous: Router) -> None:
        self.breaker.adopt(previous.breaker)
        self.unreachable = previous.unreachable

    def chain(self, endpoint: Endpoint, model: str) -> list[Provider]:
        """The providers that may serve a model on an endpoint, in the order they are tried."""
        return self._chains.get((endpoint, model), [])

    def models(self) -> list[str]:
        return list(dict.fromkeys(m for p in self.providers for m in p.config.models))

    def statuses(self, now: float | None = None) -> list[ProviderStatus]:
        now = time.time() if now is None else now
        return statuses(self.providers, self.store.active(now), now, self.unreachable)

    async def complete(self, endpoint: Endpoint, body: dict[str, Any], trace: Trace) -> tuple[Provider, Answer]:
        return await self._route(endpoint, body, trace, stream=False)

    async def stream(self, endpoint: Endpoint, body: dict[str, Any], trace: Trace) -> tuple[Provider, Stream]:
        return await self._route(endpoint, body, trace, stream=True)

    async def _route(self, endpoint: Endpoint, body: dict[str, Any], trace: Trace, *, stream: bool) -> Any:
        model = body["model"]
        chain = self._chains.get((endpoint, model))
        if not chain:
            raise UnknownModel(model)
        ready = self._ready(chain, model, trace, endpoint, body)
        for index, (provider, recovering, fields) in enumerate(ready):
            if recovering is not None and not await self._won_probe(provider, recovering, trace):
                continue
            body["model"] = provider.config.models[model]
            if fields is not None:
                body.update(fields)
            trace.attempting = provider  # a client that leaves now is charged for it: it may bill the request
            try:
                result = await self._attempt(provider, endpoint, body, stream, last=index == len(ready) - 1)
            except ProviderFailed as exc:
                trace.attempting = None
                trace.attempts.append(self.record_failure(provider, model, exc.failure, probe=recovering is not None))
                continue
            except BaseException as exc:
                if recovering is not None:  # the caller's fault or a cancel proves nothing either way
                    self.store.release_probe(provider.name)
                if isinstance(exc, CallerFault):  # but it did answer
                    self.unreachable.pop(provider.name, None)
                raise
            self._served(provider, model, recovering, result, trace)
            return provider, result
        raise NoProviderAvailable(model, trace.attempts)

    def _ready(
        self, chain: list[Provider], model: str, trace: Trace, endpoint: Endpoint, body: dict[str, Any]
    ) -> list[tuple[Provider, Cooldown | None, dict[str, Any] | None]]:
        """The providers that may take the request, each with the cooldown it recovers from, if any, and
        the fields the endpoint fits to it (all fitted before any attempt changes the body)."""
        now = time.time()
        fit = endpoint.fit
        ready = []
        for provider in chain:
            state = self._unavailable(provider, model, now)
            fields = None
            if fit is not None and not isinstance(state, Attempt):
                fields = fit(provider, body)
                if isinstance(fields, Unsuited):
                    state = Attempt(provider, AttemptKind.UNSUPPORTED, fields.reason, cause=fields.why)
            if isinstance(state, Attempt):
                trace.attempts.append(state)
                self.metrics.skipped(provider.name, state.label)
            else:
                ready.append((provider, state, fields))
        return ready

    def _unavailable(self, provider: Provider, model: str, now: float) -> Attempt | Cooldown | None:
        """An Attempt when the provider cannot take this request; a Cooldown when it is recovering from one."""
        if provider.key is None:
            if provider.key_problem is not None:
                return Attempt(provider, AttemptKind.INVALID_KEY, cause=provider.key_problem)
            return Attempt(provider, AttemptKind.MISSING_KEY)
        if provider.flavor.loads_in_background:  # litellm: skipped until its import has ended well
            if provider.flavor.loading():
                return Attempt(provider, AttemptKind.STARTING)
            if (why := provider.flavor.load_error()) is not None:
                return Attempt(provider, AttemptKind.LOAD_FAILED, cause=why)
        cooldown = self.store.get(provider.name, now)
        if cooldown is not None and cooldown.until > now:
            return Attempt(provider, AttemptKind.BENCHED, cooldown.reason, cooldown.remaining(now))
        per_model = self.store.get(f"{provider.name}/{model}", now)
        if per_model is not None and per_model.until > now:
            return Attempt(provider, AttemptKind.BENCHED, per_model.reason, per_model.remaining(now))
        return cooldown  # None, or recovering: the request must win the probe first

    async def _won_probe(self, provider: Provider, recovering: Cooldown, trace: Trace) -> bool:
        if await self.store.claim_probe(provider.name, self._probe_lock_s):
            return True
        trace.attempts.append(Attempt(provider, AttemptKind.PROBING, recovering.reason))
        self.metrics.skipped(provider.name, AttemptKind.PROBING.value)
        return False

    async def _attempt(
        self, provider: Provider, endpoint: Endpoint, body: dict[str, Any], stream: bool, *, last: bool
    ) -> Any:
        """One attempt on one provider; only the last one that can take the request retries a reset in place."""
        send = provider.transport.stream if stream else provider.transport.complete
        attempt = partial(send, provider, endpoint, body)
        started = time.perf_counter()
        try:
            try:
                result = await (retry_reset(attempt) if last else attempt())
            except (ProviderFailed, CallerFault):
                raise
            except Exception as exc:
                # Our own failure to read what it sent (a bug meeting an odd answer): this provider's
                # answer is lost, not the request. Logged in full; the next provider gets the request.
                log.exception("reading %s's answer failed", provider.name)
                failed = ProviderFailed.transient(f"the gateway could not read the answer ({type(exc).__name__})")
                raise failed from exc
        except ProviderFailed as exc:
            self.metrics.attempt(provider.name, False, time.perf_counter() - started)
            self.metrics.failover(provider.name, exc.failure.kind.value)
            raise
        self.metrics.attempt(provider.name, True, time.perf_counter() - started)
        return result

    def _served(self, provider: Provider, model: str, recovering: Cooldown | None, result: Any, trace: Trace) -> None:
        if self.unreachable:
            self.unreachable.pop(provider.name, None)
        if recovering is not None:
            trace.probe = True
            self.store.clear(provider.name)
            self.store.release_probe(provider.name)
            self.record_success(provider)
            log.warning(
                "%s is back: the probe request after its %s cooldown succeeded", provider.name, recovering.reason
            )
        elif not self.breaker.quiet:
            self.record_success(provider)
        if (paced := policy.pacing(result.headers)) is not None:
            self.record_failure(provider, model, paced)

    def cleared_elsewhere(self, key: str) -> None:
        """Another replica cleared this cooldown: its breaker count here is stale too."""
        if "/" not in key:
            self.breaker.succeeded(key)

    def record_success(self, provider: Provider) -> None:
        self.breaker.succeeded(provider.name)
        if self.unreachable:
            self.unreachable.pop(provider.name, None)

    def checked(self, name: str, finding: Failure | None, reachable: bool, key_accepted: bool) -> None:
        """What a start-up check found for a provider, as soon as it is known.

        Nothing answered: benched like a breaker that opened (it comes back through a probe), or, for
        a last-resort provider, shown as unreachable and never benched. Its key rejected: benched like
        an auth failure. And what the check disproves goes: a bench for being unreachable when it
        answered, one for its key when the key was accepted.
        """
        provider = next((p for p in self.providers if p.name == name), None)
        if provider is None:  # reloaded away meanwhile
            return
        if reachable:
            self.unreachable.pop(name, None)
            current = self.store.get(name, time.time())
            answered = current is not None and current.reason in (FailureClass.UNREACHABLE, FailureClass.REDIRECTED)
            if answered or (current is not None and key_accepted and current.reason == FailureClass.AUTH):
                self.store.clear(name)
                self.record_success(provider)
        if finding is None or provider.key is None:  # without a key it is never tried anyway
            return
        if finding.kind is FailureClass.UNREACHABLE and provider.config.last_resort:
            self.unreachable[name] = finding.detail
            return
        opened = self.config.cooldowns.transient_s if finding.kind is FailureClass.UNREACHABLE else None
        self.record_failure(provider, "", finding, seconds=opened)

    def record_failure(
        self, provider: Provider, model: str, failure: Failure, probe: bool = False, seconds: float | None = None
    ) -> Attempt:
        """Bench the provider (or just this model) as the failure's class says, and say why it did not serve.

        `seconds`: bench this long, whatever the policy says (a start-up check's finding).
        """
        if failure.kind is FailureClass.UNREACHABLE:
            if provider.config.last_resort:  # never benched: its state says it instead
                self.unreachable[provider.name] = failure.detail
        elif self.unreachable:
            self.unreachable.pop(provider.name, None)  # it answered, if badly
        key = policy.bench_key(provider.name, model, failure)
        now = time.time()
        current = self.store.get(key, now)
        benched = current is not None and current.until > now
        if provider.config.last_resort:
            seconds = None
        elif seconds is None:
            seconds = self._bench_s(provider, failure, benched)
        if probe and failure.bench and current is not None and not benched:
            seconds = policy.after_failed_probe(seconds, current)  # the probe failed: back on the bench
        if seconds and (current is None or now + seconds > current.until):
            until = now + seconds
            probed = policy.recovers_by_probe(key == provider.name, probe, failure.kind)
            probe_until = until + policy.RECOVERY_WINDOW_S if probed else 0.0
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
        retry_in = None
        if provider.config.last_resort and failure.kind is FailureClass.RATE_LIMIT:
            retry_in = policy.bench_s(failure, self.config.cooldowns)  # never benched, but its hint holds
        kind, request_only = AttemptKind.FAILED, not failure.bench
        return Attempt(provider, kind, failure.kind.value, seconds, failure.status, cause, request_only, retry_in)

    def _bench_s(self, provider: Provider, failure: Failure, already_benched: bool) -> float | None:
        if failure.kind in policy.BREAKER_CLASSES:
            # Failures of requests that were in flight when the breaker opened do not count again.
            return None if already_benched else self.breaker.failed(provider.name, self.config.cooldowns)
        return policy.bench_s(failure, self.config.cooldowns)
