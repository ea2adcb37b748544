"""The endpoint table: every proxied endpoint is one entry here.

An entry says where the endpoint lives (the same path under the gateway's /v1 and under each
provider's base_url), which capability a provider needs to be sent it, how a request is checked
before any provider sees it, what a success carries, and where its token counts are. The edge, the
router and the transports read only the entry, so a new endpoint is a new entry here plus the
capability on the flavors that have it.

Request checks are plain code over the parsed body (no pydantic on the hot path): enough that bad
input never reaches a provider, no more. An endpoint may also `fit` a request to each provider
(speech: its voice map and formats): the fields to send that provider, or why it cannot serve it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import BadRequest
from gateway.providers import Capability, Provider


class BodyKind(enum.Enum):
    JSON = "json"  # one JSON object, read whole, relayed as it came
    SSE = "sse"  # server-sent events, committed on the first data event
    BYTES = "bytes"  # raw bytes (audio), committed on the first bytes


Usage = dict[str, Any]


def _usage(doc: dict[str, Any]) -> Usage | None:
    """Token counts: OpenAI's `usage`, or (in Groq's streamed chunks) `x_groq.usage`. Odd shapes are no usage."""
    usage = doc.get("usage")
    if not usage:
        groq = doc.get("x_groq")
        usage = groq.get("usage") if isinstance(groq, dict) else None
    return usage if isinstance(usage, dict) else None


@dataclass(frozen=True, slots=True)
class Unsuited:
    """Why one provider cannot serve this one request as asked (it would only answer 400): skip it."""

    reason: str  # the skip's word in logs and metrics: unsupported_format, unsupported_voice
    why: str  # in the client's message: "produces only wav"


Fit = Callable[[Provider, dict[str, Any]], "dict[str, Any] | Unsuited"]


@dataclass(frozen=True, slots=True, eq=False)  # one object per endpoint: compared and hashed by identity, cheaply
class Endpoint:
    path: str  # under /v1 at the gateway and under a provider's base_url; the `endpoint` label of metrics
    capability: Capability
    check: Callable[[dict[str, Any]], None]  # raises BadRequest
    answer: BodyKind
    can_stream: bool = False  # `"stream": true` asks for SSE instead of `answer`
    usage: Callable[[dict[str, Any]], Usage | None] = _usage
    # What a request uses, known from the request itself (speech: its characters); None: from the answer.
    request_usage: Callable[[dict[str, Any]], Usage] | None = None
    fit: Fit | None = None  # the fields to send one provider, or why it cannot serve the request

    def streams(self, body: dict[str, Any]) -> bool:
        return self.can_stream and body.get("stream") is True


def _require_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(
            400,
            "you must provide a model parameter",
            param="model",
            code="missing_required_parameter" if model is None else "invalid_type",
        )


def check_chat(body: dict[str, Any]) -> None:
    _require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise BadRequest(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "'messages' must be a non-empty array.", param="messages", code="invalid_type")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(
                400,
                f"Invalid 'messages[{index}]': expected an object with a 'role'.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
    _check_stream(body)


def _check_stream(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest(400, "'stream' must be a boolean.", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest(400, "'stream_options' must be an object.", param="stream_options", code="invalid_type")


def check_embeddings(body: dict[str, Any]) -> None:
    _require_model(body)
    _check_text(body, "input")


def check_completions(body: dict[str, Any]) -> None:
    """Legacy text completions: a `prompt` in any of its four forms, and the stream fields as for chat."""
    _require_model(body)
    _check_text(body, "prompt")
    _check_stream(body)


def _check_text(body: dict[str, Any], name: str) -> None:
    """`input` / `prompt`: a string, an array of strings, of token ids, or of token id arrays."""
    items = body.get(name)
    if items is None:
        raise BadRequest(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if isinstance(items, str):
        return
    if not isinstance(items, list) or not items:
        raise BadRequest(400, f"'{name}' must be a string or a non-empty array.", param=name, code="invalid_type")
    if all(isinstance(item, str) for item in items) or all(_token(item) for item in items):
        return
    if all(isinstance(item, list) and item and all(_token(token) for token in item) for item in items):
        return
    raise BadRequest(
        400, f"'{name}' must be a string, an array of strings, or token arrays.", param=name, code="invalid_type"
    )


def _token(value: object) -> bool:
    """A token id: an int that is not a bool (JSON `true` is not token 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MAX_SPEECH_CHARACTERS = 4096  # OpenAI's limit on `input`


def check_speech(body: dict[str, Any]) -> None:
    """`POST /audio/speech` as OpenAI documents it; `stream_format: sse` is not relayed (see the README)."""
    _require_model(body)
    text = body.get("input")
    if not isinstance(text, str) or not text:
        code = "missing_required_parameter" if text is None else "invalid_type"
        raise BadRequest(400, "'input' must be a non-empty string.", param="input", code=code)
    if len(text) > MAX_SPEECH_CHARACTERS:
        message = f"'input' is {len(text)} characters long; the limit is {MAX_SPEECH_CHARACTERS}."
        raise BadRequest(400, message, param="input", code="string_above_max_length")
    voice = body.get("voice")
    if not (isinstance(voice, str) and voice) and not (isinstance(voice, dict) and isinstance(voice.get("id"), str)):
        code = "missing_required_parameter" if voice is None else "invalid_type"
        raise BadRequest(400, "'voice' must be a voice name or {\"id\": ...}.", param="voice", code=code)
    form = body.get("response_format")
    if form is not None and form not in SPEECH_FORMATS:
        message = f"'response_format' must be one of {', '.join(SPEECH_FORMATS)}."
        raise BadRequest(400, message, param="response_format", code="invalid_value")
    speed = body.get("speed")
    if speed is not None and (type(speed) not in (int, float) or not 0.25 <= speed <= 4.0):
        raise BadRequest(400, "'speed' must be a number from 0.25 to 4.0.", param="speed", code="invalid_value")
    if body.get("stream_format", "audio") != "audio":
        message = "Only stream_format 'audio' is supported: the gateway relays speech as audio bytes."
        raise BadRequest(400, message, param="stream_format", code="invalid_value")


def speech_characters(body: dict[str, Any]) -> Usage:
    """Speech is counted, and priced, in characters of input: the unit OpenAI and Groq bill tts in."""
    return {"characters": len(body["input"])}


def fit_speech(provider: Provider, body: dict[str, Any]) -> dict[str, Any] | Unsuited:
    """The voice to send this provider, or why it cannot serve the request (format, voice)."""
    form = body.get("response_format") or "mp3"  # OpenAI's default, so a provider must produce it
    formats = provider.speech_formats
    if form not in formats:
        produces = ", ".join(f for f in SPEECH_FORMATS if f in formats)
        return Unsuited("unsupported_format", f"produces only {produces} (asked for {form})")
    voices = provider.config.voices
    voice = body["voice"]
    if voices is None:
        return {"voice": voice}  # the client's own, restored after a provider that mapped it
    mapped = voices.get(voice) if isinstance(voice, str) else None
    if mapped is None:
        mapped = voices.get("default")
        if mapped is None:
            asked = voice if isinstance(voice, str) else voice.get("id")
            return Unsuited("unsupported_voice", f"maps no voice '{asked}' and has no default voice")
    return {"voice": mapped}


CHAT = Endpoint("/chat/completions", Capability.CHAT, check_chat, BodyKind.JSON, can_stream=True)
EMBEDDINGS = Endpoint("/embeddings", Capability.EMBEDDINGS, check_embeddings, BodyKind.JSON)
COMPLETIONS = Endpoint("/completions", Capability.COMPLETIONS, check_completions, BodyKind.JSON, can_stream=True)
SPEECH = Endpoint(
    "/audio/speech",
    Capability.SPEECH,
    check_speech,
    BodyKind.BYTES,
    request_usage=speech_characters,
    fit=fit_speech,
)
ENDPOINTS = (CHAT, EMBEDDINGS, COMPLETIONS, SPEECH)  # CHAT before COMPLETIONS: `label` matches path endings in order


def label(path: str) -> str:
    """The bounded `endpoint` label for a request path that was not routed (e.g. refused for its key)."""
    return next((e.path for e in ENDPOINTS if path.endswith(e.path)), "other")
