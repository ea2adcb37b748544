"""Reading upstream errors, and the one classification order.

`parse_error` normalises an error body (OpenAI's dict, Google's RPC list, Ollama's string) into an
`UpstreamError`. `classify` asks the provider's flavor for its facts in one fixed order:

    auth -> quota -> daily limit -> rate limit -> model not found -> transient -> (left) caller fault

Auth comes first because a rejected key makes every other word in the answer meaningless (a
provider may say "model not found" to a key that cannot see any model). Quota and daily limit are
asked before rate limit because OpenAI, Gemini and Groq send all three as 429; quota before daily
limit because a per-day quota of 0 means no access at all, not a wait. A rate limit is asked
before model not found, and that before transient, so the most specific reading wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from gateway.errors import CallerFault, Failure, FailureClass, ProviderFailed

if TYPE_CHECKING:
    from gateway.providers import Flavor, Provider


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


def classify(flavor: Flavor, err: UpstreamError) -> Failure:
    """The one classification order; each step asks the provider's flavor for its facts."""
    detail = redact(f"HTTP {err.status}: {err.message}" if err.message else f"HTTP {err.status}")
    if flavor.is_auth(err):
        return Failure(FailureClass.AUTH, detail, status=err.status)
    if flavor.is_quota(err):
        return Failure(FailureClass.QUOTA, detail, flavor.quota_hint(err), status=err.status)
    if flavor.is_daily_limit(err):
        return Failure(FailureClass.DAILY_LIMIT, detail, flavor.daily_limit_hint(err), status=err.status)
    if flavor.is_rate_limit(err):
        return Failure(
            FailureClass.RATE_LIMIT,
            detail,
            flavor.rate_limit_hint(err),
            bench=not flavor.is_request_too_large(err),
            status=err.status,
        )
    if flavor.is_model_not_found(err):
        return Failure(FailureClass.MODEL_NOT_FOUND, detail, status=err.status)
    if flavor.is_transient(err):
        return Failure(FailureClass.TRANSIENT, detail, status=err.status)
    return Failure(FailureClass.CALLER, detail, status=err.status)


def judge(provider: Provider, err: UpstreamError, body: bytes) -> ProviderFailed | CallerFault:
    """A classified upstream error, our key scrubbed: the caller's fault to relay, or a failure to fail over from."""
    if provider.key:
        # A provider that echoes our key (in any shape `redact` cannot guess) never gets it relayed or stored.
        err.message = err.message.replace(provider.key, "[redacted]")
        body = body.replace(provider.key.encode(), b"[redacted]")
    failure = classify(provider.flavor, err)
    if failure.kind is FailureClass.CALLER:
        return CallerFault(err, body, failure)
    return ProviderFailed(failure)


_SECRETS = re.compile(r"(sk-|gsk_|AIza|Bearer\s+)[A-Za-z0-9_\-*.]{4,}")
_MAX_DETAIL = 200


def redact(text: str) -> str:
    """A short excerpt with anything that looks like a key replaced."""
    text = _SECRETS.sub("[redacted]", " ".join(text.split()))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
