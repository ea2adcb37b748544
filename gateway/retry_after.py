"""Wait hints are data: every form a provider uses, parsed to seconds (None when absent or garbled).

Forms: `retry-after-ms`, `retry-after` (seconds or an HTTP date), `x-ratelimit-reset-*` as Go
durations (`6m0s`, `172.799999ms`), Gemini's `retryDelay` (`"37s"`), and the "try again in 20s"
sentence OpenAI and Groq put in the message. The caller clamps; nothing here sleeps.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_MESSAGE_HINT = re.compile(r"(?:try again|retry) in ((?:\d+(?:\.\d+)?(?:h|ms|m|s))+)", re.IGNORECASE)


def parse_go_duration(text: str) -> float | None:
    """`6m0s` -> 360.0, `172.8ms` -> 0.1728, `7.66s` -> 7.66; None if it is not a Go duration."""
    text = text.strip()
    total, end = 0.0, 0
    for match in _GO_PART.finditer(text):
        if match.start() != end:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        end = match.end()
    if end != len(text) or end == 0:
        return None
    return total


def _number(value: str) -> float | None:
    """A finite, non-negative number ("nan", "inf" and "-5" are garbage, not waits)."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds(value: str) -> float | None:
    number = _number(value)
    return number if number is not None else parse_go_duration(value)


def from_headers(headers: Mapping[str, str]) -> float | None:
    """The wait a response's headers ask for, most specific first."""
    if (value := headers.get("retry-after-ms")) is not None and (ms := _number(value)) is not None:
        return ms / 1000
    if (value := headers.get("retry-after")) is not None:
        seconds = _seconds(value)
        if seconds is not None:
            return seconds
        try:
            return parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            pass
    return from_ratelimit_reset(headers)


def from_ratelimit_reset(headers: Mapping[str, str]) -> float | None:
    """The reset of whichever budget is spent; when none says so, the later of the two resets."""
    resets: list[float] = []
    for budget in ("requests", "tokens"):
        value = headers.get(f"x-ratelimit-reset-{budget}")
        seconds = _seconds(value) if value is not None else None
        if seconds is None:
            continue
        if headers.get(f"x-ratelimit-remaining-{budget}") == "0":
            return seconds
        resets.append(seconds)
    return max(resets) if resets else None


def from_message(message: str) -> float | None:
    """OpenAI and Groq say "Please try again in 20s" (or `39m59.9s`) in the message itself."""
    match = _MESSAGE_HINT.search(message)
    return parse_go_duration(match.group(1)) if match else None


def exhausted(headers: Mapping[str, str]) -> tuple[str, float | None] | None:
    """On a success: the budget a provider says is spent (`x-ratelimit-remaining-*: 0`) and its reset.

    The next request would only earn a 429, so the caller benches the provider until the reset.
    Two header lookups per answer; most answers have budget left and stop there.
    """
    for budget, remaining, reset_name in _BUDGETS:
        value = headers.get(remaining)
        if value is not None and _number(value) == 0:
            reset = headers.get(reset_name)
            return budget, _seconds(reset) if reset is not None else None
    return None


_BUDGETS = tuple((b, f"x-ratelimit-remaining-{b}", f"x-ratelimit-reset-{b}") for b in ("requests", "tokens"))
