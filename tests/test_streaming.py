"""Streaming: commit on the first real chunk, fail over before it, end with an error after it."""

from __future__ import annotations

import asyncio

import httpx
import openai
import orjson
import pytest

from tests import payloads
from tests.conftest import MESSAGES, config_dict, post_and_leave
from tests.fakes import Reply, error

SHORT = {"connect_s": 1, "total_s": 0.5}


def stream_text(client: openai.OpenAI, **extra) -> tuple[str, list]:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **extra))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def raw_stream(url: str) -> tuple[httpx.Response, bytes]:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10) as response:
        return response, response.read()


def test_stream_relays_every_chunk_and_usage(gateway, fakes):
    text, chunks = stream_text(gateway.client(), stream_options={"include_usage": True})
    assert text == "Hello from openai"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert fakes["openai"].last().json["stream_options"] == {"include_usage": True}


def test_odd_usage_fields_never_break_an_answer(gateway, fakes):
    """An empty `usage` beside a non-object `x_groq` is no usage, streamed or not, never a crash."""
    odd = b'data: {"id":"x","object":"chat.completion.chunk","choices":[],"usage":{},"x_groq":"odd"}\n\n'
    events = payloads.STREAM_OK["openai"]
    fakes["openai"].script(Reply(events=[*events[:-2], odd, events[-1]]))
    text, _ = stream_text(gateway.client())
    assert text == "Hello from openai"
    body = orjson.loads(payloads.CHAT_OK["openai"])
    body.update(usage={}, x_groq="odd")
    fakes["openai"].script(Reply(body=orjson.dumps(body)))
    reply = gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from openai"


def test_stream_bytes_are_relayed_as_they_came(gateway, fakes):
    response, body = raw_stream(gateway.url)
    assert response.headers["x-gateway-provider"] == "openai"
    assert response.headers["content-type"].startswith("text/event-stream")
    # All but the usage report: the gateway asked for it (to charge the stream), the client did not.
    events = payloads.STREAM_OK["openai"]
    assert body == b"".join(events[:-2] + events[-1:])
    assert b'"choices":[],"usage":{' in events[-2]


def test_quota_before_the_stream_fails_over(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    text, _ = stream_text(gateway.client())
    assert text == "Hello from groq"
    assert gateway.provider("openai")["reason"] == "quota_exhausted"


def test_error_in_the_first_event_fails_over(gateway, fakes):
    bad = (
        b'data: {"error":{"message":"The server experienced an error.","type":"server_error",'
        b'"param":null,"code":null}}\n\n'
    )
    fakes["openai"].script(Reply(events=[bad, b"data: [DONE]\n\n"]))
    text, _ = stream_text(gateway.client())
    assert text == "Hello from groq"


def test_keepalive_comments_do_not_defeat_the_first_chunk_deadline(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("deepseek", "ollama"), timeouts=SHORT))
    fakes["deepseek"].script(
        Reply(
            events=payloads.STREAM_OK["deepseek"], stop_after=0, keepalive=b": keep-alive\n\n", keepalive_every_s=0.05
        )
    )
    text, _ = stream_text(gateway.client())
    assert text == "Hello from ollama"


def test_drop_mid_stream_is_an_error_not_a_complete_answer(gateway, fakes):
    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], stop_after=2, drop_mid_stream=True))
    response, body = raw_stream(gateway.url)
    assert response.status_code == 200
    assert b"[DONE]" not in body
    last = body.strip().split(b"\n\n")[-1]
    error_event = orjson.loads(last.removeprefix(b"data: "))
    assert error_event["error"]["code"] == "upstream_stream_error"
    assert "incomplete" in error_event["error"]["message"]

    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], stop_after=2, drop_mid_stream=True))
    with pytest.raises(openai.APIError):  # the SDK raises rather than returning a cut answer
        stream_text(gateway.client())


def test_stall_mid_stream_ends_with_an_error(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, timeouts=SHORT))
    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], stop_after=2))
    _, body = raw_stream(gateway.url)
    assert b"[DONE]" not in body
    assert b"stalled" in body and b"upstream_stream_error" in body


def test_crlf_line_ends_split_across_chunks(gateway, fakes):
    crlf = [e.replace(b"\n", b"\r\n") for e in payloads.STREAM_OK["openai"]]
    pieces = []
    for event in crlf:  # cut every event between its last CR and LF
        pieces += [event[:-1], event[-1:]]
    fakes["openai"].script(Reply(events=pieces))
    _, body = raw_stream(gateway.url)
    assert body.rstrip().endswith(b"data: [DONE]")
    assert b"upstream_stream_error" not in body
    assert gateway.provider("openai")["state"] == "available"


def test_upstream_error_event_mid_stream_is_not_passed_off_as_done(gateway, fakes):
    events = payloads.STREAM_OK["openai"]
    bad = b'data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}\n\n'
    fakes["openai"].script(Reply(events=[*events[:2], bad, b"data: [DONE]\n\n"]))
    _, body = raw_stream(gateway.url)
    assert body.startswith(events[0] + events[1])
    assert b"[DONE]" not in body and b"upstream_stream_error" in body


@pytest.mark.parametrize("good_events", [1, 2], ids=["right-after-the-first-event", "mid-stream"])
def test_keepalive_comments_after_commit_do_not_reset_the_stall_deadline(fakes, start_gateway, good_events):
    gateway = start_gateway(config_dict(fakes, order=("deepseek",), timeouts=SHORT))
    fakes["deepseek"].script(
        Reply(
            events=payloads.STREAM_OK["deepseek"],
            stop_after=good_events,
            keepalive=b": keep-alive\n\n",
            keepalive_every_s=0.05,
        )
    )
    _, body = raw_stream(gateway.url)
    assert b"stalled" in body and b"[DONE]" not in body


def test_client_disconnect_cancels_the_upstream(gateway, fakes):
    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], stop_after=2))
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as response:
        first = next(response.iter_raw())
        assert first.startswith(b"data: ")
    # The client closed its connection; the gateway must close its upstream connection in turn.
    assert fakes["openai"].disconnected.wait(5), "upstream still open after the client left"


def test_client_disconnect_before_the_first_chunk_cancels_too(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("openai",)))
    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], stop_after=0))
    post_and_leave(gateway.url, {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}, fakes["openai"])
    assert fakes["openai"].disconnected.wait(5), "upstream still open after the client left"


def test_stream_from_every_flavor(fakes, start_gateway):
    for flavor in ("openai", "groq", "gemini", "deepseek", "ollama"):
        gateway = start_gateway(config_dict(fakes, order=(flavor,)))
        text, _ = stream_text(gateway.client(), stream_options={"include_usage": True})
        assert text == f"Hello from {flavor}"


def test_async_stream(gateway, fakes):
    async def run() -> str:
        client = gateway.async_client()
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return text

    assert asyncio.run(run()) == "Hello from openai"
