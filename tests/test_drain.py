"""Graceful drain and the split health checks, on a real `gateway serve` process sent real signals."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx
import yaml

from tests import payloads
from tests.conftest import MESSAGES, config_dict, wait_for
from tests.fakes import Reply
from tests.processes import GatewayProcess

CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


def status(url: str, path: str) -> int | None:
    try:
        return httpx.get(f"{url}{path}", timeout=2).status_code
    except httpx.TransportError:
        return None


def test_live_and_ready_answer_different_questions(fakes, spawn_gateway, monkeypatch):
    gateway = spawn_gateway(config_dict(fakes, order=("openai",)))
    assert httpx.get(f"{gateway.url}/health/live", timeout=5).json() == {"status": "live"}
    assert httpx.get(f"{gateway.url}/health/ready", timeout=5).json() == {"status": "ready", "serving": ["openai"]}
    config = config_dict(fakes, order=("openai",))
    monkeypatch.delenv(config["providers"][0]["api_key_env"])
    keyless = spawn_gateway(config)  # nothing can serve: alive, not ready; no gateway key needed for either
    assert (status(keyless.url, "/health/live"), status(keyless.url, "/health/ready")) == (200, 503)


def test_sigterm_leaves_the_pool_at_once_then_finishes_what_it_has(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes, order=("openai",)), args=("--drain-settle-s", "1", "--drain-s", "2"))
    release = threading.Event()
    hanging = Reply(events=payloads.STREAM_OK["openai"], stop_after=2)  # a stream that stops mid-way
    fakes["openai"].script(Reply(gate=release), hanging)
    answers: dict[str, Any] = {}

    def ask() -> None:
        answers["plain"] = gateway.client().chat.completions.create(**CHAT).choices[0].message.content

    def stream() -> None:
        with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json={**CHAT, "stream": True}) as reply:
            answers["stream"] = b"".join(reply.iter_raw())

    threads = [threading.Thread(target=ask), threading.Thread(target=stream)]
    threads[0].start()
    wait_for(lambda: fakes["openai"].calls() == 1, what="the plain request upstream")
    threads[1].start()
    wait_for(lambda: fakes["openai"].calls() == 2, what="the stream upstream")
    gateway.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: status(gateway.url, "/health/ready") == 503, timeout=5, what="ready to turn 503")
    health = httpx.get(f"{gateway.url}/health", timeout=5)
    assert (health.status_code, health.json()["status"]) == (503, "draining")
    # Still serving what arrives in the settle window, while the load balancer takes note.
    assert gateway.client().chat.completions.create(**CHAT).choices[0].message.content == "Hello from openai"
    release.set()  # the request in flight finishes
    for thread in threads:
        thread.join(15)
    assert answers["plain"] == "Hello from openai"
    # The stream still open at the deadline ends with our error event, never [DONE].
    assert b"gateway_draining" in answers["stream"] and b"[DONE]" not in answers["stream"]
    assert gateway.proc.wait(15) == 0


def test_sigint_drains_without_the_settle_window(fakes, tmp_path, provider_keys):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, order=("openai",))))
    gateway = GatewayProcess(path, dict(os.environ), ("--drain-settle-s", "60", "--drain-s", "5"))
    try:
        gateway.client().chat.completions.create(**CHAT)
        gateway.proc.send_signal(signal.SIGINT)
        assert gateway.proc.wait(15) == 0  # a 60 s settle would outlive this wait
    finally:
        gateway.stop()
