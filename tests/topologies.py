"""Real Redis topologies on loopback for the tests: Sentinel (a primary, a replica, three sentinels)
and Cluster (three primaries, with a replica each when asked). Every process is a child on a free
port under the test's tmp_path, stopped by PID.

Sentinels run as `redis-server <file> --sentinel`: Debian's `redis-sentinel` package only adds a
link to that same binary and a system service, so redis-server (which scripts/test installs)
is all these tests need. `redis-cli --cluster create` comes with it (redis-tools).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from redis.crc import key_slot

from tests.processes import RedisServer, free_port, wait_for_line

SERVICE = "gw-primary"
PASSWORD = "s3cret/with#odd@chars"  # a password a URL must escape, and nothing may ever show


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until `condition` holds (an error counts as not yet); fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except redis.RedisError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class SentinelTopology:
    """A primary and one replica (both with a password) watched by three sentinels, quorum 2, with
    timeouts low enough that a failover ends within seconds."""

    def __init__(self, tmp: Path) -> None:
        auth = ("--requirepass", PASSWORD, "--masterauth", PASSWORD)
        (tmp / "primary").mkdir()
        (tmp / "replica").mkdir()
        self.primary = RedisServer(tmp / "primary", *auth)
        self.primary.start()
        self.replica = RedisServer(tmp / "replica", *auth, "--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[str]] = []
        for port in self.sentinel_ports:
            conf = tmp / f"sentinel-{port}.conf"  # a sentinel rewrites its file, so each has its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {tmp}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            proc = subprocess.Popen(
                ["redis-server", str(conf), "--sentinel"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            self.procs.append(proc)
            wait_for_line(proc, "+monitor master", "redis-sentinel")
        self.sentinels = [redis.Redis(port=port, socket_timeout=2) for port in self.sentinel_ports]
        # A failover needs the sentinels to know each other (hello messages, every 2 s) and the replica.
        poll(self._ready, 30, "the sentinels to find each other and the replica")

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://:{quote(PASSWORD, safe='')}@{hosts}/{SERVICE}/{db}"

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.sentinel_master(SERVICE)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return self.replica_client().info("replication")["master_link_status"] == "up"

    def primary_port(self) -> int:
        """The port the sentinels name for the primary now."""
        return int(self.sentinels[0].sentinel_get_master_addr_by_name(SERVICE)[1])

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, socket_timeout=2)

    def replica_client(self) -> redis.Redis:
        return self.client(self.replica.port)

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
        self.primary.kill()
        self.replica.kill()


class ClusterTopology:
    """Three primaries (and a replica each when `replicas`), made one cluster by `redis-cli --cluster
    create`, with a 1 s node timeout so that a replica takes over a lost primary within seconds."""

    def __init__(self, tmp: Path, replicas: bool = False) -> None:
        self.nodes: list[RedisServer] = []
        for index in range(6 if replicas else 3):
            node_dir = tmp / f"node-{index}"  # nodes.conf is per node
            node_dir.mkdir()
            bus = str(free_port())  # else port + 10000, which may not exist
            extra = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", bus)
            server = RedisServer(node_dir, *extra, "--cluster-node-timeout", "1000")
            server.start()
            self.nodes.append(server)
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "1" if replicas else "0"]
        done = subprocess.run([*create, "--cluster-yes"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        poll(self._ready, 30, "every node to see the whole cluster")

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:2])

    def _ready(self) -> bool:
        for node in self.alive():
            info = redis.Redis(port=node.port).execute_command("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info or f"cluster_known_nodes:{len(self.nodes)}" not in info:
                return False
            # A replica that has not synced once would never take over (its data counts as too old).
            replication = redis.Redis(port=node.port).info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def alive(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.proc is not None]

    def owner(self, key: str) -> int:
        """The port of the primary that serves `key`'s slot now (as a live node sees the cluster)."""
        probe = redis.Redis(port=self.alive()[0].port, socket_timeout=2)
        slot = key_slot(key.encode())
        for start, end, primary, *_ in probe.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
        raise AssertionError(f"no node serves slot {slot}")

    def node(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


class Traffic:
    """Sequential chat requests from one thread, turn by turn to each gateway, until stopped (or a
    bound): what a client sees while Redis loses a node. Every failure is kept, with its gateway."""

    def __init__(self, gateways: list[Any], bound: int = 5000) -> None:
        self.gateways = gateways
        self.bound = bound
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        clients = [gateway.client(timeout=10) for gateway in self.gateways]
        for turn in range(self.bound):
            if self._stop.is_set():
                return
            try:
                clients[turn % len(clients)].chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                )
            except Exception as exc:  # any error a client sees is a failure of the test
                self.failures.append(f"{self.gateways[turn % len(clients)].url}: {exc!r}"[:300])
            self.sent += 1

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.sent
