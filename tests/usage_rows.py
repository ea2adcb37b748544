"""Usage rows made by hand, and pages of them: shared by the tests of the usage API and of `gateway usage`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.accounting.report import Query, costs_page, parse_query, usage_page

DAY, HOUR = 86400, 3600
T0 = 1764374400  # 2025-11-29 00:00 UTC
NOW = T0 + 3 * DAY + 5 * HOUR  # "now" in these tests: the fourth day, 05:00
CHAT, EMBED = "/chat/completions", "/embeddings"


def row(start: int, **given: Any) -> tuple[int, tuple[Any, ...], list[int]]:
    """A usage row: one priced chat request to openai's gpt-4o-mini for key alice in project crm, unless told."""
    dims = {"key": "alice", "project": "crm", "user": None, "provider": "openai", "model": "gpt-4o-mini"}
    dims |= {"provider_model": given.get("model", "gpt-4o-mini"), "endpoint": CHAT}
    counters = {"requests": 1, "input": 100, "cached": 0, "output": 10, "cost_in": 15_000, "cost_out": 6_000}
    counters |= {"unpriced": 0, "estimated": 0, "failovers": 0, "errors": 0}
    for name, value in given.items():
        (dims if name in dims else counters)[name] = value
    return start, tuple(dims.values()), list(counters.values())


def query(kind: str = "completions", **params: Any) -> Query:
    pairs = [(k, str(item)) for k, v in params.items() for item in (v if isinstance(v, list) else [v])]
    return parse_query(kind, pairs, NOW)


def page(kind: str = "completions", rows: Sequence[Any] = (), **params: Any) -> dict[str, Any]:
    """A page for a query of the first day, unless told otherwise."""
    q = query(kind, **({"start_time": T0, "end_time": T0 + DAY} | params))
    return (costs_page if kind == "costs" else usage_page)(q, rows)


def results(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [result for bucket in answer["data"] for result in bucket["results"]]
