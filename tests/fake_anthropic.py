"""A fake Anthropic Messages API: `POST /v1/messages` and `GET /v1/models` on the fakes' real HTTP server.

Shapes as Anthropic sends them (see ../shared/SURFACE.md §3): the message object with its usage,
the SSE sequence message_start → content_block_start → content_block_delta (text_delta)… →
content_block_stop → message_delta (stop_reason, cumulative output_tokens) → message_stop with a
`ping` in between, and the error envelope `{"type":"error","error":{…},"request_id":"req_…"}`
with a `request-id` header on every answer. Failures are scripted with the Replies built here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import MESSAGES, config_dict
from tests.fakes import FakeUpstream, Reply
from tests.payloads import ErrorCase

MODEL = "claude-haiku-4-5"
WORDS = ["Hello", " from", " anthropic"]
INPUT_TOKENS, OUTPUT_TOKENS = 12, 3
_REQUEST_ID = {"request-id": "req_011CUmtXYqDfK2QbUhdjuTMw"}

CREDIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or "
    "purchase credits."
)


def _error_body(kind: str, message: str) -> bytes:
    doc = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CUmtXYqDfK2QbUhdjuTMw"}
    return json.dumps(doc, separators=(",", ":")).encode()


def _rate_limit_headers(retry_after: str) -> dict[str, str]:
    return {
        "retry-after": retry_after,
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-11-29T19:30:17Z",
    }


# Anthropic's errors, as they come: the golden table's rows for the litellm flavor, and what the fake
# replays on command. (D = docs.claude.com/en/api/errors; U = user reports; ? = unconfirmed.)
ERROR_CASES = [
    ErrorCase(
        "anthropic-400-credit-balance",
        "litellm",
        400,
        _error_body("invalid_request_error", CREDIT_MESSAGE),
        "quota_exhausted",
        source="U anthropics/claude-code#4684",
    ),
    ErrorCase(
        "anthropic-402-billing",
        "litellm",
        402,
        _error_body("billing_error", "Billing issue"),
        "quota_exhausted",
        source="? developersdigest.tech",
    ),
    ErrorCase(
        "anthropic-429-rate-limit",
        "litellm",
        429,
        _error_body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
        "rate_limited",
        headers=_rate_limit_headers("17"),
        retry_after_s=17.0,
        source="D rate-limits",
    ),
    ErrorCase(
        "anthropic-529-overloaded",
        "litellm",
        529,
        _error_body("overloaded_error", "Overloaded"),
        "transient",
        source="D errors",
    ),
    ErrorCase(
        "anthropic-500-api-error",
        "litellm",
        500,
        _error_body("api_error", "Internal server error"),
        "transient",
        source="D errors",
    ),
    ErrorCase(
        "anthropic-401-invalid-key",
        "litellm",
        401,
        _error_body("authentication_error", "invalid x-api-key"),
        "auth",
        source="D errors",
    ),
    ErrorCase(
        "anthropic-403-permission",
        "litellm",
        403,
        _error_body("permission_error", "Your API key does not have permission to use the specified resource."),
        "auth",
        source="D errors",
    ),
    ErrorCase(
        "anthropic-404-model",
        "litellm",
        404,
        _error_body("not_found_error", "model: claude-3-5-haiku-lates"),
        "model_not_found",
        source="D errors",
    ),
    ErrorCase(
        "anthropic-413-too-large",
        "litellm",
        413,
        _error_body("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        "rate_limited",
        bench=False,
        source="D errors; the body may differ (Cloudflare)",
    ),
    ErrorCase(
        "anthropic-400-prompt-too-long",
        "litellm",
        400,
        _error_body("invalid_request_error", "prompt is too long: 215434 tokens > 200000 maximum"),
        "caller_fault",
        source="U",
    ),
]


def reply(case_id: str) -> Reply:
    """Replay one of ERROR_CASES, with Anthropic's headers."""
    case = next(c for c in ERROR_CASES if c.id == case_id)
    return Reply(case.status, case.body, {"content-type": "application/json", **_REQUEST_ID, **case.headers})


def message(text: str = "".join(WORDS)) -> bytes:
    doc = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
    return json.dumps(doc).encode()


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, separators=(',', ':'))}\n\n".encode()


def events(words: list[str] = WORDS) -> list[bytes]:
    """Anthropic's event sequence for one text block, one event per network chunk."""
    start = {
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
        }
    }
    out = [
        _sse("message_start", start),
        _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    out.append(_sse("ping", {}))
    for word in words:
        out.append(_sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}}))
    out.append(_sse("content_block_stop", {"index": 0}))
    delta = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": OUTPUT_TOKENS}}
    out += [_sse("message_delta", delta), _sse("message_stop", {})]
    return out


def error_mid_stream() -> Reply:
    """Some text, then Anthropic's in-band `error` event after the 200."""
    head = events()[:4]  # message_start, content_block_start, ping, "Hello"
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    return Reply(events=[*head, error], headers=dict(_REQUEST_ID))


def stall_mid_stream() -> Reply:
    """Some text, then nothing (the connection held open) until the client leaves."""
    return Reply(events=events(), stop_after=4, headers=dict(_REQUEST_ID))


class FakeAnthropic(FakeUpstream):
    """The fakes' server, answering as Anthropic does: its base URL has no /v1 (litellm adds it)."""

    def __init__(self) -> None:
        super().__init__("anthropic")
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _canned(self, path: str, streamed: bool, doc: Any = None) -> Reply:
        if path.startswith("/v1/models"):
            listed = {"data": [{"type": "model", "id": f"{MODEL}-20251001", "display_name": "Claude Haiku 4.5"}]}
            return Reply(body=json.dumps({**listed, "has_more": False}).encode(), headers=dict(_REQUEST_ID))
        if streamed:
            return Reply(events=events(), headers=dict(_REQUEST_ID))
        return Reply(body=message(), headers=dict(_REQUEST_ID))


# -- how the tests configure it ----------------------------------------------------------------------

KEY = "sk-ant-api03-canary-0123456789abcdef"
KEY_ENV = "TEST_ANTHROPIC_KEY"
MAPPED = f"anthropic/{MODEL}"


@pytest.fixture(scope="session", name="anthropic_server")
def anthropic_server_fixture() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic()
    yield server
    server.close()


@pytest.fixture(name="anthropic")
def anthropic_fixture(anthropic_server: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> FakeAnthropic:
    """The fake, reset, and its key in the environment (imported by the test modules that use it)."""
    anthropic_server.reset()
    monkeypatch.setenv(KEY_ENV, KEY)
    return anthropic_server


def anthropic_entry(fake: FakeAnthropic | None, **extra: Any) -> dict[str, Any]:
    entry = {"name": "anthropic", "flavor": "litellm", "api_key_env": KEY_ENV, "models": {"gpt-4o-mini": MAPPED}}
    if fake is not None:
        entry["base_url"] = fake.base_url
    return {**entry, **extra}


def with_anthropic(fakes: dict[str, FakeUpstream], anthropic: FakeAnthropic, **sections: Any) -> dict[str, Any]:
    """Anthropic first, OpenAI as its fallback."""
    config = config_dict(fakes, ("openai",), **sections)
    config["providers"].insert(0, anthropic_entry(anthropic))
    return config


def chat(client: openai.OpenAI) -> tuple[str, str]:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    return raw.headers["x-gateway-provider"], raw.parse().choices[0].message.content
