"""Redis for every part of the gateway that shares state. The only module that imports redis.

What any Redis user here (cooldowns now; usage counters and budgets next) builds on:

- `TAG` and `key()`: every key the gateway writes carries the one hash tag `{gateway}`, so all of
  them map to one Redis Cluster slot and any script or transaction over several of them is legal
  there (Cluster refuses one whose keys span slots: CROSSSLOT). The gateway's state is a few
  dozen small keys, so one slot costs nothing.
- `client()`: the redis-py client `REDIS_URL` names (one server, Sentinel's primary, or a Cluster;
  see store.redis_url), for everything that connects: bounded timeouts, no client-side retries.
- `RedisLink`: a client made from `REDIS_URL` whose every call is bounded (a short timeout, no
  client-side retries) and never raises: a failed call answers None. After `max_errors` failures
  in a row the link stops asking for a while (1 s, doubling to 30 s; at most 1 s with Sentinel
  or Cluster, whose outage ends with a promotion) and reports itself down; when Redis answers
  again it says so once, through `on_back`, so its users can resync.
- `WriteBehind`: local changes Redis has not confirmed, newest per key, written by one flusher at
  a time (a hung Redis cannot pile up a task per change) and retried until they land.
- `Poller`: one loop that calls a sync step every `poll_s`, waiting out the link's pauses.

Redis must never slow or fail a request: nothing here is awaited on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from gateway.store.redis_url import parse, safe_url

log = logging.getLogger("gateway.store")

# One hash tag on every key: Redis Cluster runs a script or a transaction only when all its keys
# hash to one slot, and a tag makes the slot depend on it alone. The state is small; one slot is fine.
TAG = "{gateway}"


def key(*parts: str) -> str:
    """A key of ours: `{gateway}:part:part`, in the gateway's one hash slot."""
    return ":".join((TAG, *parts))


def client(url: str, timeout_s: float) -> Any:
    """The client `url` names (ValueError, naming the forms, when it names none). It connects lazily.

    Every connection, a sentinel's too, has the same bounded timeouts and no retries: the caller's
    backoff is the retry. With Sentinel each new connection asks the sentinels for the primary first,
    so one lost (or refused, or read-only: redis-py drops that connection) leads to a fresh lookup.
    A cluster client refreshes its slot map after a MOVED or a lost node, on its next call.
    """
    target = parse(url)

    def bounded() -> dict[str, Any]:
        return {
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }

    auth = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=bounded())
        return sentinel.master_for(target.service, db=target.db, **auth, **bounded())
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.nodes]
        cluster = RedisCluster(startup_nodes=nodes, **auth, **bounded())
        cluster.commands_parser = _CommandTable()
        return cluster
    return Redis.from_url(url, **bounded())


_COMMANDS: dict[str, Any] = {}  # the cluster's command table, read once per process


class _CommandTable(AsyncCommandsParser):
    """redis-py's RedisCluster reads the server's whole command table (COMMAND) at every
    (re)initialization, i.e. after every lost connection: ~50 ms of pure-Python parsing on the event
    loop each time, which would stall requests all along an outage. It does not change while we run."""

    async def initialize(self, node: Any = None) -> None:
        if node is not None:
            self.node = node
        if not _COMMANDS:
            await super().initialize(node)
            _COMMANDS.update(self.commands)
        self.commands = _COMMANDS


async def close_client(redis: Any) -> None:
    """Close a client of `client()`, and the sentinels' connections behind it if any."""
    await redis.aclose()
    sentinel = getattr(getattr(redis, "connection_pool", None), "sentinel_manager", None)
    if sentinel is not None:
        for node in sentinel.sentinels:
            await node.aclose()


Call = Callable[[Any], Awaitable[Any]]


class RedisLink:
    """A bounded Redis client with backoff: every call answers within `2 * timeout_s`, or None."""

    def __init__(self, url: str, *, timeout_s: float = 0.05, max_errors: int = 3) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.max_errors = max_errors
        # Sentinel or Cluster: an outage ends when a replica is promoted, which nobody announces to
        # us; each try is a fresh lookup of the primary or the slot map, so try each second.
        self.max_pause_s = 30.0 if parse(url).kind == "plain" else 1.0  # and a bad URL fails here, at once
        self.redis: Any = None  # redis-py's Redis, or RedisCluster
        self.state = "starting"  # then "ok" or "down"
        self.last_error = ""
        self.paused_until = 0.0
        self.closing = False
        self.on_back: Callable[[], None] = lambda: None  # Redis answers again after being down
        self._errors = 0
        self._pause_s = 1.0
        self._background: set[asyncio.Task[Any]] = set()

    def connect(self) -> None:
        # Connecting is lazy: a gateway started while Redis is down starts and serves locally.
        self.redis = client(self.url, self.timeout_s)

    def script(self, source: str) -> Any:
        """A Lua script, sent by its digest (and loaded on first use)."""
        assert self.redis is not None, "RedisLink.connect() was not called"
        return self.redis.register_script(source)

    async def call(self, make_call: Call) -> Any:
        """Run one Redis call under a hard deadline; None when Redis is paused or failing."""
        if self.redis is None or self.closing or time.monotonic() < self.paused_until:
            return None
        try:
            # Belt and braces: redis-py's socket timeout does not cover every path (e.g. DNS). A
            # cluster's first call also reads the command table (see _CommandTable): it gets a second.
            first = isinstance(self.redis, RedisCluster) and not _COMMANDS
            async with asyncio.timeout(max(self.timeout_s * 2, 1.0) if first else self.timeout_s * 2):
                result = await make_call(self.redis)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return None
        if self.state != "ok":
            was_down = self.state == "down"
            self.state, self._pause_s = "ok", 1.0
            if was_down:
                log.warning("redis is back; resyncing")
                self.on_back()
        self._errors = 0
        return result

    def call_soon(self, make_call: Call) -> None:
        """A call nobody waits for (its failure is harmless), kept referenced until it ends."""
        if self.redis is None:
            return
        task = asyncio.get_running_loop().create_task(self.call(make_call))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _failed(self, exc: Exception) -> None:
        self._errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if self._errors >= self.max_errors or self.state == "starting":
            if self.state != "down":
                log.warning("redis unavailable (%s); using the local view", self.last_error)
            self.state = "down"
            self.paused_until = time.monotonic() + self._pause_s
            self._pause_s = min(self._pause_s * 2, self.max_pause_s)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state, "url": safe_url(self.url)}
        if self.state != "ok" and self.last_error:
            status["last_error"] = self.last_error
        return status

    async def close(self) -> None:
        self.closing = True
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await close_client(self.redis)


GONE = object()  # not pending


class WriteBehind:
    """Changes Redis has not confirmed yet, newest per key; `write` returns True once Redis took one."""

    def __init__(self, link: RedisLink, write: Callable[[str, Any], Awaitable[bool]]) -> None:
        self.pending: dict[str, Any] = {}
        self._link = link
        self._write = write
        self._task: asyncio.Task[None] | None = None

    def put(self, key: str, value: Any) -> None:
        self.pending[key] = value
        self.kick()

    def kick(self) -> None:
        if self._link.redis is not None and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="redis-flush")

    async def flush(self) -> bool:
        """Write everything pending now; True when nothing is left."""
        if self._task is not None and not self._task.done():
            await self._task
        await self._flush()
        return not self.pending

    async def _flush(self) -> None:
        for key, value in list(self.pending.items()):
            if not await self._write(key, value):
                return  # Redis is failing: the poller kicks again once it answers
            if self.pending.get(key, GONE) is value:  # unless the key changed again meanwhile
                del self.pending[key]

    def task(self) -> asyncio.Task[None] | None:
        return self._task


class Poller:
    """Calls `step` every `poll_s` (or when the link's pause ends) until the link closes."""

    def __init__(self, link: RedisLink, step: Callable[[], Awaitable[None]], poll_s: float, name: str) -> None:
        self._link = link
        self._step = step
        self._poll_s = poll_s
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name=self._name)

    async def _forever(self) -> None:
        link = self._link
        while not link.closing:
            try:
                await self._step()
            except Exception as exc:  # a bad value must not end syncing for good
                log.exception("%s failed; retrying", self._name)
                link.last_error = f"{self._name}: {type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(max(self._poll_s, link.paused_until - time.monotonic()))

    def task(self) -> asyncio.Task[None] | None:
        return self._task


async def stop(link: RedisLink, *tasks: asyncio.Task[Any] | None) -> None:
    """Shut a link down with its loops. redis-py can swallow a cancellation that lands mid-command,
    so the loops also watch `link.closing`, and this waits for them a bounded time only."""
    link.closing = True
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=1.0)
    await link.close()
