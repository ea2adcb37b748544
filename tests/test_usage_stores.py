"""The usage store contract (gateway/accounting/ledger.py UsageStore), run against every store: SQLite in
memory and in a file, Redis, and Redis on a Cluster node, where a script over keys of different slots
is refused. Buckets of every width, at-most-once batches, totals, a restart, an outage, retention."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from gateway.accounting import make_usage_store
from gateway.accounting.ledger import Batch, Totals, UsageStore, periods
from gateway.accounting.redis_store import RedisUsageStore
from gateway.accounting.sqlite_store import SqliteUsageStore
from gateway.accounting.usage import DIMENSIONS
from gateway.settings import UsageSettings

Make = Callable[..., UsageStore]
Check = Callable[[UsageStore], Awaitable[None]]

CRM = ("crm-tool", "crm", None, "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chat")
ANON = (None, "default", "alice", "groq", "gpt-4o-mini", "llama-3.1-8b-instant", "chat")


@dataclass(frozen=True)
class Clock:
    """The times a test writes at, read when it starts (a long run may cross a minute, or midnight)."""

    minute: int  # now
    day: int  # yesterday, 00:00 UTC: in the past, and inside every retention
    hour: int  # yesterday, 10:00
    m1: int  # 10:01 yesterday, as a minute
    m2: int  # 11:01, the next hour of the same day


def clock() -> Clock:
    minute = int(time.time() // 60)
    day = minute * 60 - minute * 60 % 86400 - 86400
    hour = day + 10 * 3600
    return Clock(minute, day, hour, hour // 60 + 1, hour // 60 + 61)


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "redis", "redis-cluster-node"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """Makes a store; a second one made on a file or a Redis sees what the first wrote."""
    if request.param == "sqlite-memory":
        return lambda retention_days=400: SqliteUsageStore(":memory:", retention_days)
    if request.param == "sqlite-file":
        path = str(tmp_path / "usage.sqlite3")
        return lambda retention_days=400: SqliteUsageStore(path, retention_days)
    server = request.getfixturevalue("redis_server" if request.param == "redis" else "redis_cluster_node")
    return lambda retention_days=400: RedisUsageStore(server.url, retention_days, timeout_s=2.0)


def run(make: Make, check: Check, **options: Any) -> None:
    async def main() -> None:
        store = make(**options)
        await store.start()
        try:
            await check(store)
        finally:
            await store.close()

    asyncio.run(main())


def usage_batch(t: Clock, batch_id: str = "replica-a:1") -> Batch:
    return Batch(
        batch_id,
        usage={
            (t.m1, CRM): [1, 100, 10, 20, 500, 800, 0, 0, 0, 0],
            (t.m1 + 1, CRM): [2, 50, 0, 10, 250, 400, 0, 1, 0, 0],
            (t.m2, CRM): [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
            (t.m1, ANON): [1, 7, 0, 3, 0, 0, 1, 0, 0, 0],
        },
    )


def expected(t: Clock) -> dict[str, dict[tuple[int, Any], list[int]]]:
    """What `usage_batch` adds up to, by width: {(bucket start, dims): counters}."""
    return {
        "1d": {(t.day, CRM): [4, 151, 11, 31, 751, 1201, 0, 1, 0, 0], (t.day, ANON): [1, 7, 0, 3, 0, 0, 1, 0, 0, 0]},
        "1h": {
            (t.hour, CRM): [3, 150, 10, 30, 750, 1200, 0, 1, 0, 0],
            (t.hour, ANON): [1, 7, 0, 3, 0, 0, 1, 0, 0, 0],
            (t.hour + 3600, CRM): [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
        },
        "1m": {
            (t.m1 * 60, CRM): [1, 100, 10, 20, 500, 800, 0, 0, 0, 0],
            (t.m1 * 60 + 60, CRM): [2, 50, 0, 10, 250, 400, 0, 1, 0, 0],
            (t.m2 * 60, CRM): [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
            (t.m1 * 60, ANON): [1, 7, 0, 3, 0, 0, 1, 0, 0, 0],
        },
    }


async def by_bucket(store: UsageStore, width: str, start: int, end: int) -> dict[tuple[int, Any], list[int]]:
    rows = await store.rows(width, start, end)
    assert rows is not None
    table = {(at, dims): counters for at, dims, counters in rows}
    assert len(table) == len(rows), "one row per dims per bucket"
    return table


async def assert_usage_once(store: UsageStore, t: Clock) -> None:
    for width, table in expected(t).items():
        assert await by_bucket(store, width, t.day, t.day + 86400) == table, width


def test_a_batch_is_summed_into_day_hour_and_minute_buckets(make):
    t = clock()

    async def check(store: UsageStore) -> None:
        assert await store.write(usage_batch(t))
        await assert_usage_once(store, t)
        # Buckets that start in [start, end): the end is excluded, a start inside a bucket skips it.
        assert set(await by_bucket(store, "1h", t.hour, t.hour + 3600)) == {(t.hour, CRM), (t.hour, ANON)}
        assert set(await by_bucket(store, "1h", t.hour + 1, t.day + 86400)) == {(t.hour + 3600, CRM)}
        assert await by_bucket(store, "1d", t.day + 1, t.day + 86400) == {}
        assert store.status()["state"] == "ok"

    run(make, check)


def test_the_same_batch_id_counts_once(make):
    t = clock()
    day = periods(t.minute)[0]

    async def check(store: UsageStore) -> None:
        batch = usage_batch(t)
        batch.spend[("key", "crm-tool", day)] = 5
        assert await store.write(batch)
        assert await store.write(batch)  # its answer was lost: the ledger sends it again, unchanged
        await assert_usage_once(store, t)
        assert await store.totals([day], t.minute) == Totals({("key", "crm-tool", day): 5}, {})
        # Another id with the same content is new usage.
        assert await store.write(Batch("replica-b:1", usage={(t.m1, ANON): [1, 7, 0, 3, 0, 0, 1, 0, 0, 0]}))
        assert (await by_bucket(store, "1d", t.day, t.day + 86400))[(t.day, ANON)] == [2, 14, 0, 6, 0, 0, 2, 0, 0, 0]

    run(make, check)


def test_totals_sum_spend_by_period_and_rates_of_this_minute_and_the_last(make):
    now = clock().minute
    day, month = periods(now)
    yesterday = periods(now - 1440)[0]

    async def check(store: UsageStore) -> None:
        spend = {("key", "crm-tool", day): 10, ("provider", "openai", day): 10, ("key", "crm-tool", month): 10}
        rates = {("crm-tool", now): [2, 200], ("crm-tool", now - 2): [9, 9]}
        assert await store.write(Batch("a:1", spend=spend | {("provider", "openai", yesterday): 7}, rates=rates))
        more = {("crm-tool", now): [1, 5], ("crm-tool", now - 1): [3, 30], ("key:x", now): [1, 0]}
        assert await store.write(Batch("b:1", spend={("key", "crm-tool", day): 5}, rates=more))
        totals = await store.totals([day, month], now)
        assert totals is not None
        assert totals.spend == spend | {("key", "crm-tool", day): 15}  # not yesterday's
        assert totals.rates == {
            ("crm-tool", now): [3, 205],
            ("crm-tool", now - 1): [3, 30],
            ("key:x", now): [1, 0],  # a name with the separator in it stays whole
        }
        assert await store.totals([], now + 10) == Totals({}, {})

    run(make, check)


def test_hundreds_of_dims_in_one_batch(make):
    t = clock()
    many = {
        (t.m1, (f"key-{n}", "p", None if n % 2 else f"user\x1f{n}", "openai", "m", "pm", "chat")): [1] * 10
        for n in range(400)
    }

    async def check(store: UsageStore) -> None:
        assert await store.write(Batch("big:1", usage=many))
        for width in ("1d", "1h", "1m"):
            rows = await store.rows(width, t.day, t.day + 86400)
            assert rows is not None and {dims for _, dims, _ in rows} == {dims for _, dims in many}
            assert all(counters == [1] * 10 for _, _, counters in rows)

    run(make, check)


@pytest.mark.parametrize("make", ["sqlite-file", "redis", "redis-cluster-node"], indirect=True)
def test_a_store_opened_again_reads_what_was_written(make):
    t = clock()
    day, month = periods(t.minute)
    batch = usage_batch(t)
    batch.spend[("provider", "openai", month)] = 42
    batch.rates[("crm-tool", t.minute)] = [4, 40]

    async def write(store: UsageStore) -> None:
        assert await store.write(batch)

    async def read(store: UsageStore) -> None:
        await assert_usage_once(store, t)
        assert await store.totals([day, month], t.minute) == Totals(
            {("provider", "openai", month): 42}, {("crm-tool", t.minute): [4, 40]}
        )
        assert await store.write(batch)  # still applied once, across the restart
        await assert_usage_once(store, t)

    run(make, write)
    run(make, read)


def test_old_buckets_spend_and_rates_are_dropped(make):
    t = clock()
    old, middle = t.minute - 10 * 1440, t.minute - 4 * 1440  # kept: days 3 (below), hours 8 days, minutes 2 days
    old_day = periods(old)[0]
    batch = usage_batch(t)
    batch.usage[(old, CRM)] = [1] * 10
    batch.usage[(middle, CRM)] = [2] * 10
    batch.spend[("key", "crm-tool", old_day)] = 3
    batch.rates[("crm-tool", t.minute - 10)] = [1, 1]
    batch.failovers.append(b"{}")  # the list of recent failovers expires too
    redis_urls: list[str] = []

    async def check(store: UsageStore) -> None:
        assert await store.write(batch)
        # Only yesterday's day bucket is left, the middle one only by the hour, the old one nowhere.
        now = t.minute * 60
        assert await by_bucket(store, "1d", 0, now) == expected(t)["1d"]
        middle_hour = middle * 60 - middle * 60 % 3600
        assert await by_bucket(store, "1h", 0, now) == expected(t)["1h"] | {(middle_hour, CRM): [2] * 10}
        assert await by_bucket(store, "1m", 0, now) == expected(t)["1m"]
        assert await store.totals([old_day], t.minute - 9) == Totals({}, {})
        if isinstance(store, RedisUsageStore):
            redis_urls.append(store.link.url)

    run(make, check, retention_days=3)
    for url in redis_urls:  # and nothing in Redis lives for ever
        with redis.Redis.from_url(url) as client:
            ttls = {name: client.ttl(name) for name in client.keys("*")}
        assert ttls and all(ttl > 0 for ttl in ttls.values()), ttls


@pytest.mark.parametrize("make", ["redis"], indirect=True)
def test_with_redis_down_nothing_is_lost_or_counted_twice(make, redis_server):
    t = clock()
    batch = usage_batch(t, "replica-a:2")

    async def check(store: UsageStore) -> None:
        assert await store.write(Batch("replica-a:1", rates={("crm-tool", t.minute): [1, 1]}))
        redis_server.kill()
        assert not await store.write(batch)
        assert await store.totals([], t.minute) is None
        assert await store.rows("1d", t.day, t.day + 86400) is None
        assert not await store.write(batch)  # reads have a link of their own: the writes' third failure
        assert store.status()["state"] == "down" and store.status()["last_error"]
        redis_server.start()  # an empty Redis on the same port: the ledger sends the batch again
        deadline = time.monotonic() + 30
        while not await store.write(batch):  # the link waits out its back-off before asking again
            assert time.monotonic() < deadline, store.status()
            await asyncio.sleep(0.05)
        assert await store.write(batch)
        await assert_usage_once(store, t)
        assert store.status() == {"backend": "redis", "state": "ok", "url": redis_server.url}

    run(make, check)


def test_a_hung_redis_fails_a_write_and_close_returns(redis_server):
    minute = clock().minute

    async def check(store: UsageStore) -> None:
        assert await store.write(Batch("a:1", rates={("k", minute): [1, 1]}))
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        assert not await store.write(Batch("a:2", rates={("k", minute): [1, 1]}))  # then close(), still hung

    try:
        run(lambda: RedisUsageStore(redis_server.url, 400, timeout_s=0.2), check)
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


def test_status_and_the_factory(tmp_path, redis_server):
    path = str(tmp_path / "usage.sqlite3")
    local = make_usage_store(None, UsageSettings(path=path, retention_days=9))
    assert isinstance(local, SqliteUsageStore) and not local.shared and local.retention_days == 9
    remote = make_usage_store(redis_server.url.replace("redis://", "redis://:secret@"), UsageSettings())
    assert isinstance(remote, RedisUsageStore) and remote.shared

    async def check() -> None:
        await local.start()
        assert local.status() == {"backend": "sqlite", "state": "ok", "path": path}
        await local.close()
        assert remote.status() == {"backend": "redis", "state": "starting", "url": redis_server.url}
        await remote.close()

    asyncio.run(check())
    assert Path(path).exists()


def test_recent_failovers_are_kept_newest_first_and_only_the_last_fifty(make):
    t = clock()
    first = Batch("a:1", failovers=[b'{"n":%d}' % n for n in range(30)])
    failed_over = [1, 1, 0, 1, 0, 0, 0, 0, 1, 0]
    second = Batch("a:2", usage={(t.m1, CRM): failed_over}, failovers=[b'{"n":%d}' % n for n in range(30, 60)])

    async def check(store: UsageStore) -> None:
        assert await store.recent_failovers() == []
        assert await store.write(first) and await store.write(second)
        assert await store.write(second)  # sent again after a lost answer: kept once
        assert await store.recent_failovers() == [b'{"n":%d}' % n for n in range(59, 9, -1)]
        rows = await store.rows("1m", t.m1 * 60, t.m1 * 60 + 60)
        assert rows == [(t.m1 * 60, CRM, failed_over)]  # its failover counted

    run(make, check)


def test_a_file_from_before_the_failover_and_error_counters_gets_them(tmp_path):
    path = tmp_path / "usage.sqlite3"
    old_counters = ("requests", "input", "cached", "output", "cost_in", "cost_out", "unpriced", "estimated")
    with sqlite3.connect(path) as db:
        dims = ", ".join(f'"{name}" TEXT NOT NULL' for name in DIMENSIONS)
        counters = ", ".join(f'"{name}" INTEGER NOT NULL' for name in old_counters)
        keys = ", ".join(f'"{name}"' for name in DIMENSIONS)
        db.execute(
            f"CREATE TABLE usage (width TEXT NOT NULL, bucket INTEGER NOT NULL, {dims}, {counters},"
            f" PRIMARY KEY (width, bucket, {keys})) WITHOUT ROWID"
        )
        db.execute(
            f"INSERT INTO usage VALUES ('1d', 0, {', '.join('?' * 15)})",
            ("k", "p", "", "openai", "m", "pm", "chat", 1, 2, 0, 3, 4, 5, 0, 0),
        )
    t = clock()

    async def check(store: UsageStore) -> None:
        assert await store.rows("1d", 0, 86400) == [
            (0, ("k", "p", None, "openai", "m", "pm", "chat"), [1, 2, 0, 3, 4, 5, 0, 0, 0, 0])
        ]
        assert await store.write(Batch("a:1", usage={(t.m1, CRM): [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]}))

    run(lambda: SqliteUsageStore(str(path), 40000), check)
