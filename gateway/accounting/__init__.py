"""Accounting: prices, usage counters, budgets and rate limits, and the two stores that keep the counters.

The `Ledger` (ledger.py) adds every request's usage up in memory and hands it, every 0.1 s, to a
`UsageStore` as one batch with an id. With `REDIS_URL` that store is Redis (redis_store.py), shared by
every replica; without it a SQLite file (sqlite_store.py) that only this process writes. Both keep the
same things the same way, which this module states once: usage counters summed into day, hour and
minute buckets (UTC, bucket start in epoch seconds), spend per key and provider per period, requests
and tokens per key per minute, and how long each is kept. Both apply a batch id at most once, and
neither ever raises: a failed call answers False or None, and the ledger sends the batch again.
"""

from __future__ import annotations

import calendar
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.accounting.ledger import UsageStore
    from gateway.accounting.usage import Dims
    from gateway.settings import UsageSettings

DAY_S = 86_400
WIDTHS = {"1d": DAY_S, "1h": 3_600, "1m": 60}  # bucket width -> seconds
# Older hour and minute buckets are past what OpenAI's usage API pages reach (1h: 168, 1m: 1440).
HOUR_BUCKETS_KEPT_S = 8 * DAY_S
MINUTE_BUCKETS_KEPT_S = 2 * DAY_S
# Spend is read for today and this month only (budgets); a little longer covers clock skew.
DAY_SPEND_KEPT_S = 3 * DAY_S
MONTH_SPEND_KEPT_S = 62 * DAY_S
RATE_MINUTES_KEPT = 3  # limits read this minute and the one before
BATCH_MARK_KEPT_S = DAY_S  # a batch is resent within seconds; a day is plenty to stay at-most-once


def kept_s(width: str, retention_days: int) -> int:
    """How long a bucket of `width` is kept after it starts."""
    return {"1d": retention_days * DAY_S, "1h": HOUR_BUCKETS_KEPT_S, "1m": MINUTE_BUCKETS_KEPT_S}[width]


def period_expiry(period: str) -> int:
    """When a spend period (`d20261129`, `m202611`) may be dropped, in epoch seconds."""
    try:
        if period.startswith("d") and len(period) == 9:
            start = calendar.timegm((int(period[1:5]), int(period[5:7]), int(period[7:9]), 0, 0, 0))
            return start + DAY_SPEND_KEPT_S
        if period.startswith("m") and len(period) == 7:
            return calendar.timegm((int(period[1:5]), int(period[5:7]), 1, 0, 0, 0)) + MONTH_SPEND_KEPT_S
    except ValueError:
        pass
    return int(time.time()) + MONTH_SPEND_KEPT_S  # a period of another shape: keep it as long as a month


def buckets(usage: dict[tuple[int, Dims], list[int]]) -> dict[tuple[str, int, Dims], list[int]]:
    """A batch's per-minute counters summed into buckets of every width: (width, bucket start, dims)."""
    summed: dict[tuple[str, int, Dims], list[int]] = {}
    for (minute, dims), counters in usage.items():
        at = minute * 60
        for width, seconds in WIDTHS.items():
            bucket = (width, at - at % seconds, dims)
            total = summed.get(bucket)
            if total is None:
                summed[bucket] = list(counters)  # a copy: the batch may be sent again, unchanged
            else:
                for index, value in enumerate(counters):
                    total[index] += value
    return summed


def make_usage_store(redis_url: str | None, settings: UsageSettings) -> UsageStore:
    """Redis when it is configured (every replica writes there), else the SQLite file."""
    if redis_url:
        from gateway.accounting.redis_store import RedisUsageStore  # only a Redis gateway loads redis

        return RedisUsageStore(redis_url, settings.retention_days)
    from gateway.accounting.sqlite_store import SqliteUsageStore

    return SqliteUsageStore(settings.path, settings.retention_days)
