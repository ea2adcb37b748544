"""A gateway key's limits, checked before any provider sees a request: its budgets and its rate limits.

Budgets reserve: a request admitted for a key with a budget reserves what it may cost at most (its
prompt from the request's size, its completion from `max_completion_tokens` / `max_tokens` or
DEFAULT_COMPLETION_TOKENS, at the dearest price of the providers that may serve it), and gives the
reservation back when it ends and its real cost is counted. A request is refused once what the key
spent plus what its requests in flight reserve has reached the budget, so parallel requests cannot
overspend together. Spend is every replica's (read back every FLUSH_S), reservations are this
replica's: across replicas a budget is overshot by at most the requests already in flight when it
was crossed, and what they were admitted on in the last FLUSH_S.

Rate limits count a request when it is admitted and its tokens when it ends, per UTC minute.

Every check reads dicts only (the ledger's view): no I/O, no lock.
"""

from __future__ import annotations

import calendar
import functools
import math
import time
from dataclasses import dataclass

from gateway.accounting.ledger import Ledger, periods
from gateway.accounting.prices import NANO_PER_USD
from gateway.client_keys import ClientKey
from gateway.errors import OverLimit

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # "daily" | "monthly", as the budget names it
    id: str  # `d20261129` | `m202611`, as the ledger keeps spend
    ends: float  # epoch seconds of its reset


def period_end(period_id: str) -> float:
    """When a period (`d20261129`, `m202611`) ends, UTC."""
    year, month = int(period_id[1:5]), int(period_id[5:7])
    if period_id[0] == "d":
        day = int(period_id[7:9])
        return _epoch(year, month, day) + 86400
    return _epoch(year + month // 12, month % 12 + 1, 1)


def _epoch(year: int, month: int, day: int) -> float:
    return float(calendar.timegm((year, month, day, 0, 0, 0)))


@functools.lru_cache(maxsize=4)  # worked out once a minute, not for every request
def _current(minute: int) -> tuple[Period, Period]:
    day, month = periods(minute)
    return Period("daily", day, period_end(day)), Period("monthly", month, period_end(month))


def budget_periods(minute: int, daily: float | None, monthly: float | None) -> list[tuple[Period, int]]:
    """The periods a budget caps now, each with its cap in nano-dollars."""
    day, month = _current(minute)
    capped = []
    if daily is not None:
        capped.append((day, round(daily * NANO_PER_USD)))
    if monthly is not None:
        capped.append((month, round(monthly * NANO_PER_USD)))
    return capped


def _usd(nano: int) -> str:
    return f"${nano / NANO_PER_USD:,.2f}"


def _at(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Limits:
    """Reservations in flight, per key and period, and the checks that read them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.reserved: dict[tuple[str, str], int] = {}  # (key name, period id) -> nano-dollars

    def admit(self, key: ClientKey, minute: int, reserve_nano: int) -> tuple[tuple[str, str], ...]:
        """Check the key's budgets and rate limits; count it and reserve. Raises OverLimit.

        Returns what was reserved (the (key, period) entries, each by `reserve_nano`), for `release`.
        The `x-ratelimit-*` headers go on the 429 only: on every answer they cost more than the whole
        of accounting (uvicorn checks each header it sends against two regular expressions).
        """
        if key.rate_limits is not None:
            self._check_rate(key, minute)
        reserved: tuple[tuple[str, str], ...] = ()
        if key.budget is not None:
            capped = budget_periods(minute, key.budget.daily_usd, key.budget.monthly_usd)
            for period, cap in capped:
                spent = self.ledger.spent("key", key.name, period.id)
                held = self.reserved.get((key.name, period.id), 0)
                if spent + held >= cap:
                    raise _over_budget(key, period, spent, held, cap)
            reserved = tuple((key.name, period.id) for period, _ in capped)
            for entry in reserved:
                self.reserved[entry] = self.reserved.get(entry, 0) + reserve_nano
        if key.rate_limits is not None:
            self.ledger.count_request(key.name, minute)
        return reserved

    def release(self, reserved: tuple[tuple[str, str], ...], nano: int) -> None:
        for entry in reserved:
            left = self.reserved.get(entry, 0) - nano
            if left > 0:
                self.reserved[entry] = left
            else:
                self.reserved.pop(entry, None)

    def _check_rate(self, key: ClientKey, minute: int) -> None:
        """Raise OverLimit when the key's requests or tokens this minute are at a limit."""
        limits = key.rate_limits
        assert limits is not None
        requests, tokens = self.ledger.rate(key.name, minute)
        over = None
        if limits.requests_per_minute is not None and requests >= limits.requests_per_minute:
            over = ("requests", "requests per minute (RPM)", limits.requests_per_minute, requests)
        elif limits.tokens_per_minute is not None and tokens >= limits.tokens_per_minute:
            over = ("tokens", "tokens per minute (TPM)", limits.tokens_per_minute, tokens)
        if over is None:
            return
        kind, what, limit, used = over
        reset_s = _reset_s(minute)
        headers = [(b"retry-after", str(reset_s).encode()), (b"x-should-retry", b"true")]
        headers += _all_rate_headers(key, requests, tokens, reset_s)
        message = (
            f"Rate limit reached for gateway key '{key.name}' on {what}: Limit {limit}, Used {used}. "
            f"Please try again in {reset_s}s."
        )
        raise OverLimit(message, kind, "rate_limit_exceeded", headers)


def _reset_s(minute: int) -> int:
    """Seconds until the minute's counts start afresh."""
    return max(1, math.ceil((minute + 1) * 60 - time.time()))


def _all_rate_headers(key: ClientKey, requests: int, tokens: int, reset_s: int) -> Headers:
    """OpenAI's `x-ratelimit-*` headers for a key's limits, as they stand after this request."""
    limits = key.rate_limits
    assert limits is not None
    headers: Headers = []
    if limits.requests_per_minute is not None:
        headers += _rate_headers("requests", limits.requests_per_minute, requests, reset_s)
    if limits.tokens_per_minute is not None:
        headers += _rate_headers("tokens", limits.tokens_per_minute, tokens, reset_s)
    return headers


_NAMES = {  # OpenAI's header names, made once
    kind: tuple(f"x-ratelimit-{part}-{kind}".encode() for part in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}


def _rate_headers(kind: str, limit: int, used: int, reset_s: int) -> Headers:
    limit_name, remaining_name, reset_name = _NAMES[kind]
    return [(limit_name, b"%d" % limit), (remaining_name, b"%d" % max(0, limit - used)), (reset_name, b"%ds" % reset_s)]


def _over_budget(key: ClientKey, period: Period, spent: int, held: int, cap: int) -> OverLimit:
    message = (
        f"Gateway key '{key.name}' has spent {_usd(spent)} of its {_usd(cap)} {period.name} budget; "
        f"it resets at {_at(period.ends)}"
    )
    if spent < cap:  # its requests in flight hold the rest
        message += f" ({_usd(held)} more is reserved by its requests in flight)"
    wait = max(1, math.ceil(period.ends - time.time()))
    headers = [(b"retry-after", str(wait).encode()), (b"x-should-retry", b"false")]
    return OverLimit(message + ".", "insufficient_quota", "insufficient_quota", headers)
