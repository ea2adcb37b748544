"""When the gateway itself fails while reading an answer, the client is still never misled.

A flavor with a transport of its own (the way a non-HTTP provider plugs in) stands for a bug of
ours meeting an answer: its reads raise what our code never should.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.providers import FLAVORS, Flavor
from tests.conftest import MESSAGES, config_dict, figure, served_by

FIRST = b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'


class _Stream:
    first, headers, usage = FIRST, {}, None

    async def events(self) -> AsyncIterator[bytes]:
        yield b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
        raise RuntimeError("a bug of ours, mid-stream")

    def close(self) -> None:
        pass


class CrashingTransport:
    def __init__(self, timeouts: Any) -> None:
        self.timeouts = timeouts
        self.max_response_bytes = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def complete(self, provider: Any, endpoint: Any, body: dict[str, Any]) -> Any:
        raise KeyError("a bug of ours, reading an answer")

    async def stream(self, provider: Any, endpoint: Any, body: dict[str, Any]) -> _Stream:
        return _Stream()

    async def get(self, provider: Any, url: str) -> tuple[int, bytes]:
        return 200, b'{"object": "list", "data": []}'


class Crashing(Flavor):
    name = "crashing"
    requires_key = False
    key_shape = None

    def transport_class(self) -> type:
        return CrashingTransport


@pytest.fixture
def crashing_first(fakes, start_gateway, monkeypatch):
    monkeypatch.setitem(FLAVORS, "crashing", Crashing())
    config = config_dict(fakes, order=("ollama",))
    config["providers"].insert(0, {"name": "buggy", "flavor": "crashing", "base_url": "http://x/v1",
                                   "models": {"gpt-4o-mini": "m"}})  # fmt: skip
    return start_gateway(config)


def test_a_failure_of_ours_reading_an_answer_fails_over(crashing_first):
    assert served_by(crashing_first.client()) == "ollama"
    line = crashing_first.line(1)
    assert line["skipped"][0]["provider"] == "buggy" and line["skipped"][0]["reason"] == "transient"
    figure("our own failure reading an answer: that provider's answer is lost, the next provider serves")


def test_a_failure_of_ours_after_commit_ends_the_stream_with_our_error_event(crashing_first):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{crashing_first.url}/v1/chat/completions", json=body, timeout=10) as response:
        relayed = response.read()
    assert relayed.startswith(FIRST)
    assert b"gateway_stream_error" in relayed and b"[DONE]" not in relayed
    assert crashing_first.provider("buggy")["state"] == "available"  # ours, not the provider's: nothing benched
    figure("our own crash mid-stream: ends with our error event, no [DONE]; nothing benched")
