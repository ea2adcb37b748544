"""Shared fixtures: fake upstreams, a real redis-server, and gateways served over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import uvicorn
import yaml

from gateway.request_log import RequestLog
from gateway.settings import Config
from gateway.web.app import Gateway
from tests.fakes import FakeUpstream
from tests.processes import ROOT as ROOT  # re-exported: the test files take every shared helper from here
from tests.processes import GatewayProcess, RedisServer, free_port

FLAVORS = ("openai", "groq", "gemini", "deepseek", "ollama")
CHAT_MODELS = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
    "gemini": "gemini-2.0-flash",
    "deepseek": "deepseek-chat",
    "ollama": "llama3.2",
}
# Canary keys: tests check they reach the right upstream and nowhere else.
KEYS = {f: f"sk-canary-{f}-0123456789abcdef" for f in FLAVORS if f != "ollama"}
KEY_ENV = {f: f"TEST_{f.upper()}_KEY" for f in KEYS}
MESSAGES = [{"role": "user", "content": "hi"}]
ADMIN = "admin-key-for-tests-0123456789"
_FAKES: list[dict[str, FakeUpstream]] = []  # the session's fakes, once made
AUTH = {"authorization": f"Bearer {ADMIN}"}


FIGURES: list[str] = []  # one line per fault test: what it measured, shown at the end of the run


def figure(line: str) -> None:
    """Record a fault test's figure (`FIGURE slowloris: ...`), printed in the run's summary."""
    FIGURES.append(f"FIGURE {line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def redis_key(*parts: str) -> str:
    """A key as the gateway names it in Redis: every one under the hash tag {gateway}, one Cluster slot."""
    return ":".join(("{gateway}", *parts))


def served_by(client: openai.OpenAI) -> str:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    return raw.headers["x-gateway-provider"]


def bench_in_redis(client: Any, name: str, seconds: int = 600, reason: str = "quota_exhausted") -> None:
    """Write a cooldown the way another replica does."""
    now = time.time()
    value = json.dumps({"reason": reason, "detail": "set elsewhere", "since": now, "until": now + seconds})
    client.set(redis_key("cooldown", name), value, ex=seconds)
    client.sadd(redis_key("cooldown-keys"), name)
    client.incr(redis_key("cooldown-version"))


def started_checks(state: Callable[[], str]) -> None:
    """Wait for a new gateway's start-up checks, then forget their reads on every fake."""
    wait_for(lambda: state() in ("done", "failed"), what="the start-up checks")
    if _FAKES:
        for fake in _FAKES[0].values():
            fake.forget_reads()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll an observable condition until it holds; fail loudly at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def post_and_leave(url: str, body: dict[str, Any], fake: FakeUpstream) -> None:
    """Send a chat request on a raw socket and close it once the upstream has the request."""
    payload = json.dumps(body).encode()
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        wait_for(lambda: fake.calls() == 1, what="the request to reach the upstream")


@pytest.fixture(scope="session")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    servers = {flavor: FakeUpstream(flavor) for flavor in FLAVORS}
    _FAKES.append(servers)
    yield servers
    _FAKES.clear()
    for server in servers.values():
        server.close()


@pytest.fixture(autouse=True)
def _clean_fakes(request: pytest.FixtureRequest) -> None:
    if "fakes" in request.fixturenames:
        for server in request.getfixturevalue("fakes").values():
            server.reset()


@pytest.fixture
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for flavor, key in KEYS.items():
        monkeypatch.setenv(KEY_ENV[flavor], key)
    return KEYS


def config_dict(fakes: dict[str, FakeUpstream], order: tuple[str, ...] = FLAVORS, **sections: Any) -> dict[str, Any]:
    providers = []
    for flavor in order:
        models = {"gpt-4o-mini": CHAT_MODELS[flavor], "text-embedding-3-small": f"{flavor}-embed"}
        entry: dict[str, Any] = {"name": flavor, "flavor": flavor, "base_url": fakes[flavor].base_url, "models": models}
        if flavor in KEY_ENV:
            entry["api_key_env"] = KEY_ENV[flavor]
        providers.append(entry)
    config: dict[str, Any] = {"providers": providers, "timeouts": {"connect_s": 2, "total_s": 5}}
    config["usage"] = {"path": ":memory:"}  # a test that needs the file or Redis says so
    config.update(sections)
    return config


# Mapped names that each fake's canned /models list holds, in the forms a config uses: Gemini lists
# them as models/<name>, Ollama as <name>:latest.
LISTED = {
    "openai": {"gpt-4o-mini": "gpt-4o-mini", "text-embedding-3-small": "text-embedding-3-small"},
    "groq": {"gpt-4o-mini": "llama-3.3-70b-versatile"},
    "gemini": {"gpt-4o-mini": "gemini-2.0-flash", "text-embedding-3-small": "text-embedding-004"},
    "deepseek": {"gpt-4o-mini": "deepseek-chat"},
    "ollama": {"gpt-4o-mini": "llama3.2", "text-embedding-3-small": "nomic-embed-text"},
}


def healthy_config(fakes: dict[str, FakeUpstream]) -> dict[str, Any]:
    config = config_dict(fakes)
    for entry in config["providers"]:
        entry["models"] = LISTED[entry["flavor"]]
    return config


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class RunningGateway:
    url: str
    app: Gateway
    log: list[bytes]  # its request log, one JSON line per request

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for chunk in list(self.log) for line in chunk.splitlines()]

    def line(self, number: int) -> dict[str, Any]:
        """The request log's `number`th line (from 1), once it is out: a line follows its answer."""
        wait_for(lambda: len(self.log_lines()) >= number, what=f"request log line {number}")
        return self.log_lines()[number - 1]

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="client-token", max_retries=0, **kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key="client-token", max_retries=0, **kwargs)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/health", timeout=5).json()

    def provider(self, name: str) -> dict[str, Any]:
        return next(p for p in self.health()["providers"] if p["name"] == name)


@pytest.fixture
def start_gateway(provider_keys: dict[str, str]) -> Iterator[Callable[..., RunningGateway]]:
    """Start gateways in this process, each serving real HTTP on its own port."""
    running: list[tuple[_Server, threading.Thread]] = []

    def start(
        config: dict[str, Any],
        redis_url: str | None = None,
        admin_key: str | None = None,
        config_path: Any = None,
        our_protocol: bool = True,  # False: uvicorn's own, as for the app embedded in another server
    ) -> RunningGateway:
        log: list[bytes] = []
        config_model = Config.model_validate(config)
        app = Gateway(config_model, redis_url, admin_key, config_path=config_path, request_log=RequestLog(log.append))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        http = app.http_protocol() if our_protocol else "httptools"
        server = _Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2, http=http)
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        assert server.ready.wait(10), "gateway did not start"
        running.append((server, thread))
        started_checks(lambda: app.checks)
        return RunningGateway(f"http://127.0.0.1:{sock.getsockname()[1]}", app, log)

    yield start
    for server, _ in running:
        server.should_exit = True
    for _, thread in running:
        thread.join(10)


@pytest.fixture
def gateway(fakes: dict[str, FakeUpstream], start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    return start_gateway(config_dict(fakes))


# -- real processes (tests/processes.py) ----------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, 18)  # SIGCONT, in case a test paused it
    server.kill()


@pytest.fixture
def redis_cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    """A one-node Redis Cluster owning every slot: it refuses, as any cluster does, a script or
    transaction whose keys map to different slots (CROSSSLOT)."""
    bus = str(free_port())  # else port + 10000, which may not exist
    cluster = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", bus)
    server = RedisServer(tmp_path, *cluster)
    server.start()
    client = redis.Redis(port=server.port)
    try:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_for(lambda: b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"), what="the cluster")
    finally:
        client.close()
    yield server
    server.kill()


@pytest.fixture
def spawn_gateway(tmp_path: Path, provider_keys: dict[str, str]) -> Iterator[Callable[..., GatewayProcess]]:
    procs: list[GatewayProcess] = []

    def spawn(
        config: dict[str, Any], redis_url: str | None = None, admin_key: str | None = None, args: Sequence[str] = ()
    ) -> GatewayProcess:
        path = tmp_path / f"providers-{len(procs)}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GATEWAY_ADMIN_KEY")}
        if redis_url:
            env["REDIS_URL"] = redis_url
        if admin_key:
            env["GATEWAY_ADMIN_KEY"] = admin_key
        proc = GatewayProcess(path, env, ("--drain-settle-s", "0", *args))
        procs.append(proc)
        started_checks(lambda: proc.health()["checks"])
        return proc

    yield spawn
    for proc in procs:
        proc.stop()
