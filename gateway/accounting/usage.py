"""What one request used: its tokens (as the provider reported them, or estimated), and who it counts for.

A request counts once, for the provider that served it; attempts that failed over cost nothing.
`model` is the client-facing name; `provider_model` the provider's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Dimensions every counter is kept by, in this order (the stores' columns and fields follow it).
DIMENSIONS = ("key", "project", "user", "provider", "model", "provider_model", "endpoint")
# Counters kept per dimension and bucket, in this order. `requests` counts served requests only;
# `failovers` those served by other than the first provider of their chain; `errors` those the gateway
# could not serve (no provider, a broken stream, its own failure), kept in rows whose provider is
# UNSERVED and whose `requests` is 0, so that usage and costs pages (which skip such rows) never see them.
COUNTERS = (
    "requests",
    "input",
    "cached",
    "output",
    "cost_in",
    "cost_out",
    "unpriced",
    "estimated",
    "failovers",
    "errors",
)
UNSERVED = ""  # the provider of a row of requests nobody served: no provider's name is empty
Dims = tuple[str | None, str, str | None, str, str, str, str]

# Without a usage report: about four bytes of request per prompt token, one token per streamed event.
BYTES_PER_TOKEN = 4
# What a request is assumed to ask for when it names no max_tokens (for budget reservations only).
DEFAULT_COMPLETION_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Tokens:
    input: int
    cached: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output


# More tokens than any context window: a larger count is a provider's bug, and priced it would
# overflow the stores' 64-bit counters (SQLite refuses the batch, Redis's HINCRBY fails mid-script).
MAX_TOKENS = 2**32


def _count(value: Any) -> int:
    # `type(...) is int`: a count is a plain int, never a bool (JSON `true`), a float or a string.
    if type(value) is not int or value <= 0:
        return 0
    return value if value < MAX_TOKENS else MAX_TOKENS


def tokens_of(usage: dict[str, Any] | None) -> Tokens | None:
    """Tokens from a provider's `usage` (chat or embeddings); None when there is no report."""
    if not usage:
        return None
    get = usage.get
    # Speech is counted in characters of input: its `input` counter holds them (see `speech_characters`).
    prompt = _count(get("prompt_tokens")) or _count(get("input_tokens")) or _count(get("characters"))
    output = _count(get("completion_tokens")) or _count(get("output_tokens"))
    details = get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if type(details) is dict else 0
    if not cached and "prompt_cache_hit_tokens" in usage:  # DeepSeek's name for it
        cached = _count(get("prompt_cache_hit_tokens"))
    return Tokens(prompt, cached if cached <= prompt else prompt, output)


def estimate(request_bytes: int, relayed_events: int) -> Tokens:
    """A stream cut before its usage report, or left by its client: what it most likely used."""
    return Tokens(max(1, request_bytes // BYTES_PER_TOKEN), 0, max(0, relayed_events))


def completion_cap(body: dict[str, Any]) -> int:
    """The most completion tokens a request can use, for reserving its cost before it is sent."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if type(value) is int and value > 0:
            choices = body.get("n")  # n choices, each up to the cap
            return min(value, MAX_TOKENS) * (choices if type(choices) is int and 1 < choices <= 128 else 1)
    return DEFAULT_COMPLETION_TOKENS
