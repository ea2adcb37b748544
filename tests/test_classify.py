"""Golden table: every recorded provider payload classifies to exactly one class, with its wait hint."""

from __future__ import annotations

import orjson
import pytest

from gateway.classify import classify, parse_error
from gateway.errors import FailureClass
from gateway.providers import FLAVORS
from tests import fake_anthropic
from tests.payloads import ERROR_CASES as RECORDED

# Anthropic's errors are the litellm flavor's rows: the transport hands the flavor the upstream's own answer.
ERROR_CASES = RECORDED + fake_anthropic.ERROR_CASES


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c.id for c in ERROR_CASES])
def test_payload_classifies(case):
    failure = classify(FLAVORS[case.flavor], parse_error(case.status, case.headers, case.body))
    assert failure.kind == FailureClass(case.expect)
    assert failure.bench is case.bench
    if case.retry_after_s is None:
        assert failure.retry_after_s is None
    else:
        assert failure.retry_after_s == pytest.approx(case.retry_after_s)


def test_every_flavor_and_class_has_payloads():
    seen = {(c.flavor, c.expect) for c in ERROR_CASES}
    for flavor in FLAVORS:
        for kind in ("model_not_found", "transient", "caller_fault", "rate_limited"):
            assert (flavor, kind) in seen, f"no {kind} payload for {flavor}"
        if flavor != "ollama":  # Ollama has neither keys nor credits
            assert (flavor, "auth") in seen, f"no auth payload for {flavor}"
            assert (flavor, "quota_exhausted") in seen, f"no quota payload for {flavor}"


def test_details_never_carry_keys():
    for case in ERROR_CASES:
        failure = classify(FLAVORS[case.flavor], parse_error(case.status, case.headers, case.body))
        assert "sk-" not in failure.detail and "gsk_" not in failure.detail and len(failure.detail) <= 200


def test_odd_gemini_details_do_not_crash_the_classifier():
    body = (
        b'{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"x","details":['
        b'{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":["oops", 3, {"quotaId":"PerDay"}]},'
        b'{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":7}]}}'
    )
    failure = classify(FLAVORS["gemini"], parse_error(429, {}, body))
    assert failure.kind == FailureClass.DAILY_LIMIT  # the one readable violation is per day


# One crafted answer per adjacent pair in the order: it matches both classes, and the earlier one wins.
ORDER = [
    ("auth before quota", 401, {"code": "insufficient_quota"}, FailureClass.AUTH),
    ("auth before model not found", 404, {"code": "invalid_api_key"}, FailureClass.AUTH),
    ("quota before rate limit", 429, {"code": "insufficient_quota"}, FailureClass.QUOTA),
    ("rate limit before model not found", 429, {"code": "model_not_found"}, FailureClass.RATE_LIMIT),
    ("model not found before transient", 500, {"code": "model_not_found"}, FailureClass.MODEL_NOT_FOUND),
    ("transient before caller fault", 503, {"code": "invalid_request_error"}, FailureClass.TRANSIENT),
]


@pytest.mark.parametrize(("status", "error", "expect"), [o[1:] for o in ORDER], ids=[o[0] for o in ORDER])
def test_the_classification_order(status, error, expect):
    body = orjson.dumps({"error": {"message": "x", "type": None, **error}})
    assert classify(FLAVORS["openai"], parse_error(status, {}, body)).kind == expect
