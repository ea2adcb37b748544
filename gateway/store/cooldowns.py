"""Cooldowns on Redis, shared by every replica, behind the in-process view the hot path reads.

`get` reads the local view and never does I/O; `set` and `clear` change it at once and are written
through in the background (store.redis.WriteBehind). A poller reads one version counter every
`poll_s` and reloads the view when another replica changed it, so a provider benched anywhere is
skipped everywhere within about 50 ms.

Layout (every key under the hash tag `{gateway}`, one Cluster slot; see store.redis):
`{gateway}:cooldown:<key>` holds the JSON value with TTL = cooldown (plus the recovery window);
the set `{gateway}:cooldown-keys` indexes them (no SCAN over a shared keyspace); the counter
`{gateway}:cooldown-version` is bumped on every change; `{gateway}:probe:<key>` is a probe lock;
the sorted set `{gateway}:gateways` holds each running gateway's last check-in (Redis's own clock),
so `gateway cooldown` can say whether anybody will see what it writes.
The extend-only script writes a value, the index and the counter together and a clear deletes
the three in one transaction, which is why they must share a slot.

Writes are extend-only (a Lua compare of `until`): a late, shorter cooldown never un-benches a
provider that another replica, or an earlier answer, benched for longer. Only an operator's
`replace` or `clear` and a successful probe may shorten one.

When Redis comes back (or its version counter goes back, as after a flush or restart), this
replica's active cooldowns are written back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from gateway.store import layout
from gateway.store.base import Cooldown
from gateway.store.layout import CHECK_IN_S, GATEWAYS, INDEX, VERSION, cooldown_key, probe_key
from gateway.store.memory import MemoryStore
from gateway.store.redis import GONE, Poller, RedisLink, WriteBehind, stop

log = logging.getLogger("gateway.store")


@dataclass(frozen=True, slots=True)
class _Replace:
    """A pending write that may shorten what Redis holds, unlike a failure's: an operator's, or one after a clear."""

    cooldown: Cooldown


class RedisCooldowns(MemoryStore):
    backend = "redis"

    def __init__(self, url: str, *, timeout_s: float = 0.05, poll_s: float = 0.05, resync_s: float = 1.0) -> None:
        super().__init__()
        self.link = RedisLink(url, timeout_s=timeout_s)
        self.link.on_back = self._give_back
        self._resync_s = resync_s
        # Probe lock tokens: this replica, then a count, so that a late release frees only its own claim.
        self._token = secrets.token_hex(8)
        self._claims = itertools.count()
        self._held: dict[str, str] = {}  # key -> the token of the lock this replica holds
        self._released: dict[str, str] = {}  # key -> the token of the last lock it let go
        # Local changes Redis has not confirmed: None is a clear. They win over what a reload reads meanwhile.
        self._writes = WriteBehind(self.link, self._write)
        self._poller = Poller(self.link, self._sync_once, poll_s, "cooldown sync")
        self._seen_version: int | None = None
        self._last_full = 0.0
        self._checked_in = 0.0
        self._synced = asyncio.Event()  # the view has been read from Redis once (or Redis is down)
        self._extend = self._claim = self._release = self._check_in = self._checked_in_count = None

    # -- the contract -------------------------------------------------------------------------

    def set(self, key: str, cooldown: Cooldown) -> None:
        super().set(key, cooldown)
        # After an unflushed clear or replace, Redis may still hold the old entry: only a replace
        # gets this one past it (a probe's success, then pacing, in the same answer).
        earlier = self._writes.pending.get(key, GONE)
        self._writes.put(key, _Replace(cooldown) if earlier is None or isinstance(earlier, _Replace) else cooldown)

    def clear(self, key: str) -> None:
        super().clear(key)
        self._writes.put(key, None)

    def replace(self, key: str, cooldown: Cooldown) -> None:
        super().replace(key, cooldown)
        self._writes.put(key, _Replace(cooldown))

    async def claim_probe(self, key: str, ttl_s: float) -> bool:
        # A lock seen here (ours, or another replica's) answers without asking Redis again.
        if not self._claim_locally(key, ttl_s):
            return False
        token = f"{self._token}:{next(self._claims)}"
        self._held[key] = token
        keys, args = [probe_key(key)], [token, int(ttl_s * 1000), self._released.get(key, "")]
        try:
            held_ms = await self.link.call(lambda _redis: self._claim(keys=keys, args=args))
        except BaseException:  # cancelled mid-claim: the lock may be ours in Redis, so give it back
            self.release_probe(key)
            raise
        # None: Redis is out, so probe from this replica alone rather than never (one per replica).
        if held_ms is None or held_ms == -1:
            return True
        del self._held[key]  # another replica's: remember how long it holds it, and ask again after
        self._probes[key] = time.monotonic() + max(int(held_ms), 10) / 1000
        return False

    def release_probe(self, key: str) -> None:
        if self._probes.pop(key, None) is None or (token := self._held.pop(key, None)) is None:
            return
        self._released[key] = token
        keys, args = [probe_key(key)], [token]
        self.link.call_soon(lambda _redis: self._release(keys=keys, args=args))  # else it expires by its TTL

    def status(self) -> dict[str, Any]:
        status = {"backend": self.backend, **self.link.status()}
        if self._writes.pending:
            status["unsynced"] = len(self._writes.pending)
        return status

    async def start(self) -> None:
        self.connect()
        self._poller.start()

    async def synced(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout_s)

    async def close(self) -> None:
        if self._checked_in:  # a gateway that stops is not counted any more
            await self.link.call(lambda r: r.zrem(GATEWAYS, self._token))
        await stop(self.link, self._poller.task(), self._writes.task())

    # -- one-off use (the CLI, the doctor): no poller -------------------------------------------

    def connect(self) -> None:
        self.link.connect()
        self._extend = self.link.script(layout.EXTEND)
        self._claim = self.link.script(layout.CLAIM)
        self._release = self.link.script(layout.RELEASE)
        self._check_in = self.link.script(layout.CHECK_IN)
        self._checked_in_count = self.link.script(layout.CHECKED_IN)

    async def flush(self) -> bool:
        """Write every local change Redis has not confirmed yet, now; True when none is left."""
        return await self._writes.flush()

    async def gateways(self, within_s: float = 10.0) -> int | None:
        """How many gateways checked in within `within_s` (None: Redis did not answer)."""
        return await self.link.call(lambda _r: self._checked_in_count(keys=[GATEWAYS], args=[within_s]))

    async def apply_now(self, key: str, cooldown: Cooldown | None) -> bool:
        """Clear (None) or replace one cooldown in Redis and wait for the answer."""
        return await self._write(key, None if cooldown is None else _Replace(cooldown))

    async def load(self) -> bool:
        """Read every cooldown from Redis once, into the view; False when Redis did not answer."""
        raw = await self.link.call(lambda r: r.get(VERSION))
        if self.link.state != "ok":
            return False
        return await self._reload(int(raw) if raw is not None else 0)

    # -- writing ------------------------------------------------------------------------------

    def _give_back(self) -> None:
        """Redis may have restarted or been flushed: give back what this replica knows (extend-only)."""
        for name, cooldown in self.active(time.time()).items():
            self._writes.pending.setdefault(name, cooldown)
        self._writes.kick()

    async def _write(self, name: str, value: Cooldown | _Replace | None) -> bool:
        if value is None:
            return await self._delete(name)
        if isinstance(value, _Replace):
            return await self._delete(name) and await self._push(name, value.cooldown)
        return await self._push(name, value)

    async def _push(self, name: str, cooldown: Cooldown) -> bool:
        ttl_ms = int((cooldown.expires - time.time()) * 1000)
        if ttl_ms <= 0:
            return True  # expired while waiting: nothing left to share
        keys = [cooldown_key(name), INDEX, VERSION]
        args = [orjson.dumps(asdict(cooldown)), ttl_ms, name, repr(cooldown.until)]
        return await self.link.call(lambda _redis: self._extend(keys=keys, args=args)) is not None

    async def _delete(self, name: str) -> bool:
        async def call(redis: Any) -> Any:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(cooldown_key(name))
                pipe.srem(INDEX, name)
                pipe.incr(VERSION)
                return await pipe.execute()

        return await self.link.call(call) is not None

    # -- reading ------------------------------------------------------------------------------

    async def _sync_once(self) -> None:
        raw = await self.link.call(lambda r: r.get(VERSION))
        if self.link.state != "ok":
            if self.link.state == "down":
                self._synced.set()  # nothing more to wait for: the local view is what there is
            return
        version = int(raw) if raw is not None else 0
        if self._seen_version is not None and version < self._seen_version:
            self._give_back()  # the counter went back: Redis lost its data
        if self._writes.pending:
            self._writes.kick()
        now = time.monotonic()
        if (version != self._seen_version or now - self._last_full >= self._resync_s) and await self._reload(version):
            self._last_full = now
        if now - self._checked_in >= CHECK_IN_S:
            self._checked_in = now
            await self.link.call(lambda _r: self._check_in(keys=[GATEWAYS], args=[self._token]))

    async def _reload(self, version: int) -> bool:
        pending = self._writes.pending
        in_flight = set(pending)  # changes that may land while this reload reads
        members = await self.link.call(lambda r: r.smembers(INDEX))
        if members is None:
            return False
        names = sorted(m.decode() for m in members)

        async def fetch(redis: Any) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(cooldown_key(name))
                    pipe.pttl(cooldown_key(name))
                return await pipe.execute()

        replies = await self.link.call(fetch) if names else []
        if replies is None:
            return False
        now = time.time()
        view: dict[str, Cooldown] = {}
        expired: list[str] = []
        for name, raw, ttl_ms in zip(names, replies[0::2], replies[1::2], strict=True):
            cooldown = _decode(name, raw, ttl_ms, now)
            if cooldown is None:
                expired.append(name)
            else:
                view[name] = cooldown
        for name in in_flight | set(pending):  # local changes not yet confirmed win
            if (local := self._view.get(name)) is not None:
                view[name] = local
            else:
                view.pop(name, None)
        gone = self._view.keys() - view.keys()
        self._view = view
        for name in gone:  # cleared elsewhere: a probe that succeeded, an operator, or its time is up
            self.on_cleared(name)
        self._seen_version = version
        self._synced.set()
        if expired:
            await self.link.call(lambda r: r.srem(INDEX, *expired))
        return True


def _decode(name: str, raw: bytes | None, ttl_ms: int | None, now: float) -> Cooldown | None:
    """A cooldown read back from Redis; None when gone or unreadable (logged, never fatal)."""
    if raw is None or ttl_ms is None or ttl_ms <= 0:
        return None
    try:
        doc = orjson.loads(raw)
        # The TTL is the truth; times from it are immune to clock skew between replicas.
        end = now + ttl_ms / 1000
        probe_until = float(doc.get("probe_until") or 0.0)
        recovery_s = max(0.0, probe_until - float(doc["until"])) if probe_until else 0.0
        reason, detail, since = str(doc["reason"]), str(doc.get("detail", "")), float(doc.get("since", now))
        return Cooldown(reason, detail, since, end - recovery_s, end if recovery_s else 0.0)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        log.warning("ignoring unreadable cooldown %r in redis", name)
        return None
