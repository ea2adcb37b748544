"""The cooldown policy, driven through the real Router and in-process store."""

from __future__ import annotations

import pytest

from gateway.errors import Failure, FailureClass
from gateway.routing import policy
from gateway.routing.router import Router
from gateway.settings import Config, Cooldowns
from gateway.store import MemoryStore
from gateway.transport import Transports
from tests.conftest import config_dict

QUOTA = Failure(FailureClass.QUOTA, "HTTP 429: quota", status=429)
RATE = Failure(FailureClass.RATE_LIMIT, "HTTP 429: slow down", retry_after_s=2, status=429)
BROKEN = Failure(FailureClass.TRANSIENT, "HTTP 502", status=502)


@pytest.fixture
def router(fakes, provider_keys) -> Router:
    config = Config.model_validate(config_dict(fakes, cooldowns={"transient_failures": 2, "transient_s": 30}))
    return Router(config, MemoryStore(), Transports(config.timeouts))  # never started: no request is sent


def remaining(router: Router) -> float:
    return router.statuses()[0].remaining_s  # openai, the first provider


def test_a_late_rate_limit_never_shortens_a_quota_bench(router):
    openai = router.providers[0]
    router.record_failure(openai, "gpt-4o-mini", QUOTA)
    skip = router.record_failure(openai, "gpt-4o-mini", RATE)  # an answer to a request already in flight
    assert remaining(router) > 3500
    assert skip.remaining_s > 3500


def test_a_longer_bench_replaces_a_shorter_one(router):
    openai = router.providers[0]
    router.record_failure(openai, "gpt-4o-mini", RATE)
    assert remaining(router) <= 2
    router.record_failure(openai, "gpt-4o-mini", QUOTA)
    assert remaining(router) > 3500


def test_in_flight_failures_after_the_breaker_opens_do_not_escalate_it(router):
    openai = router.providers[0]
    router.record_failure(openai, "gpt-4o-mini", BROKEN)
    assert router.statuses()[0].state == "available"
    router.record_failure(openai, "gpt-4o-mini", BROKEN)
    assert 25 < remaining(router) <= 30
    for _ in range(10):  # a burst of stragglers from concurrent requests
        router.record_failure(openai, "gpt-4o-mini", BROKEN)
    assert 25 < remaining(router) <= 30


def test_the_breaker_doubles_with_each_ejection_and_resets_on_success(router):
    openai = router.providers[0]
    for _ in range(2):
        router.record_failure(openai, "gpt-4o-mini", BROKEN)
    router.store.clear("openai")  # the cooldown ran out; the provider fails again
    for _ in range(2):
        router.record_failure(openai, "gpt-4o-mini", BROKEN)
    assert 55 < remaining(router) <= 60
    router.store.clear("openai")
    router.record_success(openai)
    for _ in range(2):
        router.record_failure(openai, "gpt-4o-mini", BROKEN)
    assert 25 < remaining(router) <= 30


@pytest.mark.parametrize(("hint", "bench_s"), [(0.0, 1.0), (0.2, 1.0), (7.0, 7.0), (10**7, 3600.0), (None, 10.0)])
def test_a_rate_limit_hint_is_clamped_to_1_s_and_quota_s(hint, bench_s):
    failure = Failure(FailureClass.RATE_LIMIT, "HTTP 429", retry_after_s=hint, status=429)
    assert policy.bench_s(failure, Cooldowns(quota_s=3600, rate_limit_s=10)) == bench_s
