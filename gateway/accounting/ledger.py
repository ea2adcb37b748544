"""Every request's usage, added up in memory on the request path and handed to a store in batches.

The request path only adds to dicts (no I/O, no lock: everything runs on the event loop). A flusher
hands what piled up to the store every `FLUSH_S` as one batch with an id; the store applies a batch
at most once, so a batch whose answer was lost is sent again, unchanged, until it is confirmed
(while Redis is away, new usage keeps piling up beside it: nothing is lost, nothing counted twice).

The ledger also keeps what budgets and rate limits read, without I/O: spend per key and provider
per period (UTC day, calendar month), and requests and tokens per key per minute. With Redis
those are the totals of every replica, read back every `FLUSH_S`, plus what this replica has not
had confirmed yet; without it they are this process's, started from the SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.accounting.usage import Dims, Tokens

log = logging.getLogger("gateway.accounting")
FLUSH_S = 0.1
RECENT_FAILOVERS = 50  # kept for the dashboard, across replicas when the store is shared
SpendKey = tuple[str, str, str]  # ("key" | "provider", name, period)
RateKey = tuple[str, int]  # (key name, minute)
Row = tuple[int, Dims, list[int]]  # (bucket start, epoch seconds; dims; COUNTERS)


@functools.lru_cache(maxsize=4)  # asked for every charged request; it changes once a minute
def periods(minute: int) -> tuple[str, str]:
    """The UTC day and calendar month a minute falls in: `d20261129`, `m202611`."""
    day = time.gmtime(minute * 60)
    return f"d{day.tm_year:04d}{day.tm_mon:02d}{day.tm_mday:02d}", f"m{day.tm_year:04d}{day.tm_mon:02d}"


@dataclass
class Batch:
    id: str
    usage: dict[tuple[int, Dims], list[int]] = field(default_factory=dict)  # (minute, dims) -> COUNTERS
    spend: dict[SpendKey, int] = field(default_factory=dict)  # nano-dollars
    rates: dict[RateKey, list[int]] = field(default_factory=dict)  # [requests, tokens]
    # Requests that skipped a provider, oldest first, the last RECENT_FAILOVERS: each noted as how to make
    # its JSON, made only when the batch is sealed to leave (under load most are dropped, never made).
    noted: deque[Callable[[], bytes]] = field(default_factory=lambda: deque(maxlen=RECENT_FAILOVERS))
    failovers: list[bytes] = field(default_factory=list)  # their JSON, once sealed

    def empty(self) -> bool:
        return not (self.usage or self.spend or self.rates or self.noted or self.failovers)

    def seal(self) -> None:
        self.failovers += [entry() for entry in self.noted]
        self.noted.clear()


@dataclass
class Totals:
    """What every replica has stored, as read back from a shared store."""

    spend: dict[SpendKey, int]
    rates: dict[RateKey, list[int]]


class UsageStore(Protocol):
    shared: bool  # other replicas write to it too: its totals replace the local view

    async def write(self, batch: Batch) -> bool:
        """Apply a batch at most once (by its id); True once it is stored."""
        ...

    async def totals(self, spend_periods: list[str], minute: int) -> Totals | None:
        """Spend in those periods and this minute's rates, for every key and provider; None: unknown now."""
        ...

    async def rows(self, width: str, start: int, end: int) -> list[Row] | None:
        """Counters in buckets of `width` ("1d", "1h", "1m") that start in [start, end) (epoch seconds,
        UTC); None when the store cannot be read now. What is not yet written is not included."""
        ...

    async def recent_failovers(self) -> list[bytes] | None:
        """The last RECENT_FAILOVERS requests that skipped a provider (JSON), newest first; None: unknown now."""
        ...

    def status(self) -> dict[str, Any]:
        """For /health: {"backend": "redis" | "sqlite", "state": ..., plus where it is}."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Ledger:
    def __init__(self, store: UsageStore, replica: str) -> None:
        self.store = store
        self._replica = replica
        self._sequence = 0
        self._pending = Batch(self._next_id())
        self._in_transit: Batch | None = None  # sent, not yet confirmed: sent again as it is
        self._spent: dict[SpendKey, int] = {}  # stored totals, as last known
        self._rates: dict[RateKey, list[int]] = {}
        self._confirmed = 0  # batches confirmed: a read of totals begun before one is stale
        self._pruned = -1
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.on_totals: Callable[[], None] = lambda: None  # the totals were read (budgets check them)
        self.reads_totals = True  # False: no budget or rate limit is configured, so nobody reads them
        self.on_batch: Callable[[Batch], None] = lambda _batch: None  # a batch is complete (metrics count it)

    def _next_id(self) -> str:
        self._sequence += 1
        return f"{self._replica}:{self._sequence}"

    # -- the request path: dict updates only ------------------------------------------------------

    def count_request(self, key: str, minute: int) -> None:
        """A request admitted for a key with a rate limit: it counts at once, so parallel ones see it."""
        rates = self._pending.rates.get((key, minute))
        if rates is None:
            rates = self._pending.rates[(key, minute)] = [0, 0]
        rates[0] += 1

    def count_unserved(self, minute: int, dims: Dims) -> None:
        """A request the gateway could not serve (dims name no provider: usage.UNSERVED)."""
        counters = self._counters(minute, dims)
        counters[9] += 1

    def note_failover(self, entry: Callable[[], bytes]) -> None:
        """A request that skipped a provider, for the dashboard's recent failovers: `entry()` makes its JSON."""
        self._pending.noted.append(entry)  # past RECENT_FAILOVERS the oldest goes: only the last ones are kept

    def _counters(self, minute: int, dims: Dims) -> list[int]:
        usage = self._pending.usage
        counters = usage.get((minute, dims))
        if counters is None:
            counters = usage[(minute, dims)] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        return counters

    def add(
        self,
        minute: int,
        dims: Dims,
        tokens: Tokens,
        cost: tuple[int, int] | None,
        estimated: bool,
        rated: bool,
        failover: bool = False,
        error: bool = False,
    ) -> None:
        """Count a served request. `rated`: its key has a rate limit, so its tokens count towards it.
        `failover`: another provider was skipped first; `error`: it broke after it was served."""
        counters = self._counters(minute, dims)
        counters[0] += 1
        if failover:
            counters[8] += 1
        if error:
            counters[9] += 1
        counters[1] += tokens.input
        counters[2] += tokens.cached
        counters[3] += tokens.output
        if cost is None:
            counters[6] += 1
        else:
            counters[4] += cost[0]
            counters[5] += cost[1]
            nano = cost[0] + cost[1]
            if nano:  # spend is kept for every key and provider: a budget added by a reload sees the period's
                spend = self._pending.spend
                key, provider = dims[0], dims[3]
                for period in periods(minute):
                    if key is not None:
                        entry = ("key", key, period)
                        spend[entry] = spend.get(entry, 0) + nano
                    entry = ("provider", provider, period)
                    spend[entry] = spend.get(entry, 0) + nano
        if estimated:
            counters[7] += 1
        if rated:
            rates = self._pending.rates.get((dims[0], minute))  # type: ignore[arg-type]
            if rates is None:
                rates = self._pending.rates[(dims[0], minute)] = [0, 0]  # type: ignore[index]
            rates[1] += tokens.input + tokens.output

    # -- what limits read ---------------------------------------------------------------------

    def spent(self, kind: str, name: str, period: str) -> int:
        """Nano-dollars spent in a period: stored, plus this replica's not yet confirmed."""
        key = (kind, name, period)
        total = self._spent.get(key, 0) + self._pending.spend.get(key, 0)
        if self._in_transit is not None:
            total += self._in_transit.spend.get(key, 0)
        return total

    def rate(self, key: str, minute: int) -> tuple[int, int]:
        """Requests and tokens of a key in a minute, across replicas (as last read) and here."""
        stored = self._rates.get((key, minute))
        pending = self._pending.rates.get((key, minute))
        moving = self._in_transit.rates.get((key, minute)) if self._in_transit is not None else None
        requests = (stored[0] if stored else 0) + (pending[0] if pending else 0) + (moving[0] if moving else 0)
        tokens = (stored[1] if stored else 0) + (pending[1] if pending else 0) + (moving[1] if moving else 0)
        return requests, tokens

    # -- the flusher --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self._read_totals()
        self._task = asyncio.get_running_loop().create_task(self._flush_forever(), name="usage-flush")

    async def close(self) -> None:
        """Flush what is left (a bounded wait), then stop."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                for _ in range(40):  # all of it, or the time is up (a store that is down is asked again)
                    if await self.flush() and self._pending.empty():
                        break
                    await asyncio.sleep(0.05)
        await self.store.close()

    async def _flush_forever(self) -> None:
        while not self._closing:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
                if self.store.shared and self.reads_totals:  # else the view here is the whole truth already
                    await self._read_totals()
                self.on_totals()
            except Exception:  # a store's failure must not end accounting for good
                log.exception("usage flush failed; retrying")

    def _prune(self, minute: int) -> None:
        """Forget rates and spend of past minutes and periods (once a minute): no limit reads them again."""
        if minute == self._pruned:
            return
        self._pruned = minute
        current = periods(minute)
        self._rates = {key: value for key, value in self._rates.items() if key[1] >= minute - 1}
        self._spent = {key: value for key, value in self._spent.items() if key[2] in current}

    async def flush(self) -> bool:
        """Send the batch in transit, if any, then what piled up until now: at most two batches, so
        that under load the flusher sends one batch a tick, not one for every few requests that
        settle while it writes. True when both are confirmed."""
        self._prune(int(time.time() // 60))
        if self._in_transit is not None and not await self._send(self._in_transit):
            return False  # kept, and sent again as it is: the store applies an id once
        if self._pending.empty():
            return True
        self._in_transit, self._pending = self._pending, Batch(self._next_id())
        self._in_transit.seal()
        self.on_batch(self._in_transit)
        return await self._send(self._in_transit)

    async def _send(self, batch: Batch) -> bool:
        if not await self.store.write(batch):
            return False
        self._in_transit = None
        self._confirmed += 1
        for key, nano in batch.spend.items():  # until the next read of totals says it all
            self._spent[key] = self._spent.get(key, 0) + nano
        for key, (requests, tokens) in batch.rates.items():
            stored = self._rates.setdefault(key, [0, 0])
            stored[0] += requests
            stored[1] += tokens
        return True

    async def _read_totals(self) -> None:
        minute = int(time.time() // 60)
        confirmed = self._confirmed
        totals = await self.store.totals(list(periods(minute)), minute)
        if totals is None or confirmed != self._confirmed:  # unreadable now, or a batch landed meanwhile
            return
        self._spent = totals.spend
        self._rates = {key: value for key, value in totals.rates.items() if key[1] >= minute - 1}
