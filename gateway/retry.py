"""The one same-provider retry policy. The only module that uses tenacity.

The next provider *is* the retry: this policy is used only for the last provider that can take
a request, and only when its connection was reset before any byte arrived (a stale pooled
connection, a restarting server). The first retry goes at once (a stale keep-alive connection
is the usual cause), later ones after exponential backoff with full jitter; attempts and time are
both capped, so a dead provider costs a client well under a second, never minutes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from gateway.errors import ProviderFailed

T = TypeVar("T")

ATTEMPTS = 3  # in all, the first one included
TIME_CAP_S = 1.0


def _reset_before_first_byte(exc: BaseException) -> bool:
    return isinstance(exc, ProviderFailed) and exc.failure.reset_before_first_byte


async def retry_reset(attempt: Callable[[], Awaitable[T]]) -> T:
    try:  # the common case pays nothing for the policy
        return await attempt()
    except ProviderFailed as exc:
        if not exc.failure.reset_before_first_byte:
            raise
    retrying = AsyncRetrying(
        stop=stop_after_attempt(ATTEMPTS - 1) | stop_after_delay(TIME_CAP_S),
        wait=wait_random_exponential(multiplier=0.05, max=0.4),
        retry=retry_if_exception(_reset_before_first_byte),
        reraise=True,
    )
    return await retrying(attempt)
