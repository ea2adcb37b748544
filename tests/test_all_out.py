"""When nothing can serve: the official SDKs at their default retry settings get one clear error at once,
and are told to retry only when a retry within seconds can be served."""

from __future__ import annotations

import re

import httpx
import openai
import pytest

from tests.conftest import KEY_ENV, MESSAGES, config_dict, free_port
from tests.fakes import error


def default_client(url: str) -> tuple[openai.OpenAI, list[str]]:
    """The SDK as users have it (max_retries left at its default), and every request it sends."""
    sent: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    return openai.OpenAI(base_url=f"{url}/v1", api_key="client-token", http_client=http), sent


@pytest.fixture
def everything_out(fakes, start_gateway, monkeypatch):
    """Credits gone, no key, a key rejected, an empty balance, and an Ollama that is not running."""
    monkeypatch.delenv(KEY_ENV["groq"])
    config = config_dict(fakes)
    dead = f"http://127.0.0.1:{free_port()}"
    config["providers"][4]["base_url"] = dead + "/v1"
    gateway = start_gateway(config)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    fakes["gemini"].script(error("gemini-400-api-key-invalid-list"))
    fakes["deepseek"].script(error("deepseek-402-insufficient-balance"))
    return gateway, dead


@pytest.mark.parametrize("stream", [False, True])
def test_the_sdk_gets_one_error_at_once_naming_every_provider(everything_out, stream):
    gateway, dead = everything_out
    client, sent = default_client(gateway.url)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
    assert sent == ["/v1/chat/completions"]  # one request: the SDK was told not to retry, so it did not sleep
    error = caught.value
    assert (error.status_code, error.response.headers["x-should-retry"]) == (503, "false")
    assert re.search(r"openai: credits exhausted, retry in 3\d\d\d s or add credits", error.message)
    assert "groq: no API key; set TEST_GROQ_KEY" in error.message
    assert "gemini: API key rejected" in error.message
    assert "deepseek: credits exhausted" in error.message
    # Found by the start-up checks, before this request: benched, described as what it is.
    assert f"ollama: not reachable at {dead} — is it running? (benched, retry in" in error.message
    # The soonest any provider comes back, honestly: Ollama's bench, not a second.
    assert 25 <= int(error.response.headers["retry-after"]) <= 30


def test_a_last_resort_that_is_not_running_is_named_as_such(fakes, start_gateway):
    config = config_dict(fakes, order=("openai", "ollama"))
    dead = f"http://127.0.0.1:{free_port()}"
    config["providers"][1].update(base_url=dead + "/v1", last_resort=True)
    gateway = start_gateway(config)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    client, sent = default_client(gateway.url)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert sent == ["/v1/chat/completions"]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.body["message"].endswith(f"ollama: not reachable at {dead} — is it running?")
    assert gateway.provider("ollama")["state"] == "unreachable"  # shown as such, never benched


def openai_the_only_keyed(fakes, start_gateway, monkeypatch):
    """A chain whose other providers have no key: openai is the only one that can serve."""
    for flavor in ("groq", "gemini", "deepseek"):
        monkeypatch.delenv(KEY_ENV[flavor])
    return start_gateway(config_dict(fakes, order=("openai", "groq", "gemini", "deepseek")))


def test_a_rate_limit_about_to_reset_is_worth_the_sdks_own_retry(fakes, start_gateway, monkeypatch):
    gateway = openai_the_only_keyed(fakes, start_gateway, monkeypatch)
    reply = error("openai-429-rpm-retry-after")
    reply.headers["retry-after"] = "1"
    fakes["openai"].script(reply)
    client, sent = default_client(gateway.url)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from openai"
    assert sent == ["/v1/chat/completions"] * 2  # the 503 said: retry in 1 s, and that retry was served
    first = gateway.line(1)
    assert first["status"] == 503
    assert {"provider": "openai", "reason": "rate_limited", "status": 429, "cooldown_s": 1.0} in first["skipped"]


def test_groqs_daily_limit_is_worded_as_one_with_its_reset(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("groq",)))
    fakes["groq"].script(error("groq-429-rpd-daily-quota"))  # retry-after: 2400
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert re.search(r"groq: daily limit reached, retry at \d\d:\d\d UTC \(in 2400 s\)", caught.value.message)
    assert "credits" not in caught.value.message
    entry = gateway.provider("groq")
    assert (entry["state"], entry["reason"]) == ("cooldown", "daily_limit")


def test_a_one_off_5xx_from_the_only_provider_is_worth_the_sdks_own_retry(fakes, start_gateway, monkeypatch):
    gateway = openai_the_only_keyed(fakes, start_gateway, monkeypatch)
    fakes["openai"].script(error("openai-500-server-error"))
    client, sent = default_client(gateway.url)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from openai"
    assert sent == ["/v1/chat/completions"] * 2  # its breaker had not opened: the 503 said retry in 1 s


def test_a_last_resort_about_to_reset_is_worth_a_retry_though_never_benched(fakes, start_gateway):
    config = config_dict(fakes, order=("openai", "ollama"))
    config["providers"][1]["last_resort"] = True
    gateway = start_gateway(config)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    reply = error("ollama-503-server-busy")
    reply.headers["retry-after"] = "1"
    fakes["ollama"].script(reply)
    client, sent = default_client(gateway.url)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from ollama"
    assert sent == ["/v1/chat/completions"] * 2
