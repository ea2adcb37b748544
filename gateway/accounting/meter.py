"""Per request: admit it under its key's limits before routing, and charge it once when it ends.

`admit` runs after the request is parsed and before any provider sees it; `settle` runs when its
trace is finished, whatever happened: it gives back what `admit` reserved, and, when a provider
served it, counts its tokens (the provider's `usage`, or an estimate marked as such when a stream
was cut or left before its usage report) and its cost for the provider that served it. Attempts
that failed over cost nothing; they show in metrics, not in usage.

A provider with a `budget:` is benched with reason `budget` until the period ends once its spend
reaches the cap (seen here, or by any replica: checked again after every read of the totals).
Both run on the request path: dict work only, no I/O.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

from gateway.accounting.ledger import Batch, Ledger
from gateway.accounting.limits import Limits, budget_periods
from gateway.accounting.prices import NANO_PER_USD, PriceList, Rate
from gateway.accounting.usage import BYTES_PER_TOKEN, UNSERVED, Dims, completion_cap, estimate, tokens_of
from gateway.client_keys import ClientKey, ClientKeys
from gateway.errors import FailureClass
from gateway.request_log import Outcome, failover_entry
from gateway.store import Cooldown

if TYPE_CHECKING:
    from gateway.endpoints import Endpoint
    from gateway.metrics import Metrics
    from gateway.providers import Provider
    from gateway.request_log import Trace
    from gateway.routing.router import Router

_BUDGET = FailureClass.BUDGET.value
MAX_USERS = 1000  # distinct end users (`user`) counted by name per key, per UTC day and replica
OTHER_USERS = "(other users)"
_NO_RATE = Rate(0.0, 0.0, 0.0)
# Requests the gateway could not serve, or whose served answer broke: the dashboard's errors.
_UNSERVED_ERRORS = frozenset({Outcome.NO_PROVIDER, Outcome.ERROR})
_SERVED_ERRORS = frozenset({Outcome.STREAM_BROKEN, Outcome.ERROR})


def _dims(trace: Trace, provider: str, model: str, provider_model: str) -> Dims:
    key = trace.key
    project = key.project if key is not None else "default"
    return (key.name if key is not None else None, project, trace.user, provider, model, provider_model, trace.endpoint)


class Meter:
    """Lives as long as the gateway (its ledger and reservations survive reloads); `configure` on each."""

    def __init__(self, ledger: Ledger, metrics: Metrics) -> None:
        self.ledger = ledger
        self.limits = Limits(ledger)
        self.metrics = metrics
        self.prices = PriceList()
        self._router: Router | None = None
        self._keys: ClientKeys | None = None
        self._dearest: dict[tuple[Endpoint, str], Rate] = {}
        self._budgeted: list[Provider] = []
        self._users_day = -1
        self._users: dict[str | None, set[str]] = {}  # key name -> its end users counted today
        ledger.on_totals = self.check_providers
        ledger.on_batch = self._count_batch

    def configure(self, router: Router, keys: ClientKeys | None) -> None:
        """A new configuration: its prices and budgets; a provider's budget raised by it serves again."""
        self._router, self._keys = router, keys
        self.prices = PriceList()
        self._dearest = {}
        self._budgeted = [p for p in router.providers if p.config.budget is not None]
        limited = keys is not None and any(k.budget or k.rate_limits for k in keys.by_name.values())
        self.ledger.reads_totals = limited or bool(self._budgeted)
        for provider in router.providers:  # every price looked up now, not by a request that pays for it
            for model in provider.config.models.values():
                self.prices.rate(provider, model)
        now = time.time()
        for provider in router.providers:
            current = router.store.get(provider.name, now)
            if current is not None and current.reason == _BUDGET and self._over(provider, now) is None:
                router.store.clear(provider.name)
        self.check_providers()

    # -- before routing -------------------------------------------------------------------------

    def admit(self, trace: Trace, key: ClientKey | None, endpoint: Endpoint, body: dict[str, Any]) -> None:
        """Who the request counts for; refuse it (OverLimit) when its key is over a budget or rate limit."""
        trace.key = key
        user = body.get("user")
        if isinstance(user, str) and user:
            trace.user = self._user(key.name if key is not None else None, user[:256])
        if key is None or (key.budget is None and key.rate_limits is None):
            return
        minute = int(time.time() // 60)
        nano = self._most_it_costs(endpoint, body, trace.request_bytes) if key.budget is not None else 0
        trace.reserved = self.limits.admit(key, minute, nano)
        trace.reserved_nano = nano

    def _user(self, key: str | None, user: str) -> str:
        """The end user as counted: past MAX_USERS distinct ones for a key in a UTC day, OTHER_USERS.

        `user` is the client's to choose: without a bound, distinct values would grow the usage
        store (and every read of a day) without end.
        """
        day = int(time.time() // 86400)
        if day != self._users_day:
            self._users_day, self._users = day, {}
        seen = self._users.get(key)
        if seen is None:
            seen = self._users[key] = set()
        if user in seen:
            return user
        if len(seen) < MAX_USERS:
            seen.add(user)
            return user
        return OTHER_USERS

    def _most_it_costs(self, endpoint: Endpoint, body: dict[str, Any], size: int) -> int:
        """What to reserve: the prompt from the request's size and the completion cap, at the dearest price."""
        rate = self._dearest.get((endpoint, body["model"]))
        if rate is None:
            rate = self._dearest_rate(endpoint, body["model"])
            if rate is None:  # no provider serves it: answered 404 before it could cost anything
                return 0
            self._dearest[(endpoint, body["model"])] = rate  # only configured models: a bounded cache
        if endpoint.request_usage is not None:  # speech: its characters, at the dearest rate per character
            return round(len(body["input"]) * rate.for_characters().input)
        prompt = size // BYTES_PER_TOKEN
        completion = completion_cap(body) if endpoint.can_stream else 0  # embeddings make no completion
        return round(prompt * rate.input + completion * rate.output)

    def _dearest_rate(self, endpoint: Endpoint, model: str) -> Rate | None:
        assert self._router is not None
        chain = self._router.chain(endpoint, model)
        if not chain:
            return None
        rates = [self.prices.rate(p, p.config.models[model]) for p in chain]
        known = [r for r in rates if r is not None]  # an unpriced model reserves nothing: its cost is unknown
        if not known:
            return _NO_RATE
        if endpoint.request_usage is not None:
            known = [r.for_characters() for r in known]
        return Rate(max(r.input for r in known), max(r.output for r in known), 0.0, known[0].per_character)

    # -- when it ends ---------------------------------------------------------------------------

    def settle(self, trace: Trace) -> None:
        if trace.reserved:
            self.limits.release(trace.reserved, trace.reserved_nano)
            trace.reserved = ()
        provider = trace.served
        if provider is None and trace.outcome is Outcome.CLIENT_GONE and trace.attempting is not None:
            # The client left while a provider had its request: that provider may bill it, so it is
            # charged for it (an estimate: no usage report came).
            provider = trace.served = trace.attempting
            trace.provider = provider.name
        if provider is None:  # nothing was served: nothing is charged, but the dashboard counts it
            if trace.outcome in _UNSERVED_ERRORS:
                model = trace.model if isinstance(trace.model, str) else ""
                self.ledger.count_unserved(int(time.time() // 60), _dims(trace, UNSERVED, model, ""))
            if trace.attempts:
                self.ledger.note_failover(partial(failover_entry, trace, time.time()))
            return
        tokens = tokens_of(trace.usage)
        if tokens is None:
            tokens = estimate(trace.request_bytes, trace.events)
            trace.estimated = True
        model = trace.model if isinstance(trace.model, str) else ""
        provider_model = provider.config.models.get(model, model)
        rate = self.prices.rate(provider, provider_model)
        if rate is not None and trace.usage is not None and "characters" in trace.usage and not rate.per_character:
            # Speech from a model priced per token (gpt-4o-mini-tts): its text at about four characters
            # a token; its audio output is not reported, so the cost is a floor, and marked estimated.
            rate = rate.for_characters()
            trace.estimated = True
        cost = rate.cost(tokens.input, tokens.cached, tokens.output) if rate is not None else None
        dims = _dims(trace, provider.name, model, provider_model)
        key = trace.key
        rated = key is not None and key.rate_limits is not None
        failover, error = self._failed_over(trace, provider), trace.outcome in _SERVED_ERRORS
        self.ledger.add(int(time.time() // 60), dims, tokens, cost, trace.estimated, rated, failover, error)
        if failover:
            self.ledger.note_failover(partial(failover_entry, trace, time.time()))
        trace.cost_nano = cost[0] + cost[1] if cost is not None else None
        if provider.config.budget is not None and cost is not None:
            self._check(provider, time.time())

    def _failed_over(self, trace: Trace, provider: Provider) -> bool:
        """Whether a provider before the one that served was passed over or failed. A request's attempts
        also list those after it, skipped before any was tried (benched, keyless): not a failover."""
        if not trace.attempts or self._router is None:
            return False
        rank = self._router.rank
        served = rank.get(provider.name, 0)
        return any(rank.get(attempt.provider.name, served) < served for attempt in trace.attempts)

    def _count_batch(self, batch: Batch) -> None:
        """The metrics of what was charged, from a batch of usage: once per model every 0.1 s, not per request."""
        for (_minute, dims), counters in batch.usage.items():
            if not counters[0]:  # requests nobody served: nothing charged
                continue
            priced = counters[0] > counters[6]
            cost = counters[4] + counters[5] if priced else None
            self.metrics.charged(dims[3], dims[4], (counters[1], counters[3]), cost, counters[6])

    # -- provider budgets -----------------------------------------------------------------------

    def check_providers(self) -> None:
        now = time.time()
        for provider in self._budgeted:
            self._check(provider, now)

    def _over(self, provider: Provider, now: float) -> Cooldown | None:
        """The bench a provider's spend calls for now, or None when it is within its budget."""
        budget = provider.config.budget
        if budget is None:
            return None
        over = None
        for period, cap in budget_periods(int(now // 60), budget.daily_usd, budget.monthly_usd):
            spent = self.ledger.spent("provider", provider.name, period.id)
            if spent >= cap and (over is None or period.ends > over.until):
                detail = f"spent ${spent / NANO_PER_USD:,.2f} of its ${cap / NANO_PER_USD:,.2f} {period.name} budget"
                over = Cooldown(_BUDGET, detail, now, period.ends)
        return over

    def _check(self, provider: Provider, now: float) -> None:
        router = self._router
        if router is None or provider not in router.providers:  # reloaded away meanwhile
            return
        bench = self._over(provider, now)
        if bench is None:
            return
        current = router.store.get(provider.name, now)
        if current is None or current.until < bench.until:
            router.store.set(provider.name, bench)
            self.metrics.cooldown(provider.name, _BUDGET)

    def budgets(self) -> list[tuple[str, str, str, float]]:
        """(scope, name, period, USD left) of every key and provider budget, for the metrics."""
        rows: list[tuple[str, str, str, float]] = []
        router = self._router
        if router is None:
            return rows
        minute = int(time.time() // 60)
        owners: list[tuple[str, str, Any]] = [("provider", p.name, p.config.budget) for p in self._budgeted]
        if self._keys is not None:
            owners += [("key", k.name, k.budget) for k in self._keys.by_name.values() if k.budget is not None]
        for scope, name, budget in owners:
            for period, cap in budget_periods(minute, budget.daily_usd, budget.monthly_usd):
                left = cap - self.ledger.spent(scope, name, period.id)
                rows.append((scope, name, period.name, max(0, left) / NANO_PER_USD))
        return rows
