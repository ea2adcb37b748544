"""Gemini's OpenAI-compatible endpoint: Google RPC errors, often wrapped in a JSON list.

Quota and rate limit share 429 RESOURCE_EXHAUSTED; only `QuotaFailure` (which quota) and
`RetryInfo` (how long) in `details` tell them apart.
"""

from __future__ import annotations

import re

from gateway import retry_after
from gateway.classify import UpstreamError
from gateway.providers.base import Flavor

_RPC = "type.googleapis.com/google.rpc."


def _detail(err: UpstreamError, kind: str) -> dict:
    return next((d for d in err.details if d.get("@type") == _RPC + kind), {})


def _violations(err: UpstreamError) -> list[dict]:
    violations = _detail(err, "QuotaFailure").get("violations")
    return [v for v in violations if isinstance(v, dict)] if isinstance(violations, list) else []


class Gemini(Flavor):
    name = "gemini"
    # Google AI Studio: `AIza` then 35 URL-safe characters, 39 in all.
    key_shape = re.compile(r"AIza[A-Za-z0-9_-]{35}")
    key_hint = "AIza + 35 characters"
    litellm_prefix = "gemini/"

    def is_auth(self, err: UpstreamError) -> bool:
        if super().is_auth(err):
            return True
        # A bad key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID, not a caller fault.
        if _detail(err, "ErrorInfo").get("reason") == "API_KEY_INVALID" or "API key not valid" in err.message:
            return True
        # 400 FAILED_PRECONDITION: the free tier is not offered where this gateway runs.
        return err.rpc_status in ("PERMISSION_DENIED", "UNAUTHENTICATED", "FAILED_PRECONDITION")

    def is_quota(self, err: UpstreamError) -> bool:
        if err.status == 402:  # prepaid credit depleted
            return True
        if err.rpc_status != "RESOURCE_EXHAUSTED":
            return False
        # A quota of 0 means no access on this tier: nothing comes back by waiting.
        if any(str(violation.get("quotaValue")) == "0" for violation in _violations(err)):
            return True
        return "limit: 0," in err.message

    def is_daily_limit(self, err: UpstreamError) -> bool:
        # A per-day quota lasts until the day turns (midnight Pacific time).
        return err.rpc_status == "RESOURCE_EXHAUSTED" and any(
            "PerDay" in str(violation.get("quotaId", "")) for violation in _violations(err)
        )

    def daily_limit_hint(self, err: UpstreamError) -> float | None:
        # The RetryInfo on a per-day violation says seconds, not the day's end: not trusted.
        return None

    def rate_limit_hint(self, err: UpstreamError) -> float | None:
        delay = _detail(err, "RetryInfo").get("retryDelay")
        hint = retry_after.parse_go_duration(delay) if isinstance(delay, str) else None
        return hint if hint is not None else super().rate_limit_hint(err)


FLAVOR = Gemini()
