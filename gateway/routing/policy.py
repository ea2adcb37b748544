"""The router's decisions, as plain functions of what happened: no I/O, no store.

- How long a failure benches a provider: by its class, the provider's hint clamped.
- The circuit breaker: transient failures in a row open it; each opening lasts twice the last.
- Recovery: which benches end in a probe, and how much longer one lasts after a failed probe.
- Pacing: a success that says a budget is spent is a rate limit that has not happened yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway import retry_after
from gateway.errors import Failure, FailureClass
from gateway.settings import Cooldowns
from gateway.store import Cooldown

RECOVERY_WINDOW_S = 86400.0  # how long a recovering provider waits for its probe before it is simply back
MAX_BENCH_S = 86400.0  # failed probes double the bench up to this
# Failures whose cooldown ends with a probe: they last until something changes upstream, so
# full traffic should not return on a timer alone.
_PROBED = frozenset({FailureClass.QUOTA, FailureClass.DAILY_LIMIT, FailureClass.TRANSIENT, FailureClass.UNREACHABLE})
# Failures that count towards the circuit breaker rather than bench at once: they may be one-offs.
BREAKER_CLASSES = frozenset({FailureClass.TRANSIENT, FailureClass.UNREACHABLE})


def bench_key(provider: str, model: str, failure: Failure) -> str:
    """What a failure benches: the model on that provider when the provider lacks it, else the provider."""
    return f"{provider}/{model}" if failure.kind is FailureClass.MODEL_NOT_FOUND else provider


def bench_s(failure: Failure, limits: Cooldowns) -> float | None:
    """How long a failure of any class but those of the breaker benches; None: not at all."""
    hint = failure.retry_after_s
    match failure.kind:
        case FailureClass.QUOTA:
            return min(hint, limits.quota_s) if hint and hint > 0 else limits.quota_s
        case FailureClass.DAILY_LIMIT:
            # Until the reset the provider names (a day at most); without one, as long as a quota.
            return min(hint, MAX_BENCH_S) if hint and hint > 0 else limits.quota_s
        case FailureClass.RATE_LIMIT if failure.bench:
            # The provider's hint, clamped: at least a second (a hint of 0 would un-bench at once and
            # invite a stampede), at most a quota cooldown (a garbled hint must not bench for days).
            return min(max(hint if hint is not None else limits.rate_limit_s, 1.0), limits.quota_s)
        case FailureClass.AUTH | FailureClass.REDIRECTED | FailureClass.MODEL_NOT_FOUND:
            return limits.auth_s
    return None


class Breaker:
    """Transient failures in a row, per provider, and how often its breaker opened since its last success."""

    def __init__(self) -> None:
        self.streak: dict[str, int] = {}
        self.ejections: dict[str, int] = {}

    def adopt(self, previous: Breaker) -> None:
        """Keep the counts across a reload, so a flapping provider keeps its doubling."""
        self.streak, self.ejections = previous.streak, previous.ejections

    @property
    def quiet(self) -> bool:
        return not self.streak and not self.ejections

    def failed(self, provider: str, limits: Cooldowns) -> float | None:
        """Count a transient failure; the bench when it opens the breaker, else None."""
        streak = self.streak[provider] = self.streak.get(provider, 0) + 1
        if streak < limits.transient_failures:
            return None
        self.streak[provider] = 0
        ejections = self.ejections[provider] = self.ejections.get(provider, 0) + 1
        return min(limits.transient_s * 2 ** (ejections - 1), max(limits.quota_s, limits.transient_s))

    def succeeded(self, provider: str) -> None:
        self.streak.pop(provider, None)
        self.ejections.pop(provider, None)


def after_failed_probe(seconds: float | None, previous: Cooldown) -> float:
    """A failed probe benches again for twice as long as the bench it recovered from (up to a day)."""
    return max(seconds or 0.0, min(2 * (previous.until - previous.since), MAX_BENCH_S))


def recovers_by_probe(whole_provider: bool, probe: bool, kind: FailureClass) -> bool:
    """Only a whole provider recovers through a probe; a model's bench, or a rate limit, just ends."""
    return whole_provider and (probe or kind in _PROBED)


def pacing(headers: Mapping[str, str]) -> Failure | None:
    """A success whose `x-ratelimit-remaining-*` says 0: bench until the reset instead of earning a 429."""
    spent = retry_after.exhausted(headers)
    if spent is None:
        return None
    budget, reset_s = spent
    return Failure(FailureClass.RATE_LIMIT, f"paced: x-ratelimit-remaining-{budget} is 0", retry_after_s=reset_s)
