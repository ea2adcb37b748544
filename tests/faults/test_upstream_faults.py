"""Upstreams that misbehave: redirects, huge answers, error events, odd but valid JSON, odd SSE framing."""

from __future__ import annotations

import re
import time

import httpx
import openai
import orjson
import pytest

from tests import payloads
from tests.conftest import KEYS, MESSAGES, config_dict, figure, served_by
from tests.fakes import Reply


def stream_body(url: str, served_by: str = "openai") -> bytes:
    # Asking for the usage report, as the relay would otherwise (rightly) leave it out.
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10) as response:
        assert (response.status_code, response.headers["x-gateway-provider"]) == (200, served_by)
        return response.read()


def test_a_redirect_is_never_followed(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    elsewhere = f"{fakes['ollama'].base_url}/chat/completions"  # another host, as far as anyone can tell
    fakes["openai"].script(Reply(status=307, body=b"", headers={"location": elsewhere}))
    assert served_by(gateway.client()) == "groq"
    assert fakes["ollama"].calls() == 0  # the prompt went nowhere else
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("misconfigured", "redirected")
    assert "redirects to http://127.0.0.1" in entry["detail"]
    alone = start_gateway(config_dict(fakes, order=("openai",)))
    fakes["openai"].script(Reply(status=302, body=b"", headers={"location": "https://example.com/login"}))
    with pytest.raises(openai.InternalServerError) as caught:  # the 503 words it as what it is
        alone.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "openai: its base_url redirects elsewhere, retry in 3600 s; fix base_url" in caught.value.message
    figure("redirect: a 307 to another host is not followed; 0 requests reached it; served by the next provider")


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_a_huge_answer_is_refused_at_the_cap(fakes, spawn_gateway, chunked):
    cap = 8 * 1024 * 1024
    gateway = spawn_gateway(config_dict(fakes, limits={"max_response_bytes": cap}))
    huge = b'{"id":"x","object":"chat.completion","choices":[],"pad":"' + b"x" * (64 * 1024 * 1024) + b'"}'
    served_by(gateway.client())  # warm: the RSS below is the gateway's working size
    before = rss_mb(gateway.proc.pid)
    fakes["openai"].script(Reply(body=huge, chunked=chunked))
    started = time.perf_counter()
    assert served_by(gateway.client()) == "groq"
    elapsed = time.perf_counter() - started
    grown = rss_mb(gateway.proc.pid) - before
    assert grown < 32  # it never held the 64 MB answer
    how = "chunked" if chunked else "with its length"
    figure(f"huge answer: 64 MB ({how}) refused at an 8 MiB cap in {elapsed * 1000:.0f} ms; RSS +{grown:.1f} MB")


def test_an_error_event_before_the_first_chunk_fails_over_and_is_never_relayed(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    leak = f"Incorrect API key provided: {KEYS['openai']}".encode()
    fakes["openai"].script(Reply(events=[b'event: error\ndata: {"error":{"message":"' + leak + b'"}}\n\n']))
    body = stream_body(gateway.url, served_by="groq")
    assert body.endswith(b"data: [DONE]\n\n")
    assert KEYS["openai"].encode() not in body
    assert fakes["groq"].calls() == 1
    figure("event: error before the first chunk: failed over, the next provider's stream served, nothing relayed")


def test_an_error_event_after_the_first_chunk_ends_the_stream_with_ours(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    events = payloads.STREAM_OK["openai"]
    leak = f"upstream exploded near {KEYS['openai']}".encode()
    bad = b'event: error\ndata: {"error":{"message":"' + leak + b'","type":"server_error"}}\n\n'
    fakes["openai"].script(Reply(events=[*events[:2], bad, b"data: [DONE]\n\n"]))
    body = stream_body(gateway.url)
    assert body.startswith(events[0] + events[1])
    assert b"event: error" not in body and b"[DONE]" not in body and b"upstream_stream_error" in body
    assert KEYS["openai"].encode() not in body
    line = gateway.line(1)
    assert line["outcome"] == "stream_broken"
    figure("event: error: relayed as our own error event (no [DONE], key scrubbed, counted as a failure)")


def test_error_null_is_not_an_error(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    plain = orjson.loads(payloads.CHAT_OK["openai"]) | {"error": None}
    fakes["openai"].script(Reply(body=orjson.dumps(plain)))
    assert served_by(gateway.client()) == "openai"
    events = [e.replace(b'"usage":null', b'"usage":null,"error":null') for e in payloads.STREAM_OK["openai"]]
    fakes["openai"].script(Reply(events=events))
    body = stream_body(gateway.url)
    assert b"Hello" in body and body.endswith(b"data: [DONE]\n\n")
    assert gateway.provider("openai")["state"] == "available"
    figure('"error": null: served as the answer it is, streamed and not')


def test_id_lines_before_data_lines_are_valid_sse(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes))
    events = [b"id: %d\n%s" % (i, e) for i, e in enumerate(payloads.STREAM_OK["openai"])]
    fakes["openai"].script(Reply(events=events))
    body = stream_body(gateway.url)
    assert body == b"".join(events)  # committed on the first data, relayed as it came
    figure("id: lines before data: lines: committed on the first data event, relayed byte for byte")


def test_a_crash_of_ours_mid_stream_still_ends_with_an_error_event(fakes, start_gateway):
    """Odd vendor fields once crashed the relay; whatever breaks inside it, the client is told."""
    gateway = start_gateway(config_dict(fakes))
    odd = b'data: {"id":"x","object":"chat.completion.chunk","choices":[],"usage":{},"x_groq":"odd"}\n\n'
    events = payloads.STREAM_OK["openai"]
    fakes["openai"].script(Reply(events=[*events[:-2], odd, events[-1]]))
    body = stream_body(gateway.url)
    assert body.endswith(b"data: [DONE]\n\n")  # an odd field is data, not a reason to cut the answer
    figure("a chunk with an empty usage beside a non-object x_groq: relayed as data, the answer complete")


def test_a_key_with_a_line_break_makes_its_provider_misconfigured(fakes, start_gateway, monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-abcdef\nsk-ghijkl")
    gateway = start_gateway(config_dict(fakes))
    assert served_by(gateway.client()) == "groq"  # not a 500: the chain serves
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("misconfigured", "invalid_key")
    assert entry["detail"].startswith("TEST_OPENAI_KEY holds a line break (\\n) at character 10 of 19")
    assert "sk-abc" not in str(gateway.health()) and "ghijkl" not in str(gateway.health())
    assert fakes["openai"].calls() == 0
    with pytest.raises(openai.InternalServerError) as caught:
        start_gateway(config_dict(fakes, order=("openai",))).client().chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
    assert "openai: its API key cannot be used: TEST_OPENAI_KEY holds a line break" in caught.value.message
    figure("a key with a line break: its provider misconfigured (which character, where; never the key), next served")
