"""The `litellm` flavor: Anthropic anywhere in the chain, through litellm, against a fake Anthropic API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests import fake_anthropic
from tests.conftest import MESSAGES, ROOT, config_dict, figure, free_port, wait_for
from tests.fake_anthropic import FakeAnthropic
from tests.fakes import FakeUpstream
from tests.processes import GatewayProcess
from tests.test_doctor import run_cli, table

KEY = "sk-ant-api03-canary-0123456789abcdef"
KEY_ENV = "TEST_ANTHROPIC_KEY"
MODEL = f"anthropic/{fake_anthropic.MODEL}"


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    yield server
    server.close()


@pytest.fixture
def anthropic(anthropic_server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    anthropic_server.reset()
    monkeypatch.setenv(KEY_ENV, KEY)
    return anthropic_server


def anthropic_entry(fake: FakeAnthropic | None, **extra: Any) -> dict[str, Any]:
    entry = {"name": "anthropic", "flavor": "litellm", "api_key_env": KEY_ENV, "models": {"gpt-4o-mini": MODEL}}
    if fake is not None:
        entry["base_url"] = fake.base_url
    return {**entry, **extra}


def with_anthropic(fakes: dict[str, FakeUpstream], anthropic: FakeAnthropic, **sections: Any) -> dict[str, Any]:
    """Anthropic first, OpenAI as its fallback."""
    config = config_dict(fakes, ("openai",), **sections)
    config["providers"].insert(0, anthropic_entry(anthropic))
    return config


@pytest.fixture
def gateway(fakes, anthropic, start_gateway):
    running = start_gateway(with_anthropic(fakes, anthropic))
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    return running


def chat(client: openai.OpenAI) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    return raw.headers["x-gateway-provider"], raw.parse().choices[0].message.content


def test_a_chat_is_answered_in_openai_shape_with_usage(gateway, anthropic):
    raw = gateway.client().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    reply = raw.parse()
    assert raw.headers["x-gateway-provider"] == "anthropic"
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content == "Hello from anthropic"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 3)
    sent = anthropic.last()
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == KEY
    assert sent.json["model"] == fake_anthropic.MODEL and anthropic.calls("/v1/messages") == 1  # retries off
    assert gateway.line(1)["provider"] == "anthropic"


def test_a_stream_is_answered_in_openai_chunks_with_usage_last(gateway, anthropic):
    chunks = list(
        gateway.client().chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from anthropic"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (12, 3)
    assert anthropic.last().json["stream"] is True


def test_a_stream_ends_with_done_and_no_usage_the_client_did_not_ask_for(gateway, anthropic):
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
        raw = response.read()
    assert raw.endswith(b"data: [DONE]\n\n") and b'"usage"' not in raw
    line = gateway.line(1)
    assert line["tokens"] == {"prompt": 12, "completion": 3}  # still read, to charge the stream
    # Priced as litellm lists Anthropic's models, bare: claude-haiku-4-5 at $1 in, $5 out per 1M tokens.
    assert line["cost_usd"] == pytest.approx(12 * 1e-6 + 3 * 5e-6)


def test_its_credit_error_benches_it_as_quota_and_the_chain_fails_over(gateway, anthropic):
    anthropic.script(fake_anthropic.reply("anthropic-400-credit-balance"), path="/v1/messages")
    assert chat(gateway.client()) == ("openai", "Hello from openai")
    state = gateway.provider("anthropic")
    assert (state["state"], state["reason"]) == ("cooldown", "quota_exhausted")
    assert chat(gateway.client())[0] == "openai" and anthropic.calls("/v1/messages") == 1  # benched: not asked again


def test_its_retry_after_becomes_the_cooldown(gateway, anthropic):
    anthropic.script(fake_anthropic.reply("anthropic-429-rate-limit"), path="/v1/messages")  # retry-after: 17
    assert chat(gateway.client())[0] == "openai"
    state = gateway.provider("anthropic")
    assert state["reason"] == "rate_limited" and 15 < state["cooldown_remaining_s"] <= 17


def test_a_529_counts_toward_the_breaker(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic, cooldowns={"transient_failures": 2})
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    overloaded = fake_anthropic.reply("anthropic-529-overloaded")
    anthropic.script(overloaded, overloaded, path="/v1/messages")
    assert chat(running.client())[0] == "openai"
    assert running.provider("anthropic")["state"] == "available"  # one 529: not benched yet
    assert chat(running.client())[0] == "openai"
    state = running.provider("anthropic")
    assert (state["state"], state["reason"]) == ("cooldown", "transient")


def test_too_large_fails_over_and_benches_nothing(gateway, anthropic):
    anthropic.script(fake_anthropic.reply("anthropic-413-too-large"), path="/v1/messages")
    assert chat(gateway.client())[0] == "openai"
    assert gateway.provider("anthropic")["state"] == "available"


def test_a_prompt_too_long_goes_back_to_the_client_in_openai_shape(gateway, fakes, anthropic):
    anthropic.script(fake_anthropic.reply("anthropic-400-prompt-too-long"), path="/v1/messages")
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == 400 and "prompt is too long" in caught.value.message
    assert set(caught.value.body) == {"message", "type", "param", "code"}  # OpenAI's error object
    assert fakes["openai"].calls() == 0 and gateway.provider("anthropic")["state"] == "available"


def test_a_mid_stream_error_ends_with_our_error_event_and_no_done(gateway, anthropic):
    anthropic.script(fake_anthropic.error_mid_stream(), path="/v1/messages")
    text = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            text.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(text) == "Hello"
    assert "broke after it started" in caught.value.message
    anthropic.script(fake_anthropic.error_mid_stream(), path="/v1/messages")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
        raw = response.read()
    assert b"upstream_stream_error" in raw.split(b"\n\n")[-2] and b"[DONE]" not in raw


def test_a_stall_mid_stream_ends_the_stream_and_the_call(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic)
    config["timeouts"] = {"connect_s": 1, "total_s": 1}
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    anthropic.script(fake_anthropic.stall_mid_stream(), path="/v1/messages")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body, timeout=10) as response:
        raw = response.read()
    assert b"Hello" in raw and b"stalled" in raw and b"[DONE]" not in raw
    assert anthropic.disconnected.wait(5)  # litellm's stream was closed: the provider stops generating


def test_embeddings_go_through_litellm_where_it_has_them(fakes, anthropic, start_gateway):
    """Anthropic has no embeddings: an `openai/` model through the flavor proves the path (against the fake OpenAI)."""
    config = with_anthropic(fakes, anthropic)
    config["providers"][0]["models"]["text-embedding-3-small"] = "openai/text-embedding-3-small"
    config["providers"][0]["base_url"] = fakes["openai"].base_url  # litellm's OpenAI base includes /v1
    config["providers"][1]["models"] = {"gpt-4o-mini": "gpt-4o-mini"}  # the only way to the model is litellm
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    raw = running.client().embeddings.with_raw_response.create(model="text-embedding-3-small", input="hi")
    assert raw.headers["x-gateway-provider"] == "anthropic" and len(raw.parse().data[0].embedding) > 0
    sent = fakes["openai"].last()
    assert sent.path == "/v1/embeddings" and sent.json["model"] == "text-embedding-3-small"
    assert sent.headers["authorization"] == f"Bearer {KEY}" and fakes["openai"].calls("/embeddings") == 1


def test_nothing_listening_is_unreachable_and_fails_over(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic)
    config["providers"][0]["base_url"] = f"http://127.0.0.1:{free_port()}"
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] != "starting", timeout=30, what="litellm to load")
    assert running.provider("anthropic")["reason"] == "unreachable"  # found by the start-up checks
    running.app.store.clear("anthropic")  # so that a request finds it too
    assert chat(running.client())[0] == "openai"
    tried = {"provider": "anthropic", "reason": "unreachable", "status": None, "cooldown_s": None}
    assert running.line(1)["skipped"] == [tried]  # tried (no status: nothing answered), not benched


def test_a_client_that_leaves_cancels_the_call(gateway, anthropic):
    anthropic.script(fake_anthropic.stall_mid_stream(), path="/v1/messages")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
        next(response.iter_bytes())  # committed: the first chunk came
    assert anthropic.disconnected.wait(5)


# -- the shipped entry, and the doctor ---------------------------------------------------------------


def shipped_entry() -> dict[str, Any]:
    """The commented Anthropic entry of the shipped providers.yaml, uncommented."""
    text = (ROOT / "providers.yaml").read_text(encoding="utf-8")
    block = re.search(r"^  # - name: anthropic\n(?:  #  .*\n)+", text, re.M)
    assert block is not None, "providers.yaml has no commented anthropic entry"
    return yaml.safe_load("".join(line.replace("# ", "", 1) for line in block.group(0).splitlines(True)))[0]


def test_the_doctor_checks_the_shipped_entry_for_free(anthropic, tmp_path):
    entry = shipped_entry()
    assert (entry["flavor"], entry["api_key_env"], entry["base_url"]) == (
        "litellm",
        "ANTHROPIC_API_KEY",
        "https://api.anthropic.com",
    )
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": [{**entry, "base_url": anthropic.base_url}]}))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = run_cli(["doctor", "--config", str(path)], {**env, "ANTHROPIC_API_KEY": KEY})
    row = table(result.stdout)["anthropic"]
    assert (row["KEY"], row["CONNECTION"], row["MODELS"], row["VERDICT"]) == ("ok", "ok", "1/1 listed", "ok"), row
    assert [(r.method, r.path) for r in anthropic.requests] == [("GET", "/v1/models")]  # free: no token spent
    assert anthropic.last().headers["x-api-key"] == KEY and KEY not in result.stdout + result.stderr

    anthropic.script(fake_anthropic.reply("anthropic-401-invalid-key"), path="/v1/models")
    result = run_cli(["doctor", "--config", str(path)], {**env, "ANTHROPIC_API_KEY": "not-an-anthropic-key"})
    row = table(result.stdout)["anthropic"]
    assert result.returncode == 1 and (row["KEY"], row["MODELS"]) == ("odd shape", "key rejected"), row
    assert "does not look like a litellm key (sk-ant-...)" in row["NOTES"]


# -- litellm is imported only when needed, and never holds up the start -------------------------------

_PROBE = """
import json, sys, threading, time
import httpx, uvicorn
from gateway.settings import load_config
from gateway.web.app import Gateway
app = Gateway(load_config(sys.argv[1]))
server = uvicorn.Server(uvicorn.Config(app, port=int(sys.argv[2]), log_level="warning", lifespan="on"))
threading.Thread(target=server.run, daemon=True).start()
deadline = time.monotonic() + 30
url = f"http://127.0.0.1:{sys.argv[2]}"
while time.monotonic() < deadline:
    try:
        health = httpx.get(url + "/health", timeout=2).json()
        if health["checks"] == "done" and all(p["state"] != "starting" for p in health["providers"]):
            break
    except httpx.TransportError:
        pass
    time.sleep(0.05)
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
served = httpx.post(url + "/v1/chat/completions", json=chat, timeout=10)
print(json.dumps({"litellm": "litellm" in sys.modules, "served_by": served.headers.get("x-gateway-provider")}))
server.should_exit = True
"""


def _probe(config: dict[str, Any], tmp_path) -> dict[str, Any]:
    """A real gateway process serving `config`, asked once it is up: is litellm among its modules?"""
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", KEY_ENV: KEY, "TEST_OPENAI_KEY": "sk-canary-openai-0"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_litellm_is_imported_only_when_a_provider_needs_it(fakes, anthropic, tmp_path):
    only_openai = config_dict(fakes, ("openai",))
    assert _probe(only_openai, tmp_path) == {"litellm": False, "served_by": "openai"}
    assert _probe(with_anthropic(fakes, anthropic), tmp_path) == {"litellm": True, "served_by": "anthropic"}


def test_health_answers_at_once_and_shows_it_starting_then_available(fakes, anthropic, tmp_path, provider_keys):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(with_anthropic(fakes, anthropic)))
    launched = time.monotonic()
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY})
    try:
        first = wait_for(lambda: _health(proc.url), timeout=10, what="the first /health answer")
        answered_s = time.monotonic() - launched
        state = next(p for p in first["providers"] if p["name"] == "anthropic")
        assert state["state"] == "starting" and first["serving"] == ["openai"]
        assert answered_s < 1.0, f"/health first answered {answered_s:.2f} s after launch"
        wait_for(lambda: proc.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
        loaded_s = time.monotonic() - launched
        figure(f"litellm flavor: /health answered {answered_s:.2f} s after launch (anthropic starting), "
               f"anthropic available after {loaded_s:.1f} s")  # fmt: skip
    finally:
        proc.stop()


def _health(url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(f"{url}/health", timeout=1).json()
    except httpx.TransportError:
        return None


def test_a_reload_that_adds_a_litellm_provider_loads_it(fakes, anthropic, tmp_path, provider_keys):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, ("openai",))))
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY})
    try:
        wait_for(lambda: proc.health()["checks"] == "done", what="the start-up checks")
        path.write_text(yaml.safe_dump(with_anthropic(fakes, anthropic)))
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(proc.health()["providers"]) == 2, what="the reload")
        wait_for(lambda: proc.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
        assert chat(proc.client()) == ("anthropic", "Hello from anthropic")
    finally:
        proc.stop()


def test_a_litellm_that_cannot_be_imported_leaves_its_provider_misconfigured(fakes, anthropic, tmp_path):
    # `python -m` puts its working directory (the config's) first on sys.path: this one shadows litellm.
    (tmp_path / "litellm").mkdir()
    (tmp_path / "litellm" / "__init__.py").write_text('raise ImportError("no litellm in this test")\n')
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(with_anthropic(fakes, anthropic)))
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY, "TEST_OPENAI_KEY": "sk-canary-openai-0"})
    try:
        wait_for(lambda: proc.provider("anthropic")["state"] != "starting", timeout=30, what="the import to end")
        state = proc.provider("anthropic")
        assert (state["state"], state["reason"]) == ("misconfigured", "load_failed")
        assert "no litellm in this test" in state["detail"]
        assert chat(proc.client())[0] == "openai" and anthropic.calls("/v1/messages") == 0
    finally:
        proc.stop()
