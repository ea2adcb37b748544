"""What start-up made is frozen out of the cyclic collector's walks (gateway.heap: the numbers are there)."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket

import openai
import pytest
import yaml

from tests.conftest import KEY_ENV, MESSAGES, config_dict, started_checks, wait_for
from tests.fakes import Reply, error
from tests.processes import GatewayProcess


def test_a_started_gateway_has_frozen_its_heap_and_set_the_thresholds(fakes, start_gateway):
    gc.unfreeze()  # whatever an earlier gateway of this test process froze
    gc.set_threshold(1, 1, 1)
    start_gateway(config_dict(fakes, order=("openai",)))
    assert gc.get_freeze_count() > 10_000  # config, modules, pools: everything alive once it serves
    assert gc.get_threshold() == (700, 10, 10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def test_failed_attempts_leave_no_reference_cycles(fakes, provider_keys, tmp_path):
    """Failover, a cut stream, an unreachable provider and a client that leaves: each failed attempt once
    left an exception, its traceback and their frames in a reference cycle (ours in the transport,
    aiohttp's and aiohappyeyeballs' in theirs), 27 to 97 objects each; now the collector finds none."""
    config = config_dict(fakes, order=("openai", "groq"))
    openai_url = fakes["openai"].base_url
    config["providers"] += [
        {"name": "cutter", "flavor": "openai", "base_url": openai_url, "api_key_env": KEY_ENV["openai"],
         "last_resort": True, "models": {"cut": "gpt-4o-mini"}},
        {"name": "dead", "flavor": "openai", "base_url": f"http://127.0.0.1:{_free_port()}/v1",
         "api_key_env": KEY_ENV["openai"], "last_resort": True, "models": {"dead": "gpt-4o-mini"}},
    ]  # fmt: skip
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    probe = tmp_path / "gc.json"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    gateway = GatewayProcess(path, {**env, "GC_PROBE_OUT": str(probe)}, module="tests.gc_probe")
    started_checks(lambda: gateway.health()["checks"])
    client = gateway.client()
    openai_fake = fakes["openai"]
    cut = [b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'] * 3

    def failover() -> None:
        openai_fake.script(error("openai-429-tpm-request-too-large"))  # fails over, benches nothing
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def cut_stream() -> None:
        openai_fake.script(Reply(events=cut, stop_after=2, drop_mid_stream=True))
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="cut", messages=MESSAGES, stream=True))

    def unreachable() -> None:
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="dead", messages=MESSAGES)

    def client_leaves() -> None:
        calls = openai_fake.calls()
        openai_fake.script(Reply(hang=True))
        with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
            body = json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode()
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
            wait_for(lambda: openai_fake.calls() == calls + 1, what="the request to reach the upstream")
        wait_for(lambda: openai_fake.client_disconnects > 0, what="the upstream call to be cancelled")
        openai_fake.reset()

    try:
        for scenario in (failover, cut_stream, unreachable, client_leaves):
            scenario()  # once before the window: first-time imports and caches are not cycles
            probe.unlink(missing_ok=True)
            gateway.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: probe.exists() and probe.read_text() == "armed", what="the probe armed")
            for _ in range(5):
                scenario()
            gateway.proc.send_signal(signal.SIGUSR2)
            found = wait_for(lambda: probe.exists() and probe.read_text() != "armed" and probe.read_text())
            assert json.loads(found)["objects"] == 0, f"{scenario.__name__}: {found}"
    finally:
        client.close()
        gateway.stop()
