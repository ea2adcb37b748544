"""The `litellm` flavor: Anthropic anywhere in the chain, through litellm, against a fake Anthropic API."""

from __future__ import annotations

import httpx
import openai
import pytest
import yaml

from gateway.errors import ConfigError
from gateway.settings import load_config
from tests import fake_anthropic
from tests.conftest import MESSAGES, free_port, wait_for
from tests.fake_anthropic import (
    KEY,
    anthropic_entry,
    anthropic_fixture,  # noqa: F401 (a fixture)
    anthropic_server_fixture,  # noqa: F401 (a fixture)
    chat,
    with_anthropic,
)
from tests.fakes import Reply, error


@pytest.fixture
def gateway(fakes, anthropic, start_gateway):
    running = start_gateway(with_anthropic(fakes, anthropic))
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    return running


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


def test_it_takes_over_when_openai_runs_out_of_credits(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic)
    config["providers"].reverse()  # OpenAI first, Anthropic its fallback
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert chat(running.client()) == ("anthropic", "Hello from anthropic")
    stream = running.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello from anthropic"
    assert running.provider("openai")["reason"] == "quota_exhausted" and fakes["openai"].calls() == 1


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


def test_the_deadline_covers_the_first_chunk_and_a_stall_ends_the_stream(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic)
    config["timeouts"] = {"connect_s": 1, "total_s": 1}
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    anthropic.script(Reply(hang=True), path="/v1/messages")  # not a byte: left at the deadline, failed over
    with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body, timeout=10) as response:
        assert response.headers["x-gateway-provider"] == "openai" and response.read().endswith(b"[DONE]\n\n")
    assert anthropic.disconnected.wait(5)
    anthropic.reset()
    anthropic.script(fake_anthropic.stall_mid_stream(), path="/v1/messages")
    with httpx.stream("POST", f"{running.url}/v1/chat/completions", json=body, timeout=10) as response:
        raw = response.read()
    assert b"Hello" in raw and b"stalled" in raw and b"[DONE]" not in raw
    assert anthropic.disconnected.wait(5)  # litellm's stream was closed: the provider stops generating


def test_a_base_url_written_with_v1_still_reaches_the_messages_api(fakes, anthropic, start_gateway):
    config = with_anthropic(fakes, anthropic)
    config["providers"][0]["base_url"] = anthropic.base_url + "/v1"
    running = start_gateway(config)
    wait_for(lambda: running.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
    assert chat(running.client())[0] == "anthropic" and anthropic.last().path == "/v1/messages"


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
    fakes["openai"].script(error("openai-500-server-error"), path="/embeddings")
    with pytest.raises(openai.APIStatusError) as caught:  # no other provider maps it: a 503
        running.client().embeddings.create(model="text-embedding-3-small", input="hi")
    assert caught.value.status_code == 503 and fakes["openai"].calls("/embeddings") == 2  # retries off: one more


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


def test_base_url_is_optional_for_this_flavor_only(tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": [anthropic_entry(None)]}))
    assert load_config(path).providers[0].base_url is None  # litellm's own address for the provider
    openai_entry = {"name": "openai", "flavor": "openai", "api_key_env": "K", "models": {"m": "m"}}
    path.write_text(yaml.safe_dump({"providers": [openai_entry]}))
    with pytest.raises(ConfigError, match=r"providers\[0\]: base_url is required for flavor 'openai'"):
        load_config(path)
