"""One JSON line per request, tied to the client by x-request-id."""

from __future__ import annotations

import httpx
import pytest

from tests import payloads
from tests.conftest import CHAT_MODELS, MESSAGES, post_and_leave, wait_for
from tests.fakes import Reply, error

CHAT = {"model": "gpt-4o-mini", "messages": MESSAGES}


def only_line(gateway) -> dict:
    lines = wait_for(gateway.log_lines, what="the request's log line")
    assert len(lines) == 1
    return lines[0]


def test_a_failover_is_one_line_naming_who_served_and_who_was_skipped(gateway, fakes):
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    raw = gateway.client().chat.completions.with_raw_response.create(**CHAT)
    line = only_line(gateway)
    assert line["request_id"] == raw.headers["x-request-id"]
    assert (line["event"], line["endpoint"], line["model"], line["stream"]) == (
        "request",
        "/chat/completions",
        "gpt-4o-mini",
        False,
    )
    assert (line["provider"], line["status"], line["outcome"]) == ("groq", 200, "ok")
    assert line["skipped"] == [{"provider": "openai", "reason": "quota_exhausted", "status": 429, "cooldown_s": 3600}]
    assert line["tokens"] == {"prompt": 55, "completion": 11}
    assert line["latency_ms"] > 0


def test_the_clients_request_id_is_kept_and_a_hostile_one_replaced(gateway, fakes):
    url = f"{gateway.url}/v1/chat/completions"
    response = httpx.post(url, json=CHAT, headers={"x-request-id": "req-abc.123"}, timeout=5)
    assert response.headers["x-request-id"] == "req-abc.123"
    response = httpx.post(url, json=CHAT, headers={"x-request-id": 'x" injected\\n' + "a" * 200}, timeout=5)
    assert response.status_code == 200 and len(response.headers["x-request-id"]) == 24
    lines = wait_for(lambda: len(gateway.log_lines()) == 2 and gateway.log_lines(), what="two log lines")
    assert [line["request_id"] for line in lines] == ["req-abc.123", response.headers["x-request-id"]]


def test_a_stream_logs_its_first_chunk_and_usage(gateway, fakes):
    fakes["openai"].script(Reply(events=payloads.STREAM_OK["openai"], headers={"x-request-id": "req_upstream_1"}))
    stream = gateway.client().chat.completions.create(**CHAT, stream=True)
    assert [c for c in stream]
    line = only_line(gateway)
    assert (line["stream"], line["provider"], line["outcome"]) == (True, "openai", "ok")
    assert line["first_chunk_ms"] > 0 and line["tokens"] == {"prompt": 13, "completion": 5}
    assert line["upstream_request_id"] == "req_upstream_1"


@pytest.mark.parametrize(
    ("body", "status", "outcome"),
    [
        (b"{broken", 400, "bad_request"),
        (b'{"model":"nope","messages":[{"role":"user","content":"hi"}]}', 404, "unknown_model"),
    ],
)
def test_refused_requests_are_logged_too(gateway, fakes, body, status, outcome):
    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=body, timeout=5)
    assert response.status_code == status
    line = only_line(gateway)
    assert (line["status"], line["outcome"], line["provider"]) == (status, outcome, None)
    assert line["request_id"] == response.headers["x-request-id"]


def test_when_nobody_can_serve_the_line_says_why_for_each(gateway, fakes):
    for flavor in ("openai", "groq", "gemini", "deepseek", "ollama"):
        fakes[flavor].script(Reply(status=500, body=b'{"error":{"message":"boom","type":"server_error"}}'))
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 503
    line = only_line(gateway)
    assert (line["status"], line["outcome"]) == (503, "no_provider")
    assert [(s["provider"], s["reason"], s["status"]) for s in line["skipped"]] == [
        (flavor, "transient", 500) for flavor in CHAT_MODELS
    ]


def test_a_client_that_leaves_is_logged_as_gone(gateway, fakes):
    fakes["openai"].script(Reply(hang=True))
    post_and_leave(gateway.url, CHAT, fakes["openai"])
    line = only_line(gateway)
    # Charged to the provider that had the request when the client left: it may bill it.
    assert (line["status"], line["outcome"], line["provider"]) == (499, "client_gone", "openai")
    assert line["estimated"] is True
