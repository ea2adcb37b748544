"""The closed failure taxonomy and the one classification order.

    Failure (what an upstream attempt ended with)
    ├── quota_exhausted   credits or quota gone; lasts until someone pays    fail over, long cooldown
    ├── rate_limited      slow down; passes in seconds                        fail over, hinted cooldown
    ├── auth              key rejected or missing; an operator must act       fail over, shown misconfigured
    ├── model_not_found   this provider lacks this model                      fail over, cools (provider, model)
    ├── transient         5xx, timeout, reset, malformed body                 fail over, circuit breaker
    └── caller_fault      the request itself is wrong                         back to the client, cools nothing

Provider modules hold the facts (which status, code or detail means what, each with a comment);
`classify` holds the order: auth, then quota, then rate limit, then model, then transient, and
whatever is left is the caller's fault. Quota is asked before rate limit because OpenAI and
Gemini send both as 429.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.providers.dialect import Dialect


class FailureClass(enum.StrEnum):
    QUOTA = "quota_exhausted"
    RATE_LIMIT = "rate_limited"
    AUTH = "auth"
    MODEL_NOT_FOUND = "model_not_found"
    TRANSIENT = "transient"
    CALLER = "caller_fault"


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureClass
    detail: str  # short, redacted, ours or the provider's message: for health and logs, never secrets
    retry_after_s: float | None = None  # the provider's own wait hint, unclamped
    bench: bool = True  # False: fail over, but the failure belongs to this request, not the provider
    status: int | None = None  # upstream HTTP status, None for network failures
    reset_before_first_byte: bool = False  # the only failure worth a same-provider retry


class ProviderFailed(Exception):
    """An attempt failed in a way that the next provider may not share."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class CallerFault(Exception):
    """The upstream rejected the request itself: relayed to the client, nothing fails over."""

    def __init__(self, error: UpstreamError, body: bytes, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.status = error.status
        self.error = error  # parsed once, at the upstream boundary
        self.body = body
        self.failure = failure


@dataclass(slots=True)
class UpstreamError:
    """An error response, normalised across the OpenAI dict and Google RPC list envelopes."""

    status: int
    headers: Mapping[str, str]
    message: str = ""
    type: str | None = None
    code: str | None = None
    rpc_status: str | None = None  # Google's status word, e.g. RESOURCE_EXHAUSTED
    details: list[dict[str, Any]] = field(default_factory=list)
    openai_shaped: bool = False  # body already is {"error": {"message": ...}}


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    err = UpstreamError(status=status, headers=headers)
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]  # Gemini's compat endpoint wraps the error in a list
    inner = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(inner, str):  # Ollama's native form {"error": "..."}
        inner = {"message": inner}
    if not isinstance(inner, dict):
        err.message = body[:200].decode("utf-8", "replace") if body else ""
        return err
    err.message = str(inner.get("message") or "")
    err.openai_shaped = isinstance(doc, dict) and "message" in inner and "status" not in inner
    err.type = _text(inner.get("type"))
    code = inner.get("code")
    err.code = code if isinstance(code, str) else None
    err.rpc_status = _text(inner.get("status"))
    details = inner.get("details")
    err.details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    return err


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def classify(dialect: Dialect, err: UpstreamError) -> Failure:
    """The one classification order; each step asks the provider's dialect for its facts."""
    detail = redact(f"HTTP {err.status}: {err.message}" if err.message else f"HTTP {err.status}")
    if dialect.is_auth(err):
        return Failure(FailureClass.AUTH, detail, status=err.status)
    if dialect.is_quota(err):
        return Failure(FailureClass.QUOTA, detail, dialect.quota_hint(err), status=err.status)
    if dialect.is_rate_limit(err):
        return Failure(
            FailureClass.RATE_LIMIT,
            detail,
            dialect.rate_limit_hint(err),
            bench=not dialect.is_request_too_large(err),
            status=err.status,
        )
    if dialect.is_model_not_found(err):
        return Failure(FailureClass.MODEL_NOT_FOUND, detail, status=err.status)
    if dialect.is_transient(err):
        return Failure(FailureClass.TRANSIENT, detail, status=err.status)
    return Failure(FailureClass.CALLER, detail, status=err.status)


_SECRETS = re.compile(r"(sk-|gsk_|AIza|Bearer\s+)[A-Za-z0-9_\-*.]{4,}")
_MAX_DETAIL = 200


def redact(text: str) -> str:
    """A short excerpt with anything that looks like a key replaced."""
    text = _SECRETS.sub("[redacted]", " ".join(text.split()))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
