"""The cooldown store: which provider is benched, why, and until when. The only module that uses redis.

Contract: `get` reads a local view and never does I/O, so the hot path pays no Redis round trip;
`set` and `clear` update the local view at once and write through to Redis in the background.
With Redis, a sync task polls a version counter every `poll_s` and reloads the view when another
replica changed it, so a provider benched anywhere is skipped everywhere within about 50 ms.

Redis layout (prefix `gateway:` by default): `cooldown:<key>` holds the JSON value with
TTL = cooldown (plus the recovery window, below); the set `cooldown-keys` indexes them (no SCAN
over a shared keyspace); the counter `cooldown-version` is bumped on every change.

Writes are extend-only (a Lua compare of `until`): a late, shorter cooldown never un-benches a
provider that another replica, or an earlier answer, benched for longer.

Recovery: a cooldown may carry `probe_until`. Between `until` and `probe_until` the provider is
recovering: the entry stays (TTL = until `probe_until`), and only the request that wins the probe
lock (`probe:<key>`, SET NX with a TTL, so a dead replica cannot hold it) reaches the provider.

Redis must never slow or fail a request: every call has a short timeout and no client-side
retries; after `max_errors` failures in a row the store stops asking for a while (growing) and
serves from its local view. Local changes Redis has not confirmed are kept and retried by one
flusher; when Redis comes back (or its version counter goes back, as after a flush or restart),
this replica's active cooldowns are written back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("gateway.cooldown")


@dataclass(frozen=True, slots=True)
class Cooldown:
    reason: str  # a FailureClass value
    detail: str  # short, redacted
    since: float  # epoch seconds
    until: float  # epoch seconds
    probe_until: float = 0.0  # after `until` and up to this, one probe request must succeed first

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    @property
    def expires(self) -> float:
        return max(self.until, self.probe_until)


class LocalStore:
    """In-process cooldowns: the whole store without Redis, and the local view with it."""

    backend = "memory"

    def __init__(self) -> None:
        self._view: dict[str, Cooldown] = {}
        self._probes: dict[str, float] = {}  # probe locks held or seen here: key -> monotonic expiry

    def get(self, key: str, now: float) -> Cooldown | None:
        """The key's cooldown, benched (`until > now`) or recovering; None when neither."""
        cooldown = self._view.get(key)
        if cooldown is None or cooldown.until > now or cooldown.probe_until > now:
            return cooldown
        del self._view[key]
        return None

    def active(self, now: float) -> dict[str, Cooldown]:
        return {key: cd for key, cd in self._view.items() if cd.expires > now}

    def _claim_locally(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        if self._probes.get(key, 0.0) > now:
            return False
        self._probes[key] = now + ttl_s
        return True

    async def claim_probe(self, key: str, ttl_s: float) -> bool:
        """Win the right to send the one probe request to a recovering provider, for `ttl_s` at most."""
        return self._claim_locally(key, ttl_s)

    def release_probe(self, key: str) -> None:
        self._probes.pop(key, None)

    def set(self, key: str, cooldown: Cooldown) -> None:
        self._view[key] = cooldown

    def clear(self, key: str) -> None:
        self._view.pop(key, None)

    def replace(self, key: str, cooldown: Cooldown) -> None:
        """An operator's word: this cooldown, shorter or longer than the one it replaces."""
        self._view[key] = cooldown

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "state": "ok"}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


# Extend-only write: a cooldown never replaces one already in Redis that benches until later
# (another replica's, or this one's from before a late answer), so concurrent failures cannot
# un-bench a provider. It compares `until`, as the local view does, not the TTL, which also holds
# the recovery window; a value without a readable `until` is judged by its TTL.
_EXTEND = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, doc = pcall(cjson.decode, current)
  local bench_end = ok and type(doc) == 'table' and tonumber(doc['until'])
  if bench_end then
    if bench_end >= tonumber(ARGV[4]) then return 0 end
  elseif redis.call('PTTL', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1
"""

# The probe lock: -1 when this caller won it, else how many ms the current holder keeps it.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
return redis.call('PTTL', KEYS[1])
"""
# Release only our own lock: a late release must not free a lock another replica took since.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore(LocalStore):
    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "gateway:",
        timeout_s: float = 0.05,
        poll_s: float = 0.05,
        max_errors: int = 3,
        resync_s: float = 1.0,
    ) -> None:
        super().__init__()
        self._url = url
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._max_errors = max_errors
        self._resync_s = resync_s
        self._key_prefix = f"{prefix}cooldown:"
        self._probe_prefix = f"{prefix}probe:"
        self._token = secrets.token_hex(8)  # this replica, as a probe lock holder
        self._index = f"{prefix}cooldown-keys"
        self._version_key = f"{prefix}cooldown-version"
        self._redis: Redis | None = None
        self._extend: Any = None
        self._claim: Any = None
        self._release: Any = None
        self._sync_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        # Local changes Redis has not confirmed yet, newest per key (None: a clear). Retried until
        # they land, and they win over what a reload reads meanwhile.
        self._pending: dict[str, Cooldown | _Replace | None] = {}
        self._errors = 0
        self._paused_until = 0.0
        self._pause_s = 1.0
        self._state = "starting"
        self._last_error = ""
        self._seen_version: int | None = None
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()

    # -- the contract -------------------------------------------------------------------------

    def set(self, key: str, cooldown: Cooldown) -> None:
        super().set(key, cooldown)
        # After an unflushed clear or replace, Redis may still hold the old entry: only a replace
        # gets this one past it (a probe's success, then pacing, in the same answer).
        earlier = self._pending.get(key, _GONE)
        self._pending[key] = _Replace(cooldown) if earlier is None or isinstance(earlier, _Replace) else cooldown
        self._kick_flush()

    def clear(self, key: str) -> None:
        super().clear(key)
        self._pending[key] = None
        self._kick_flush()

    def replace(self, key: str, cooldown: Cooldown) -> None:
        super().replace(key, cooldown)
        self._pending[key] = _Replace(cooldown)
        self._kick_flush()

    async def claim_probe(self, key: str, ttl_s: float) -> bool:
        # A lock seen here (ours, or another replica's) answers without asking Redis again.
        if not self._claim_locally(key, ttl_s):
            return False
        keys, args = [self._probe_prefix + key], [self._token, int(ttl_s * 1000)]
        try:
            held_ms = await self._call(lambda _redis: self._claim(keys=keys, args=args))
        except BaseException:  # cancelled mid-claim: the lock may be ours in Redis, so give it back
            self.release_probe(key)
            raise
        # None: Redis is out, so probe from this replica alone rather than never (one per replica).
        if held_ms is None or held_ms == -1:
            return True
        self._probes[key] = time.monotonic() + max(int(held_ms), 10) / 1000
        return False

    def release_probe(self, key: str) -> None:
        if self._probes.pop(key, None) is None or self._redis is None:
            return
        keys, args = [self._probe_prefix + key], [self._token]
        task = asyncio.get_running_loop().create_task(self._call(lambda _redis: self._release(keys=keys, args=args)))
        self._background.add(task)  # a lock left behind expires by its TTL anyway
        task.add_done_callback(self._background.discard)

    async def flush(self) -> bool:
        """Write every local change Redis has not confirmed yet, now; True when none is left."""
        if self._flush_task is not None and not self._flush_task.done():
            await self._flush_task
        await self._flush()
        return not self._pending

    async def apply_now(self, key: str, cooldown: Cooldown | None) -> bool:
        """Clear (None) or replace one cooldown in Redis and wait for the answer: for the CLI."""
        return await self._write(key, None if cooldown is None else _Replace(cooldown))

    async def load(self) -> bool:
        """Read every cooldown from Redis once, into the view (for the CLI); False when Redis did not answer."""
        raw = await self._call(lambda r: r.get(self._version_key))
        if self._state != "ok":
            return False
        return await self._reload(int(raw) if raw is not None else 0)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"backend": self.backend, "state": self._state, "url": safe_url(self._url)}
        if self._state != "ok" and self._last_error:
            status["last_error"] = self._last_error
        if self._pending:
            status["unsynced"] = len(self._pending)
        return status

    async def start(self) -> None:
        self.connect()
        self._sync_task = asyncio.create_task(self._sync_forever(), name="cooldown-sync")

    def connect(self) -> None:
        """A client, without the sync loop: for one-off reads and writes (the CLI, the doctor)."""
        # Connecting is lazy: a gateway started while Redis is down starts and serves locally.
        self._redis = Redis.from_url(
            self._url,
            socket_timeout=self._timeout_s,
            socket_connect_timeout=self._timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._extend = self._redis.register_script(_EXTEND)
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)

    async def close(self) -> None:
        # redis-py can swallow a cancellation that lands mid-command, so the loops also watch a
        # flag, and shutdown waits for them a bounded time only.
        self._closing = True
        tasks = [t for t in (self._sync_task, self._flush_task) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    # -- Redis, every call bounded ------------------------------------------------------------

    async def _call(self, make_call: Any) -> Any:
        """Run one Redis call under a hard deadline; None when Redis is paused or failing."""
        if self._redis is None or self._closing or time.monotonic() < self._paused_until:
            return None
        try:
            # Belt and braces: redis-py's socket timeout does not cover every path (e.g. DNS).
            async with asyncio.timeout(self._timeout_s * 2):
                result = await make_call(self._redis)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return None
        if self._state != "ok":
            if self._state == "down":
                log.warning("redis is back; resyncing cooldowns")
                self._requeue_local_view()
            self._state, self._pause_s = "ok", 1.0
        self._errors = 0
        return result

    def _failed(self, exc: Exception) -> None:
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self._errors >= self._max_errors or self._state == "starting":
            if self._state != "down":
                log.warning("redis unavailable (%s); using the local view", self._last_error)
            self._state = "down"
            self._paused_until = time.monotonic() + self._pause_s
            self._pause_s = min(self._pause_s * 2, 30.0)

    def _requeue_local_view(self) -> None:
        """Redis may have restarted or been flushed: give back what this replica knows (extend-only)."""
        for key, cooldown in self.active(time.time()).items():
            self._pending.setdefault(key, cooldown)
        self._kick_flush()

    def _kick_flush(self) -> None:
        # One flusher at a time, so a hung Redis cannot pile up a task per failure.
        if self._redis is not None and (self._flush_task is None or self._flush_task.done()):
            self._flush_task = asyncio.get_running_loop().create_task(self._flush(), name="cooldown-flush")

    async def _write(self, key: str, value: Cooldown | _Replace | None) -> bool:
        if value is None:
            return await self._delete(key)
        if isinstance(value, _Replace):
            return await self._delete(key) and await self._push(key, value.cooldown)
        return await self._push(key, value)

    async def _flush(self) -> None:
        for key, value in list(self._pending.items()):
            ok = await self._write(key, value)
            if not ok:
                return  # Redis is failing: the sync loop retries once it answers again
            if self._pending.get(key, _GONE) is value:  # unless the key changed again meanwhile
                del self._pending[key]

    async def _push(self, key: str, cooldown: Cooldown) -> bool:
        ttl_ms = int((cooldown.expires - time.time()) * 1000)
        if ttl_ms <= 0:
            return True  # expired while waiting: nothing left to share
        value = orjson.dumps(asdict(cooldown))
        keys = [self._key_prefix + key, self._index, self._version_key]
        args = [value, ttl_ms, key, repr(cooldown.until)]
        return await self._call(lambda _redis: self._extend(keys=keys, args=args)) is not None

    async def _delete(self, key: str) -> bool:
        async def call(redis: Redis) -> Any:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key_prefix + key)
                pipe.srem(self._index, key)
                pipe.incr(self._version_key)
                return await pipe.execute()

        return await self._call(call) is not None

    async def _sync_forever(self) -> None:
        last_full = 0.0
        while not self._closing:
            try:
                last_full = await self._sync_once(last_full)
            except Exception as exc:  # a bad value must not end syncing for good
                log.exception("cooldown sync failed; retrying")
                self._last_error = f"sync: {type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(max(self._poll_s, self._paused_until - time.monotonic()))

    async def _sync_once(self, last_full: float) -> float:
        raw = await self._call(lambda r: r.get(self._version_key))
        if self._state != "ok":
            return last_full
        version = int(raw) if raw is not None else 0
        if self._seen_version is not None and version < self._seen_version:
            self._requeue_local_view()  # the counter went back: Redis lost its data
        if self._pending:
            self._kick_flush()
        now = time.monotonic()
        if (version != self._seen_version or now - last_full >= self._resync_s) and await self._reload(version):
            return now
        return last_full

    async def _reload(self, version: int) -> bool:
        in_flight = set(self._pending)  # changes that may land while this reload reads
        keys = await self._call(lambda r: r.smembers(self._index))
        if keys is None:
            return False
        names = sorted(k.decode() for k in keys)

        async def fetch(redis: Redis) -> Any:
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.get(self._key_prefix + name)
                    pipe.pttl(self._key_prefix + name)
                return await pipe.execute()

        replies = await self._call(fetch) if names else []
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
        for key in in_flight | set(self._pending):  # local changes not yet confirmed win
            if (local := self._view.get(key)) is not None:
                view[key] = local
            else:
                view.pop(key, None)
        self._view = view
        self._seen_version = version
        if expired:
            await self._call(lambda r: r.srem(self._index, *expired))
        return True


_GONE = object()


@dataclass(frozen=True, slots=True)
class _Replace:
    """A pending write that may shorten what Redis holds, unlike a failure's: an operator's, or one after a clear."""

    cooldown: Cooldown


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


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def make_store(redis_url: str | None) -> LocalStore:
    return RedisStore(redis_url) if redis_url else LocalStore()
