"""Real processes the tests start and stop by PID: redis-server, and the gateway as users run it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, tmp: Path, *extra: str) -> None:
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed: run scripts/test, or apt-get install redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tmp
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_line(self.proc, "Ready to accept connections", "redis-server")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def wait_for_line(proc: subprocess.Popen[str], marker: str, what: str, timeout: float = 20) -> list[str]:
    """Read a child's output until a line holds `marker`; keep draining it afterwards."""
    seen: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    if not found.wait(timeout):
        proc.kill()
        raise AssertionError(f"{what} did not start:\n{''.join(seen)}")
    return seen


class GatewayProcess:
    """`python -m gateway serve` as a child process, the way users run it."""

    # No settle window by default: no load balancer watches a test's gateway, and every stop would wait it.
    def __init__(
        self,
        config_path: Path,
        env: dict[str, str],
        args: Sequence[str] = ("--drain-settle-s", "0"),
        module: str = "gateway",  # or a module that runs gateway.cli.main under a probe (tests.gc_probe)
    ) -> None:
        self.config_path = config_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(self.port),
                "--log-level",
                "info",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Beside its config, as users run it: what it writes (the usage file) stays out of the repo.
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=config_path.parent,
        )
        self.output = wait_for_line(self.proc, "Uvicorn running on", "gateway")

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/health", timeout=5).json()

    def provider(self, name: str) -> dict[str, Any]:
        return next(p for p in self.health()["providers"] if p["name"] == name)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="client-token", max_retries=0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
