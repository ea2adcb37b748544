"""Non-streamed chat through the official SDK: serving, failover by class, cooldowns, the aggregate 503."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests import payloads
from tests.conftest import KEYS, MESSAGES, config_dict, post_and_leave, wait_for
from tests.fakes import Reply, error


def ask(client: openai.OpenAI, **extra):
    return client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def test_primary_serves_with_its_own_key_and_model(gateway, fakes):
    raw = ask(gateway.client(), temperature=0.2)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from openai"
    assert raw.headers["x-gateway-provider"] == "openai"
    seen = fakes["openai"].last()
    assert seen.headers["authorization"] == f"Bearer {KEYS['openai']}"  # never the client's token
    assert seen.json == {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2}
    assert fakes["groq"].calls() == 0


def test_insufficient_quota_fails_over_at_once_and_benches_openai(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    raw = ask(gateway.client())
    assert raw.headers["x-gateway-provider"] == "groq"
    assert raw.parse().choices[0].message.content == "Hello from groq"
    assert fakes["groq"].last().json["model"] == "llama-3.1-8b-instant"
    assert fakes["groq"].last().headers["authorization"] == f"Bearer {KEYS['groq']}"

    openai_state = gateway.provider("openai")
    assert openai_state["state"] == "cooldown"
    assert openai_state["reason"] == "quota_exhausted"
    assert 3500 < openai_state["cooldown_remaining_s"] <= 3600

    for _ in range(3):  # benched: no further traffic reaches OpenAI
        assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert fakes["openai"].calls() == 1


@pytest.mark.parametrize(
    ("flavor", "case", "state", "reason"),
    [
        ("openai", "openai-429-credit-balance-exhausted", "cooldown", "quota_exhausted"),
        ("openai", "openai-401-invalid-api-key", "misconfigured", "auth"),
        ("openai", "openai-429-rpm-retry-after", "cooldown", "rate_limited"),
        ("groq", "groq-429-rpd-daily-quota", "cooldown", "daily_limit"),
        ("gemini", "gemini-429-per-day-quota", "cooldown", "daily_limit"),
        ("gemini", "gemini-400-api-key-invalid-list", "misconfigured", "auth"),
        ("deepseek", "deepseek-402-insufficient-balance", "cooldown", "quota_exhausted"),
        ("ollama", "ollama-503-server-busy", "cooldown", "rate_limited"),
    ],
)
def test_each_dialect_fails_over_to_the_next_provider(fakes, start_gateway, flavor, case, state, reason):
    order = ("openai", "groq", "gemini", "deepseek", "ollama")
    order = order[order.index(flavor) :] + ("openai",) * (flavor == "ollama")
    gateway = start_gateway(config_dict(fakes, order=tuple(dict.fromkeys(order))))
    fakes[flavor].script(error(case))
    raw = ask(gateway.client())
    assert raw.headers["x-gateway-provider"] != flavor
    entry = gateway.provider(flavor)
    assert (entry["state"], entry["reason"]) == (state, reason)


@pytest.mark.parametrize("case", ["openai-429-insufficient-quota", "deepseek-400-model-not-exist"])
def test_an_error_body_split_across_segments_is_read_whole(fakes, start_gateway, case):
    flavor = case.split("-")[0]
    gateway = start_gateway(config_dict(fakes, order=(flavor, "ollama")))
    reply = error(case)
    reply.split_body_s = 0.05
    fakes[flavor].script(reply)
    assert ask(gateway.client()).headers["x-gateway-provider"] == "ollama"
    entry = gateway.provider(flavor)
    if flavor == "openai":
        assert entry["reason"] == "quota_exhausted"
    else:
        assert entry["models"]["gpt-4o-mini"]["state"] == "cooldown"


def test_rate_limit_cooldown_follows_the_hint(gateway, fakes):
    fakes["openai"].script(error("openai-429-rpm-x-ratelimit-reset"))  # x-ratelimit-reset-requests: 6m0s
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert 350 < gateway.provider("openai")["cooldown_remaining_s"] <= 360


@pytest.mark.parametrize(("hint", "bench_s"), [("0", 1.0), ("0.2", 1.0), ("10000000", 3600.0)])
def test_a_rate_limit_hint_is_clamped_to_1_s_and_quota_s(gateway, fakes, hint, bench_s):
    reply = error("openai-429-rpm-retry-after")
    reply.headers["retry-after"] = hint
    fakes["openai"].script(reply)
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    [line] = wait_for(gateway.log_lines, what="the request's log line")
    assert line["skipped"] == [{"provider": "openai", "reason": "rate_limited", "status": 429, "cooldown_s": bench_s}]


def test_request_too_large_fails_over_without_benching(gateway, fakes):
    fakes["openai"].script(error("openai-429-tpm-request-too-large"))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert gateway.provider("openai")["state"] == "available"


def test_a_request_too_large_for_every_provider_is_a_413_not_a_retry(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai", "groq")))
    fakes["openai"].script(error("openai-429-tpm-request-too-large"))
    fakes["groq"].script(error("groq-413-request-too-large"))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gateway.client())
    assert caught.value.status_code == 413
    assert "per-minute token budget" in caught.value.message


def test_caller_fault_goes_back_unchanged_and_cools_nothing(gateway, fakes):
    fakes["openai"].script(error("openai-400-context-length-exceeded"))
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gateway.client())
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length" in caught.value.message
    assert fakes["groq"].calls() == 0
    assert gateway.provider("openai")["state"] == "available"
    assert ask(gateway.client()).headers["x-gateway-provider"] == "openai"


def test_gemini_list_envelope_caller_fault_is_rewrapped(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("gemini", "groq")))
    fakes["gemini"].script(error("gemini-400-invalid-argument"))
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gateway.client())
    assert caught.value.body["type"] == "invalid_request_error"
    assert fakes["groq"].calls() == 0


def test_model_not_found_benches_only_that_model(gateway, fakes):
    fakes["openai"].script(error("openai-404-model-not-found"))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    entry = gateway.provider("openai")
    assert entry["state"] == "available"
    assert entry["models"]["gpt-4o-mini"]["state"] == "cooldown"
    assert entry["models"]["text-embedding-3-small"]["state"] == "available"


def test_transient_errors_open_the_breaker_after_a_streak(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, cooldowns={"transient_failures": 2, "transient_s": 30}))
    fakes["openai"].script(error("openai-500-server-error"))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert gateway.provider("openai")["state"] == "available"  # one failure benches nothing
    fakes["openai"].script(error("openai-502-cloudflare-html"))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("cooldown", "transient")
    assert 25 < entry["cooldown_remaining_s"] <= 30


def test_missing_key_is_misconfigured_not_fatal(fakes, start_gateway, monkeypatch):
    monkeypatch.delenv("TEST_OPENAI_KEY")
    gateway = start_gateway(config_dict(fakes))
    assert gateway.provider("openai")["state"] == "misconfigured"
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert fakes["openai"].calls() == 0


def test_all_out_gives_one_503_naming_every_provider(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai", "groq", "deepseek")))
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    fakes["groq"].script(error("groq-429-tpm"))
    fakes["deepseek"].script(error("deepseek-401-authentication-fails"))
    with pytest.raises(openai.InternalServerError) as caught:
        ask(gateway.client())
    err = caught.value
    assert err.status_code == 503
    assert err.code == "no_provider_available"
    assert "openai: credits exhausted, retry in 3600 s or add credits" in err.message
    assert "groq: rate limited, retry in 24 s" in err.message
    assert "deepseek: API key rejected" in err.message and "TEST_DEEPSEEK_KEY" in err.message
    assert err.response.headers["retry-after"] == "24"
    assert err.response.headers["x-should-retry"] == "false"  # 24 s is too long for a client to sleep on
    assert "Authentication Fails" not in err.message and "sk-" not in err.message  # no provider text

    with pytest.raises(openai.InternalServerError) as again:  # all benched now: nothing is called
        ask(gateway.client())
    assert "retry in 3" in again.value.message
    assert sum(fakes[f].calls() for f in ("openai", "groq", "deepseek")) == 3


def test_unknown_model_is_404(gateway, fakes):
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    assert sum(f.calls() for f in fakes.values()) == 0


def test_timeout_fails_over(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, timeouts={"connect_s": 1, "total_s": 0.5}))
    fakes["openai"].script(Reply(hang=True))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"


def test_deepseek_blank_line_keepalives_do_not_defeat_the_deadline(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("deepseek", "ollama"), timeouts={"connect_s": 1, "total_s": 0.5}))
    fakes["deepseek"].script(Reply(hang=True, keepalive=b"\n", keepalive_every_s=0.05))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "ollama"


def test_deepseek_blank_lines_before_the_answer_are_tolerated(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("deepseek", "ollama")))
    fakes["deepseek"].script(Reply(body=b"\n\n\n" + payloads.CHAT_OK["deepseek"]))
    raw = ask(gateway.client())
    assert raw.headers["x-gateway-provider"] == "deepseek"
    assert raw.parse().choices[0].message.content == "Hello from deepseek"


def test_reset_on_last_provider_is_retried_in_place(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("ollama",)))
    fakes["ollama"].script(Reply(drop=True), Reply(drop=True))
    raw = ask(gateway.client())
    assert raw.headers["x-gateway-provider"] == "ollama"
    assert fakes["ollama"].calls() == 3


def test_reset_is_not_retried_while_a_fallback_exists(gateway, fakes):
    fakes["openai"].script(Reply(drop=True))
    assert ask(gateway.client()).headers["x-gateway-provider"] == "groq"
    assert fakes["openai"].calls() == 1


def test_async_client_concurrent_requests(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))

    async def run() -> list[str]:
        client = gateway.async_client()
        results = await asyncio.gather(
            *(
                client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
                for _ in range(20)
            )
        )
        await client.close()
        return [r.headers["x-gateway-provider"] for r in results]

    served = asyncio.run(run())
    assert len(served) == 20 and set(served) <= {"openai", "groq"}
    assert served.count("groq") >= 1  # the one that met the 429 at least
    assert fakes["openai"].calls() == served.count("openai") + 1


def test_client_that_leaves_cancels_the_upstream_call(gateway, fakes):
    fakes["openai"].script(Reply(hang=True))
    post_and_leave(gateway.url, {"model": "gpt-4o-mini", "messages": MESSAGES}, fakes["openai"])
    assert fakes["openai"].disconnected.wait(5), "upstream still open after the client left"
    assert fakes["groq"].calls() == 0  # a client that left is no provider failure
    assert gateway.provider("openai")["state"] == "available"


def test_under_another_server_a_client_that_leaves_still_cancels_the_upstream_call(fakes, start_gateway):
    # Without our protocol's disconnect hook, the app watches `receive()` for the disconnect itself.
    gateway = start_gateway(config_dict(fakes), our_protocol=False)
    fakes["openai"].script(Reply(hang=True))
    post_and_leave(gateway.url, {"model": "gpt-4o-mini", "messages": MESSAGES}, fakes["openai"])
    assert fakes["openai"].disconnected.wait(5), "upstream still open after the client left"
    assert gateway.line(1)["outcome"] == "client_gone"


def test_a_last_resort_provider_is_never_benched_and_always_tried_last(fakes, start_gateway):
    config = config_dict(fakes, order=("ollama", "openai", "groq"))
    config["providers"][0]["last_resort"] = True  # first in the file, still tried last
    gateway = start_gateway(config)
    assert ask(gateway.client()).headers["x-gateway-provider"] == "openai"
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    fakes["groq"].script(error("groq-429-rpd-daily-quota"))
    fakes["ollama"].script(*(error("ollama-503-server-busy") for _ in range(5)))
    for _ in range(5):  # busy every time, and every time tried again
        with pytest.raises(openai.InternalServerError):
            ask(gateway.client())
    assert fakes["ollama"].calls() == 5
    entry = gateway.provider("ollama")
    assert (entry["state"], entry["last_resort"]) == ("available", True)
    assert ask(gateway.client()).headers["x-gateway-provider"] == "ollama"
