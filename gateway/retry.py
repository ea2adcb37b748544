"""The one same-provider retry policy. The only module that uses tenacity.

The next provider *is* the retry: this policy is used only for the last provider that can take
a request, and only when its connection was reset before any byte arrived (a stale pooled
connection, a restarting server). Exponential backoff with full jitter, capped in attempts and
in time, so a dead provider costs a client well under a second, never minutes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from gateway.errors import ProviderFailed

T = TypeVar("T")

ATTEMPTS = 3
TIME_CAP_S = 1.0


def _reset_before_first_byte(exc: BaseException) -> bool:
    return isinstance(exc, ProviderFailed) and exc.failure.reset_before_first_byte


async def retry_reset(attempt: Callable[[], Awaitable[T]]) -> T:
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(TIME_CAP_S),
        wait=wait_random_exponential(multiplier=0.05, max=0.4),
        retry=retry_if_exception(_reset_before_first_byte),
        reraise=True,
    )
    return await retrying(attempt)
