"""Every exception of ours, the failure taxonomy, and the record of what each provider did with a request.

    GatewayError
    ├── ConfigError            the configuration file is missing, unreadable or invalid
    ├── BadRequest             the client's request is wrong; answered by the gateway itself (4xx)
    ├── UnknownModel           no configured provider maps the requested model
    ├── NoProviderAvailable    every candidate was skipped or failed; carries one Attempt each
    ├── ClientGone             the client disconnected; nothing to answer, nobody to blame
    ├── OverLimit              a gateway key's budget or rate limit refuses the request (429)
    └── AttemptFailed          one upstream attempt failed; carries its Failure
        ├── ProviderFailed     the next provider may not share it: fail over
        └── CallerFault        the upstream rejected the request itself: relay it, fail over nowhere

    FailureClass (what an upstream attempt ended with; `gateway.classify` holds the order)
    ├── quota_exhausted   credits or quota gone; lasts until someone pays    fail over, long cooldown
    ├── daily_limit       a per-day quota; resets at a known time             fail over, cooldown to the reset
    ├── rate_limited      slow down; passes in seconds                        fail over, hinted cooldown
    ├── auth              key rejected; an operator must act                  fail over, shown misconfigured
    ├── redirected        answered 3xx: base_url is wrong; never followed     fail over, shown misconfigured
    ├── model_not_found   this provider lacks this model                      fail over, cools (provider, model)
    ├── transient         5xx, timeout, reset, malformed body                 fail over, circuit breaker
    ├── unreachable       no connection at all (refused, DNS, connect timeout) fail over, circuit breaker
    ├── caller_fault      the request itself is wrong                         back to the client, cools nothing
    └── budget            the provider's spend cap is reached (ours)          skipped until the period ends

Nothing here knows the wire format: `gateway.web` turns these into OpenAI-shaped answers, and
`gateway.web.messages` holds the words a client reads.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.classify import UpstreamError
    from gateway.providers import Provider


class FailureClass(enum.StrEnum):
    QUOTA = "quota_exhausted"
    DAILY_LIMIT = "daily_limit"
    RATE_LIMIT = "rate_limited"
    AUTH = "auth"
    REDIRECTED = "redirected"  # never from classify: the transport refuses to follow a redirect
    MODEL_NOT_FOUND = "model_not_found"
    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"  # never from an answer: only a transport says it
    CALLER = "caller_fault"
    BUDGET = "budget"  # never from an answer: the provider's own spend cap (`budget:`) is reached


# A client is told to retry (x-should-retry: true) only when a rate limit ends within this long:
# anything later, the gateway itself is the better retry layer, and the client should not sleep on it.
RETRY_SOON_S = 5.0


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureClass
    detail: str  # short, redacted, ours or the provider's message: for health and logs, never secrets
    retry_after_s: float | None = None  # the provider's own wait hint, unclamped
    bench: bool = True  # False: fail over, but the failure belongs to this request, not the provider
    status: int | None = None  # upstream HTTP status, None for network failures
    reset_before_first_byte: bool = False  # the only failure worth a same-provider retry


class GatewayError(Exception):
    """The root of every exception the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


class BadRequest(GatewayError):
    """A request the gateway answers itself with a 4xx (or 5xx) in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


class UnknownModel(GatewayError):
    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.model = model


class ClientGone(GatewayError):
    """The client disconnected: nothing to answer, nothing to blame on a provider."""


class OverLimit(GatewayError):
    """A gateway key's budget or rate limit refuses a request before any provider sees it: a 429."""

    def __init__(self, message: str, kind: str, code: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # the error's `type`: insufficient_quota, or requests / tokens as OpenAI says
        self.code = code
        self.headers = headers  # Retry-After, x-should-retry, x-ratelimit-*


class AttemptFailed(GatewayError):
    """One upstream attempt failed; `failure` says how."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


class ProviderFailed(AttemptFailed):
    """An attempt failed in a way that the next provider may not share."""

    @classmethod
    def transient(cls, detail: str, *, reset: bool = False) -> ProviderFailed:
        """A network or protocol failure, in our own words (`reset`: before any byte, worth one retry)."""
        return cls(Failure(FailureClass.TRANSIENT, detail, reset_before_first_byte=reset))

    @classmethod
    def unreachable(cls, detail: str) -> ProviderFailed:
        """No connection could be made at all: the provider is not running, or not where the config says."""
        return cls(Failure(FailureClass.UNREACHABLE, detail))


class CallerFault(AttemptFailed):
    """The upstream rejected the request itself: relayed to the client, nothing fails over."""

    def __init__(self, error: UpstreamError, body: bytes, failure: Failure) -> None:
        super().__init__(failure)
        self.status = error.status
        self.error = error  # parsed once, at the upstream boundary
        self.body = body


class AttemptKind(enum.Enum):
    """Why a provider did not serve a request: it was tried and failed, or it was passed over."""

    FAILED = "failed"  # tried; `reason` is the FailureClass
    BENCHED = "benched"  # in cooldown; `reason` is the cooldown's (a FailureClass value, or an operator's word)
    MISSING_KEY = "missing_key"  # its key variable is unset
    INVALID_KEY = "invalid_key"  # its key variable holds what no header can carry; `cause` says what
    PROBING = "probing"  # recovering, and another request is its probe; `reason` is what it recovers from
    STARTING = "starting"  # its flavor's library (litellm) is still loading in the background
    LOAD_FAILED = "load_failed"  # its flavor's library could not be loaded; `cause` says why
    # It cannot serve this request as asked (a speech format or voice it lacks): `reason` says which
    # (unsupported_format, unsupported_voice), `cause` why, in the client's words.
    UNSUPPORTED = "unsupported"


_UNSUPPORTED = AttemptKind.UNSUPPORTED
_PASSED_OVER = frozenset({AttemptKind.MISSING_KEY, AttemptKind.INVALID_KEY, AttemptKind.LOAD_FAILED, _UNSUPPORTED})


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one provider did with one request it did not serve."""

    provider: Provider
    kind: AttemptKind
    reason: str | None = None  # see AttemptKind
    remaining_s: float | None = None  # benched for this long; None: not benched
    status: int | None = None  # the upstream's HTTP status, when it answered
    cause: str = ""  # our own words for a network failure; never provider text
    request_only: bool = False  # the failure belongs to this request (too large), not to the provider
    retry_in_s: float | None = None  # not benched (a last-resort provider), but its hint says when it serves

    @property
    def tried_or_benched(self) -> bool:
        """Not passed over for its key, its library, or what this request asks: it serves again by itself,
        or after a probe."""
        return self.kind not in _PASSED_OVER

    @property
    def label(self) -> str:
        """The one word for logs and metrics: the reason, or `missing_key` / `probing`."""
        kind = self.kind
        if kind is not AttemptKind.FAILED and kind is not AttemptKind.BENCHED and kind is not _UNSUPPORTED:
            return kind.value
        return self.reason or ""


class NoProviderAvailable(GatewayError):
    def __init__(self, model: str, attempts: list[Attempt]) -> None:
        super().__init__(f"no provider can serve model {model!r}")  # the client's words: web.messages
        self.model = model
        self.attempts = attempts

    def retry_after_s(self) -> int:
        """The soonest a retry can help: the shortest cooldown, or 1 s after failures that benched nothing."""
        waits = [
            a.remaining_s or a.retry_in_s or 1.0 for a in self.attempts if a.tried_or_benched and not a.request_only
        ]
        return max(1, math.ceil(min(waits))) if waits else 3600

    def retry_soon_s(self) -> float | None:
        """When a retry can be served within RETRY_SOON_S; None when not.

        That is a rate limit about to reset, or a provider that answered a 5xx once and is not benched
        (its breaker has not opened: the next try may well be served). Never a provider that cannot be
        reached, one timing out, one benched for longer, or one whose key is missing.
        """
        soon = []
        for a in self.attempts:
            if a.reason == FailureClass.RATE_LIMIT and not a.request_only:
                wait = a.remaining_s if a.remaining_s is not None else a.retry_in_s
                if wait is not None and wait <= RETRY_SOON_S:
                    soon.append(wait)
            elif a.kind is AttemptKind.FAILED and a.reason == FailureClass.TRANSIENT:
                if a.status is not None and a.remaining_s is None:
                    soon.append(1.0)
        return min(soon) if soon else None

    def unsupported(self) -> bool:
        """No provider can serve the request as asked (its format, its voice): a 400, not a wait."""
        return bool(self.attempts) and all(a.kind is _UNSUPPORTED for a in self.attempts)

    def request_too_large(self) -> bool:
        """Every provider that was tried refused this request's size, and none is out: retrying cannot help."""
        tried = [a for a in self.attempts if a.tried_or_benched]
        return bool(tried) and all(a.request_only for a in tried)
