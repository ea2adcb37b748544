"""The ledger against a real Redis: nothing settled is lost at shutdown, whatever was in transit."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from gateway.accounting.ledger import Ledger
from gateway.accounting.redis_store import RedisUsageStore
from gateway.accounting.usage import Tokens

DIMS = ("crm-tool", "crm", None, "openai", "gpt-4o-mini", "gpt-4o-mini", "/chat/completions")


def test_close_sends_what_piled_up_behind_a_batch_in_transit(redis_server):
    async def scenario() -> int:
        ledger = Ledger(RedisUsageStore(redis_server.url, 400, timeout_s=0.2), "replica")
        await ledger.store.start()  # no flusher: the test says when to flush
        minute = int(time.time() // 60)
        ledger.add(minute, DIMS, Tokens(10, 0, 5), (100, 200), False, False)
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            assert not await ledger.flush()  # Redis hangs: that batch stays in transit
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        ledger.add(minute, DIMS, Tokens(10, 0, 5), (100, 200), False, False)  # settled meanwhile
        ledger.store.link.paused_until = ledger.store.reader.paused_until = 0.0  # its backoff, over at once
        await ledger.close()
        reader = RedisUsageStore(redis_server.url, 400)
        await reader.start()
        try:
            rows = await reader.rows("1d", minute * 60 - 86400, minute * 60 + 60)
        finally:
            await reader.close()
        assert rows is not None
        return sum(counters[0] for _, _, counters in rows)

    assert asyncio.run(scenario()) == 2


def test_a_flush_sends_what_piled_up_until_it_began_not_what_settles_while_it_writes(redis_server):
    """Else, under load, the flusher writes a batch for every few requests instead of one a tick."""

    async def stored(store: RedisUsageStore, minute: int) -> int:
        rows = await store.rows("1d", minute * 60 - 86400, minute * 60 + 60)
        assert rows is not None
        return sum(counters[0] for _, _, counters in rows)

    async def scenario() -> tuple[int, int]:
        ledger = Ledger(RedisUsageStore(redis_server.url, 400), "replica")
        await ledger.store.start()
        minute = int(time.time() // 60)
        ledger.add(minute, DIMS, Tokens(10, 0, 5), (100, 200), False, False)
        flushing = asyncio.create_task(ledger.flush())
        await asyncio.sleep(0)  # the flush is writing to Redis now
        ledger.add(minute, DIMS, Tokens(10, 0, 5), (100, 200), False, False)
        assert await flushing
        first = await stored(ledger.store, minute)
        assert await ledger.flush()  # the next tick takes it
        second = await stored(ledger.store, minute)
        await ledger.store.close()
        return first, second

    assert asyncio.run(scenario()) == (1, 2)
