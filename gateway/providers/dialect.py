"""What an OpenAI-compatible provider means by its errors: the facts every flavor starts from.

A flavor module overrides only what its provider does differently; `gateway.errors.classify`
decides the order in which these questions are asked.
"""

from __future__ import annotations

from gateway import retry_after
from gateway.errors import UpstreamError

# OpenAI's `type`/`code` values for "credits are gone" (older responses had code null).
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)


class Dialect:
    flavor = "openai"
    supports_embeddings = True
    requires_key = True

    def is_auth(self, err: UpstreamError) -> bool:
        return err.status in (401, 403) or err.code == "invalid_api_key"

    def is_quota(self, err: UpstreamError) -> bool:
        # 402 Payment Required means an empty balance wherever it appears (DeepSeek, Gemini prepaid).
        return err.status == 402 or err.type in _QUOTA_CODES or err.code in _QUOTA_CODES

    def quota_hint(self, err: UpstreamError) -> float | None:
        # Credits come back when someone pays, not after a hinted delay: use the configured cooldown.
        return None

    def is_rate_limit(self, err: UpstreamError) -> bool:
        return err.status == 429

    def rate_limit_hint(self, err: UpstreamError) -> float | None:
        hint = retry_after.from_headers(err.headers)
        return hint if hint is not None else retry_after.from_message(err.message)

    def is_request_too_large(self, err: UpstreamError) -> bool:
        # "Request too large ... on tokens per min (TPM)": this one request exceeds the per-minute
        # budget, so it fails over, but the provider still serves smaller requests.
        return err.message.startswith("Request too large")

    def is_model_not_found(self, err: UpstreamError) -> bool:
        return err.status == 404 or err.code == "model_not_found"

    def is_transient(self, err: UpstreamError) -> bool:
        return err.status >= 500 or err.status in (408, 409)
