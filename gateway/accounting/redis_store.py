"""The usage store on Redis, written by every replica: counters, spend and rates add up across them.

Layout (every key under the hash tag `{gateway}`, one Cluster slot; see store.redis):

- `{gateway}:usage:d:<YYYYMMDD>`, `…:usage:h:<YYYYMMDDHH>`, `…:usage:m:<YYYYMMDDHHMM>` (UTC): one hash
  per bucket, field `<counter>:<dims>` where counter is a name of usage.COUNTERS and dims the JSON
  array of the seven dimensions (None is null; JSON escapes every control character, so any value a
  client sends stays one field), value the count (HINCRBY). A counter that is 0 is not written,
  except `requests`, so every dims seen in a bucket has a field.
- `{gateway}:spend:<period>` (`d20261129`, `m202611`): field `key:<name>` or `provider:<name>`,
  nano-dollars.
- `{gateway}:rate:<minute>` (epoch minute): fields `r:<key>` (requests) and `t:<key>` (tokens).
- `{gateway}:usage-batch:<batch id>`: set when a batch is applied, kept a day.
- `{gateway}:failovers`: a list of the last requests that skipped a provider (JSON), newest first.

One Lua script applies a whole batch only if its marker is new, so a batch sent again after a lost
answer counts once, and sets every key's expiry (EXPIREAT, from the bucket or period start, so every
writer sets the same one; retention: see gateway.accounting). Its arguments are flat: the marker's
TTL, the number of failover entries, the entries, how many the list keeps and for how long, then for each key after
the marker and the list: the number of fields, the expiry, then field, increment, ….
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson

from gateway.accounting import (
    BATCH_MARK_KEPT_S,
    RATE_MINUTES_KEPT,
    WIDTHS,
    buckets,
    kept_s,
    period_expiry,
)
from gateway.accounting.ledger import RECENT_FAILOVERS, Batch, Row, SpendKey, Totals
from gateway.accounting.usage import COUNTERS, DIMENSIONS, Dims
from gateway.store.redis import RedisLink, key

log = logging.getLogger("gateway.accounting")

APPLY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local recent = tonumber(ARGV[2])
for j = 3, 2 + recent do
  redis.call('LPUSH', KEYS[2], ARGV[j])
end
if recent > 0 then
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3 + recent]) - 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4 + recent])
end
local at = 5 + recent
for i = 3, #KEYS do
  local fields = tonumber(ARGV[at])
  local expires = ARGV[at + 1]
  at = at + 2
  for j = at, at + 2 * fields - 1, 2 do
    redis.call('HINCRBY', KEYS[i], ARGV[j], ARGV[j + 1])
  end
  at = at + 2 * fields
  redis.call('EXPIREAT', KEYS[i], expires)
end
return 1
"""
TIME_FORMATS = {"1d": ("d", "%Y%m%d"), "1h": ("h", "%Y%m%d%H"), "1m": ("m", "%Y%m%d%H%M")}
COUNTER_INDEX = {name.encode(): index for index, name in enumerate(COUNTERS)}


def usage_key(width: str, start: int) -> str:
    letter, form = TIME_FORMATS[width]
    return key("usage", letter, time.strftime(form, time.gmtime(start)))


def spend_key(period: str) -> str:
    return key("spend", period)


def rate_key(minute: int) -> str:
    return key("rate", str(minute))


def batch_key(batch_id: str) -> str:
    return key("usage-batch", batch_id)


FAILOVERS_KEY = key("failovers")  # a list, newest first, of the last RECENT_FAILOVERS across replicas
FAILOVERS_KEPT_S = 2 * 86400  # a quiet gateway's list goes, as its minute buckets do


class RedisUsageStore:
    shared = True

    def __init__(self, url: str, retention_days: int, *, timeout_s: float = 0.5) -> None:
        # Its own link: a slow rows() read must not pause the cooldown store's, nor the reverse.
        self.link = RedisLink(url, timeout_s=timeout_s)
        # Reading pages of usage (the API, the CLI) on a link of its own, with a longer deadline: a
        # large day read slowly must not pause the writes and the totals that limits depend on.
        self.reader = RedisLink(url, timeout_s=max(timeout_s, 5.0))
        self.retention_days = retention_days
        self._apply: Any = None

    async def start(self) -> None:
        self.link.connect()  # lazy: a gateway started while Redis is down starts all the same
        self.reader.connect()
        self._apply = self.link.script(APPLY)

    async def close(self) -> None:
        self.link.closing = self.reader.closing = True  # calls answer None from now on
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):  # a hung Redis must not hold the gateway's shutdown
                await self.link.close()
                await self.reader.close()

    def status(self) -> dict[str, Any]:
        return {"backend": "redis", **self.link.status()}

    async def write(self, batch: Batch) -> bool:
        if batch.empty():
            return True
        try:
            keys, args = self._encode(batch)
        except (ValueError, OverflowError, OSError) as exc:  # a minute out of any clock's range
            log.warning("usage batch %s cannot be stored: %s", batch.id, exc)
            return False
        # 1: applied now; 0: applied before (an answer was lost); None: not stored, send it again.
        return await self.link.call(lambda _redis: self._apply(keys=keys, args=args)) is not None

    def _encode(self, batch: Batch) -> tuple[list[str], list[Any]]:
        keys: list[str] = [batch_key(batch.id), FAILOVERS_KEY]
        args: list[Any] = [
            BATCH_MARK_KEPT_S,
            len(batch.failovers),
            *batch.failovers,
            RECENT_FAILOVERS,
            FAILOVERS_KEPT_S,
        ]
        hashes: dict[str, tuple[int, list[Any]]] = {}  # key -> (expiry, [field, increment, ...])

        def add(name: str, expires: int, field: str, value: int) -> None:
            entry = hashes.get(name)
            if entry is None:
                entry = hashes[name] = (expires, [])
            entry[1].extend((field, value))

        encoded: dict[Dims, str] = {}
        for (width, start, dims), counters in buckets(batch.usage).items():
            name, expires = usage_key(width, start), start + kept_s(width, self.retention_days)
            text = encoded.get(dims)
            if text is None:
                text = encoded[dims] = orjson.dumps(dims).decode()
            for counter, value in zip(COUNTERS, counters, strict=True):
                if value or counter == "requests":
                    add(name, expires, f"{counter}:{text}", value)
        for (kind, name, period), nano in batch.spend.items():
            if nano:
                add(spend_key(period), period_expiry(period), f"{kind}:{name}", nano)
        for (name, minute), (requests, tokens) in batch.rates.items():
            expires = (minute + RATE_MINUTES_KEPT) * 60
            if requests:
                add(rate_key(minute), expires, f"r:{name}", requests)
            if tokens:
                add(rate_key(minute), expires, f"t:{name}", tokens)
        for name, (expires, fields) in hashes.items():
            keys.append(name)
            args.extend((len(fields) // 2, expires, *fields))
        return keys, args

    async def totals(self, spend_periods: list[str], minute: int) -> Totals | None:
        periods = list(spend_periods)
        minutes = (minute, minute - 1)

        async def read(redis: Any) -> Any:
            async with redis.pipeline(transaction=True) as pipe:  # one moment's totals, not a mix
                for period in periods:
                    pipe.hgetall(spend_key(period))
                for at in minutes:
                    pipe.hgetall(rate_key(at))
                return await pipe.execute()

        replies = await self.link.call(read)
        if replies is None:
            return None
        try:
            return _decode_totals(periods, minutes, replies)
        except ValueError as exc:  # a field another writer left: unknown, rather than a wrong total
            log.warning("unreadable spend or rates in redis: %s", exc)
            return None

    async def rows(self, width: str, start: int, end: int) -> list[Row] | None:
        seconds = WIDTHS.get(width)
        if seconds is None:
            return None
        # Only buckets that can exist: none is kept past its retention, none written far ahead of now
        # (a replica's clock may run a little fast). This bounds the keys read to retention / width.
        now = int(time.time())
        start = max(start, now - kept_s(width, self.retention_days) - seconds)
        end = min(end, now - now % seconds + 2 * seconds)
        starts = list(range(-(-start // seconds) * seconds, end, seconds))
        if not starts:
            return []

        async def read(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                for at in starts:
                    pipe.hgetall(usage_key(width, at))
                return await pipe.execute()

        replies = await self.reader.call(read)
        if replies is None:
            return None
        try:
            return _decode_rows(starts, replies)
        except ValueError as exc:
            log.warning("unreadable usage in redis: %s", exc)
            return None

    async def recent_failovers(self) -> list[bytes] | None:
        return await self.reader.call(lambda redis: redis.lrange(FAILOVERS_KEY, 0, RECENT_FAILOVERS - 1))


def _decode_totals(periods: list[str], minutes: tuple[int, int], replies: list[dict[bytes, bytes]]) -> Totals:
    spend: dict[SpendKey, int] = {}
    for period, fields in zip(periods, replies, strict=False):
        for field, value in fields.items():
            kind, _, name = field.decode().partition(":")
            spend[(kind, name, period)] = int(value)
    rates: dict[tuple[str, int], list[int]] = {}
    for at, fields in zip(minutes, replies[len(periods) :], strict=True):
        for field, value in fields.items():
            which, _, name = field.decode().partition(":")
            if which in ("r", "t"):
                rates.setdefault((name, at), [0, 0])[0 if which == "r" else 1] += int(value)
    return Totals(spend, rates)


def _decode_rows(starts: list[int], replies: list[dict[bytes, bytes]]) -> list[Row]:
    rows: list[Row] = []
    parsed: dict[bytes, Dims | None] = {}
    for at, fields in zip(starts, replies, strict=True):
        by_dims: dict[bytes, list[int]] = {}
        for field, value in fields.items():
            counter, _, text = field.partition(b":")
            index = COUNTER_INDEX.get(counter)
            if index is None:
                continue
            counters = by_dims.get(text)
            if counters is None:
                counters = by_dims[text] = [0] * len(COUNTERS)
            counters[index] += int(value)
        for text, counters in by_dims.items():
            if text not in parsed:
                parsed[text] = _dims(text)
            dims = parsed[text]
            if dims is not None:
                rows.append((at, dims, counters))
    return rows


def _dims(text: bytes) -> Dims | None:
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        values = None
    if not isinstance(values, list) or len(values) != len(DIMENSIONS):
        log.warning("ignoring an unreadable usage field in redis: %r", text[:200])
        return None
    return tuple(values)  # type: ignore[return-value]
