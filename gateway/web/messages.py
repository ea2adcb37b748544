"""The words a client reads when the gateway cannot answer as asked: one place for all of them.

Each says which provider, what is wrong in the provider's terms an operator can act on, and for
how long. None quotes a provider's text (that is in /health and the log, redacted), so nothing
here can carry a key.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from gateway.errors import Attempt, AttemptKind, FailureClass, NoProviderAvailable


def describe(attempt: Attempt, model: str) -> str:
    """Why one provider did not serve a request for `model`, in one clause."""
    provider = attempt.provider
    name = provider.name
    wait = f", retry in {math.ceil(attempt.remaining_s)} s" if attempt.remaining_s else ""
    env = provider.config.api_key_env
    match attempt.kind:
        case AttemptKind.PROBING:
            return f"{name}: recovering from {attempt.reason}; a probe request is in flight"
        case AttemptKind.MISSING_KEY:
            return f"{name}: no API key; set {env}"
        case AttemptKind.INVALID_KEY:
            return f"{name}: its API key cannot be used: {attempt.cause}"
        case AttemptKind.UNSUPPORTED:
            return f"{name}: {attempt.cause}"
        case AttemptKind.STARTING:
            return f"{name}: still starting (loading litellm in the background), retry in a few seconds"
        case AttemptKind.LOAD_FAILED:
            return f"{name}: cannot be used: {attempt.cause}"
    match attempt.reason:
        case FailureClass.QUOTA:
            return f"{name}: credits exhausted{wait} or add credits"
        case FailureClass.DAILY_LIMIT if attempt.remaining_s:
            at = time.strftime("%H:%M UTC", time.gmtime(time.time() + attempt.remaining_s))
            return f"{name}: daily limit reached, retry at {at} (in {math.ceil(attempt.remaining_s)} s)"
        case FailureClass.DAILY_LIMIT:
            return f"{name}: daily limit reached"
        case FailureClass.RATE_LIMIT if attempt.request_only:
            return f"{name}: this request exceeds its per-minute token budget"
        case FailureClass.RATE_LIMIT:
            return f"{name}: rate limited{wait}"
        case FailureClass.AUTH:
            return f"{name}: API key rejected{wait}; check {env}"
        case FailureClass.REDIRECTED:
            return f"{name}: its base_url redirects elsewhere{wait}; fix base_url ({provider.config.base_url})"
        case FailureClass.MODEL_NOT_FOUND:
            upstream_model = provider.config.models.get(model, model)
            return f"{name}: has no model '{upstream_model}'{wait}; fix its models map"
        case FailureClass.TRANSIENT if attempt.remaining_s:
            return f"{name}: failing repeatedly{wait}"
        case FailureClass.TRANSIENT:
            return f"{name}: {f'upstream error (HTTP {attempt.status})' if attempt.status else attempt.cause}"
        case FailureClass.UNREACHABLE:
            benched = f" (benched{wait})" if attempt.remaining_s else ""
            return f"{name}: not reachable at {_origin(provider.config.base_url)} — is it running?{benched}"
        case FailureClass.BUDGET:
            return f"{name}: its spend cap (budget) is reached{wait}; raise budget: in providers.yaml to use it now"
        case FailureClass.CALLER:
            return f"{name}: rejected the request (HTTP {attempt.status})"
        case "manual":
            return f"{name}: benched by an operator{wait}"
        case _:  # any other reason a bench carries was an operator's word
            return f"{name}: benched by an operator ({attempt.reason}){wait}"


def no_provider(exc: NoProviderAvailable) -> str:
    reasons = "; ".join(describe(attempt, exc.model) for attempt in exc.attempts)
    text = f"No provider can serve model '{exc.model}' right now. {reasons}"
    return text if text.endswith(("?", ".", ")")) else text + "."


def unsupported(exc: NoProviderAvailable) -> str:
    reasons = "; ".join(describe(attempt, exc.model) for attempt in exc.attempts)
    return f"No provider of model '{exc.model}' can serve this request as asked: {reasons}."


def unknown_model(model: str) -> str:
    return f"The model '{model}' does not exist or no configured provider serves it."


def stream_broken(attempt: Attempt, model: str) -> str:
    return (
        f"The stream from {attempt.provider.name} broke after it started ({describe(attempt, model)}); "
        "the answer is incomplete."
    )


def _origin(url: str | None) -> str:
    """`http://localhost:11434` of `http://localhost:11434/v1`: where the server should be listening."""
    if url is None:  # litellm's default address for the provider
        return "its provider's default address"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # never a user or password
