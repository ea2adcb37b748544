"""OpenAI's usage and costs API, answered from the gateway's usage rows: pure, no I/O.

A tool written for `GET /v1/organization/usage/{completions,embeddings,audio_speeches}` and `/costs`
reads the gateway unchanged: the same query parameters and rules (bucket widths, per-width limits,
`group_by`, filters, `page` cursors), the same page, bucket and result objects. What we add is
beside OpenAI's fields, never instead of them:

- `provider`: a `group_by` value, a filter (`providers`) and a result field (null unless grouped by).
- usage results: `provider_model` (when grouped by model: the sorted "provider/provider model" names
  that served it, the form the admin API names a model by), `cost_usd` (the cost of its priced
  requests; null when none was priced, so an unknown price never reads as $0), `unpriced_requests`
  (when > 0, `cost_usd` is a lower bound) and `estimated_requests` (tokens estimated: a stream cut
  before its usage report).
- costs: line items name the provider model that was paid, `"groq/llama-3.1-8b-instant, input"` and
  `", output"` (a client model may be served by several providers at different prices). Usage of a
  model without a price is its own result, with no `amount`, `"unpriced": true`, `unpriced_requests`,
  its tokens as `quantity` and the line item `"<provider>/<model>, unpriced: set prices: in
  providers.yaml"`, whatever the grouping: that is what to fix, and OpenAI-shaped readers still parse it.

`add_up` is the one grouping of rows, shared with the `gateway usage` table.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounting import WIDTHS
from gateway.accounting.ledger import Row
from gateway.accounting.prices import NANO_PER_USD
from gateway.accounting.usage import COUNTERS, DIMENSIONS
from gateway.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, SPEECH

LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}  # OpenAI's (default, max) buckets a page
COSTS_LIMITS = (7, 180)
# Each usage page's endpoints (costs: all). Speech is counted in characters of input (its `input` counter).
ENDPOINTS = {
    "completions": (CHAT.path, COMPLETIONS.path),
    "embeddings": (EMBEDDINGS.path,),
    "audio_speeches": (SPEECH.path,),
}
# OpenAI's names (group_by values, filters) -> the usage dimension each reads.
FIELDS = {"project_id": "project", "user_id": "user", "api_key_id": "key", "model": "model", "provider": "provider"}
FILTERS = {f"{name}s": dimension for name, dimension in FIELDS.items()}  # project_ids, ..., models, providers
# `batch` and `service_tier` are OpenAI's: accepted so its tools' queries work; the gateway runs no
# batches (batch: false) and knows no tier (null).
_GROUPS = {
    "completions": ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "provider"),
    "embeddings": tuple(FIELDS),
    "audio_speeches": tuple(FIELDS),
    "costs": ("project_id", "line_item", "api_key_id", "provider"),
}
_FILTERS = {kind: tuple(FILTERS) for kind in ENDPOINTS} | {"costs": ("project_ids", "api_key_ids", "providers")}
UNPRICED = "unpriced: set prices: in providers.yaml"
_YEAR_10000 = 253_402_300_800  # 10000-01-01T00:00:00Z


class QueryError(ValueError):
    """A bad query parameter: OpenAI's 400, naming it."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message, self.param = message, param


@dataclass(frozen=True, slots=True)
class Query:
    kind: str  # "completions", "embeddings", "audio_speeches" or "costs"
    width: str
    start: int  # the first bucket's start: start_time aligned down to the width (UTC)
    end: int  # end_time, exclusive: every bucket that starts before it is in the range
    group_by: tuple[str, ...]
    limit: int
    page: int  # the start of this page's first bucket
    filters: tuple[tuple[int, frozenset[str]], ...] = ()  # (dimension index, the values kept)

    @property
    def seconds(self) -> int:
        return WIDTHS[self.width]

    @property
    def page_end(self) -> int:
        return min(self.end, self.page + self.limit * self.seconds)

    def window(self) -> tuple[str, int, int]:
        """What to ask the store for: this page's buckets only."""
        return self.width, self.page, self.page_end


def parse_query(kind: str, params: Iterable[tuple[str, str]], now: float) -> Query:
    """A query string's parameters (repeated names, `name[]` as the SDKs send arrays) as a Query."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name.removesuffix("[]"), []).append(value)

    def one(name: str) -> str | None:
        given = values.get(name)
        return given[-1] if given else None

    start_time = _integer(one("start_time"), "start_time")
    width = one("bucket_width") or "1d"
    if width not in WIDTHS:
        raise QueryError(f"Invalid bucket_width {width!r}: use 1m, 1h or 1d.", "bucket_width")
    if kind == "costs" and width != "1d":
        raise QueryError("The costs API has daily buckets only: bucket_width must be 1d.", "bucket_width")
    end_given = one("end_time")
    end = _integer(end_given, "end_time") if end_given is not None else int(now) + 1
    if end <= start_time and end_given is None:
        raise QueryError(f"start_time ({start_time}) is in the future: there is no usage after it yet.", "start_time")
    if end <= start_time:
        raise QueryError(f"end_time ({end}) must be after start_time ({start_time}).", "end_time")
    default, most = COSTS_LIMITS if kind == "costs" else LIMITS[width]
    limit_given = one("limit")
    limit = _integer(limit_given, "limit") if limit_given is not None else default
    if not 1 <= limit <= most:
        raise QueryError(f"limit must be between 1 and {most} for bucket_width={width}, not {limit}.", "limit")
    group_by: list[str] = []
    for item in values.get("group_by", []):
        for name in filter(None, (part.strip() for part in item.split(","))):
            if name not in _GROUPS[kind]:
                allowed = ", ".join(_GROUPS[kind])
                raise QueryError(f"Invalid group_by value {name!r}: use any of {allowed}.", "group_by")
            if name not in group_by:
                group_by.append(name)
    filters = [
        (DIMENSIONS.index(FILTERS[name]), frozenset(values[name])) for name in _FILTERS[kind] if values.get(name)
    ]
    if kind == "completions" and (one("batch") or "").lower() == "true":
        filters.append((DIMENSIONS.index("endpoint"), frozenset()))  # batch jobs only: there are none
    seconds = WIDTHS[width]
    start = start_time - start_time % seconds
    page = _cursor_start(one("page"), width, start, end) if one("page") else start
    return Query(kind, width, start, end, tuple(group_by), limit, page, tuple(filters))


def _integer(value: str | None, param: str) -> int:
    if value is None:
        raise QueryError(f"Missing required parameter {param!r} (unix seconds).", param)
    try:
        number = int(value.strip())
    except ValueError:
        raise QueryError(f"Invalid {param} {value!r}: expected a whole number.", param) from None
    if number < 0:
        raise QueryError(f"Invalid {param} {number}: it cannot be negative.", param)
    if number >= _YEAR_10000:  # past what a date can be (and what the stores' 64-bit integers hold)
        raise QueryError(f"Invalid {param} {number}: it must be before the year 10000 ({_YEAR_10000}).", param)
    return number


def _cursor(width: str, start: int) -> str:
    # Opaque to clients, as OpenAI's: the width and the next page's first bucket.
    return "page_" + base64.urlsafe_b64encode(f"{width}:{start}".encode()).decode().rstrip("=")


def _cursor_start(cursor: str, width: str, start: int, end: int) -> int:
    try:
        raw = cursor.removeprefix("page_")
        given_width, _, at = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode().partition(":")
        page = int(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        given_width, page = "", -1
    if given_width != width or page < start or page >= end or page % WIDTHS[width]:  # not from this query
        raise QueryError("Invalid page: pass next_page from an earlier answer to the same query.", "page")
    return page


# -- adding up: shared with the `gateway usage` table ------------------------------------------


@dataclass(slots=True)
class Sum:
    counters: list[int]  # as COUNTERS
    served_by: set[str]  # "provider/provider model" names that served these requests


def add_up(rows: Iterable[Row], fields: Sequence[str], bucket_s: int = 86400) -> dict[tuple[Any, ...], Sum]:
    """Counters summed per distinct values of `fields`: DIMENSIONS names, or "bucket" (the row's
    bucket start aligned down to `bucket_s`, so minute rows add up into hours or days)."""
    where = [None if field == "bucket" else DIMENSIONS.index(field) for field in fields]
    sums: dict[tuple[Any, ...], Sum] = {}
    served = (row for row in rows if row[2][0])  # rows of requests nobody served are traffic, not usage
    for start, dims, counters in served:
        group = tuple(start - start % bucket_s if i is None else dims[i] for i in where)
        total = sums.get(group)
        if total is None:
            total = sums[group] = Sum([0] * len(COUNTERS), set())
        for n, value in enumerate(counters):
            total.counters[n] += value
        total.served_by.add(f"{dims[3]}/{dims[5]}")
    return sums


def order(group: tuple[Any, ...]) -> tuple[Any, ...]:
    """A sort key for groups that may hold None (a request without a key or user): None first."""
    return tuple((value is not None, value if value is not None else "") for value in group)


def _select(query: Query, rows: Iterable[Row]) -> Iterator[Row]:
    endpoint = ENDPOINTS.get(query.kind)
    page, page_end = query.page, query.page_end
    for row in rows:
        dims = row[1]
        if endpoint is not None and dims[6] not in endpoint:
            continue
        if page <= row[0] < page_end and all(dims[i] in kept for i, kept in query.filters):
            yield row


def _page(query: Query, results: Iterable[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    buckets: dict[int, list[dict[str, Any]]] = {start: [] for start in range(query.page, query.page_end, query.seconds)}
    for start, result in results:  # every bucket of the page is there, empty or not, as OpenAI answers
        buckets[start].append(result)
    more = query.page_end < query.end
    data = [
        {"object": "bucket", "start_time": start, "end_time": start + query.seconds, "results": results}
        for start, results in buckets.items()
    ]
    next_page = _cursor(query.width, query.page_end) if more else None
    return {"object": "page", "data": data, "has_more": more, "next_page": next_page}


def usage_page(query: Query, rows: Iterable[Row]) -> dict[str, Any]:
    grouped = [name for name in query.group_by if name in FIELDS]
    sums = add_up(_select(query, rows), ("bucket", *(FIELDS[name] for name in grouped)), query.seconds)
    results = (
        (group[0], _usage_result(query, dict(zip(grouped, group[1:], strict=True)), sums[group]))
        for group in sorted(sums, key=order)
    )
    return _page(query, results)


def _usage_result(query: Query, values: dict[str, str | None], total: Sum) -> dict[str, Any]:
    requests, tokens_in, cached, tokens_out, cost_in, cost_out, unpriced, estimated, *_ = total.counters
    result: dict[str, Any] = {"object": f"organization.usage.{query.kind}.result"}
    result["characters" if query.kind == "audio_speeches" else "input_tokens"] = tokens_in
    if query.kind == "completions":
        result.update(output_tokens=tokens_out, input_cached_tokens=cached, input_audio_tokens=0, output_audio_tokens=0)
    result["num_model_requests"] = requests
    result.update({name: values.get(name) for name in ("project_id", "user_id", "api_key_id", "model")})
    if query.kind == "completions":
        result.update(batch=False if "batch" in query.group_by else None, service_tier=None)
    result["provider"] = values.get("provider")
    result["provider_model"] = sorted(total.served_by) if "model" in values else None
    result["cost_usd"] = (cost_in + cost_out) / NANO_PER_USD if requests > unpriced else None
    result.update(unpriced_requests=unpriced, estimated_requests=estimated)
    return result


def costs_page(query: Query, rows: Iterable[Row]) -> dict[str, Any]:
    grouped = [name for name in query.group_by if name in FIELDS]
    fields = ("bucket", *(FIELDS[name] for name in grouped), "provider", "provider_model")
    sums = add_up(_select(query, rows), fields, query.seconds)
    by_item = "line_item" in query.group_by
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}  # (bucket, group values, line item, priced) -> result
    for group in sorted(sums, key=order):
        requests, tokens_in, _, tokens_out, cost_in, cost_out, unpriced, *_ = sums[group].counters
        served = f"{group[-2]}/{group[-1]}"
        items: list[tuple[str | None, int | None, int | None, int]] = []  # line item, nano, quantity, unpriced
        if requests > unpriced:
            if by_item:  # an embeddings model has no output: no line item of nothing
                items.append((f"{served}, input", cost_in, tokens_in, 0))
                if tokens_out or cost_out:
                    items.append((f"{served}, output", cost_out, tokens_out, 0))
            else:
                items.append((None, cost_in + cost_out, None, 0))
        if unpriced:
            # A bucket whose requests were both priced and not (prices changed by a reload) has no
            # split of its tokens: the unpriced share is taken in proportion to the requests.
            share = (tokens_in + tokens_out) * unpriced // requests
            items.append((f"{served}, {UNPRICED}", None, share, unpriced))
        for line_item, nano, quantity, count in items:
            key = (*group[:-2], line_item, nano is None)
            result = merged.get(key)
            if result is None:
                result = merged[key] = _cost_result(dict(zip(grouped, group[1:-2], strict=True)), line_item, nano)
            if nano is not None:
                result["amount"]["value"] += nano
            if quantity is not None:
                result["quantity"] = (result["quantity"] or 0) + quantity
                result["quantity_unit"] = "tokens"
            if count:
                result["unpriced_requests"] += count
    for result in merged.values():
        if "amount" in result:
            result["amount"]["value"] /= NANO_PER_USD  # summed in nano-dollars: exact until here
    return _page(query, ((key[0], result) for key, result in merged.items()))


def _cost_result(values: dict[str, str | None], line_item: str | None, nano: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {"object": "organization.costs.result", "amount": {"value": 0, "currency": "usd"}}
    result.update(line_item=line_item, quantity=None, quantity_unit=None, provider=values.get("provider"))
    result.update(project_id=values.get("project_id"), api_key_id=values.get("api_key_id"))
    if nano is None:  # no price: no amount at all, rather than an amount of 0
        del result["amount"]
        result.update(unpriced=True, unpriced_requests=0)
    return result
