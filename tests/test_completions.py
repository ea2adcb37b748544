"""Legacy `POST /v1/completions`, stream and not: routed, failed over and charged like chat.

Only flavors that have the endpoint get it: OpenAI and Ollama. Groq and Gemini have none, and
DeepSeek's (FIM, beta) lives under another base URL, so it is left out of the chain.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import FLAVORS, config_dict, wait_for
from tests.fakes import error

PATH = "/v1/completions"


def completions_config(fakes):
    config = config_dict(fakes, order=FLAVORS)
    for entry in config["providers"]:
        entry["models"]["gpt-3.5-turbo-instruct"] = "gpt-3.5-turbo-instruct"
    return config


def test_a_completion_is_served_as_it_came(fakes, start_gateway):
    gateway = start_gateway(completions_config(fakes))
    raw = gateway.client().completions.with_raw_response.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert raw.headers["x-gateway-provider"] == "openai"
    assert raw.parse().choices[0].text == "Hello from openai" and raw.parse().usage.completion_tokens == 4
    assert fakes["openai"].last().json["prompt"] == "Say hi"
    line = gateway.line(1)
    assert line["endpoint"] == "/completions" and line["tokens"] == {"prompt": 5, "completion": 4}


def test_out_of_quota_it_fails_over_to_the_next_provider_that_has_completions(fakes, start_gateway):
    gateway = start_gateway(completions_config(fakes))
    fakes["openai"].script(error("openai-429-insufficient-quota"), path=PATH)
    raw = gateway.client().completions.with_raw_response.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
    assert raw.headers["x-gateway-provider"] == "ollama" and raw.parse().choices[0].text == "Hello from ollama"
    for flavor in ("groq", "gemini", "deepseek"):  # they have no /completions: never sent one
        assert fakes[flavor].calls(PATH) == 0
    skipped = gateway.line(1)["skipped"]
    assert [(s["provider"], s["reason"]) for s in skipped] == [("openai", "quota_exhausted")]


def test_a_stream_fails_over_and_is_relayed_without_the_usage_it_did_not_ask_for(fakes, start_gateway):
    gateway = start_gateway(completions_config(fakes))
    fakes["openai"].script(error("openai-429-insufficient-quota"), path=PATH)
    stream = gateway.client().completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks) == "Hello from ollama"
    assert all(c.choices for c in chunks)  # the usage chunk, asked for by the gateway, is not relayed
    assert fakes["ollama"].last().json["stream_options"] == {"include_usage": True}
    line = gateway.line(1)
    assert line["provider"] == "ollama" and line["tokens"] == {"prompt": 27, "completion": 3}
    assert line["cost_usd"] == 0  # local


def test_a_prompt_is_checked_before_any_provider_sees_it(fakes, start_gateway):
    gateway = start_gateway(completions_config(fakes))
    for body, param in (({"model": "gpt-3.5-turbo-instruct"}, "prompt"), ({"prompt": "hi"}, "model")):
        response = httpx.post(f"{gateway.url}{PATH}", json=body, timeout=5)
        assert response.status_code == 400 and response.json()["error"]["param"] == param
    with pytest.raises(openai.BadRequestError):
        gateway.client().completions.create(model="gpt-3.5-turbo-instruct", prompt=[True, 1])
    assert fakes["openai"].calls(PATH) == 0


def test_a_model_only_a_provider_without_completions_maps_is_unknown_here(fakes, start_gateway):
    config = config_dict(fakes, order=("groq",))
    config["providers"][0]["models"]["instruct"] = "llama-3.1-8b-instant"
    gateway = start_gateway(config)
    with pytest.raises(openai.NotFoundError):
        gateway.client().completions.create(model="instruct", prompt="hi")
    wait_for(lambda: gateway.log_lines(), what="the log line")
    assert fakes["groq"].calls(PATH) == 0
