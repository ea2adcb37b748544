"""OpenAI's wire format at the edge: request checks, and every error the gateway writes.

Errors become wire format only here, always `{"error": {"message", "type", "param", "code"}}`,
so the official SDKs raise the right exception class. Request checks are plain code over the
parsed body (no pydantic on the hot path): enough that bad input never reaches a provider,
no more.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class EdgeError(Exception):
    """A request the gateway answers itself with a 4xx/5xx in OpenAI's shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> bytes:
        return error_body(self.status, self.message, param=self.param, code=self.code)


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


def relayable_error(err: UpstreamError, body: bytes) -> bytes:
    """An upstream's rejection of the request: as it came when OpenAI-shaped, else rewrapped."""
    if err.openai_shaped:
        return body
    message = err.message or f"The upstream provider rejected the request (HTTP {err.status})."
    return error_body(err.status, message, code=err.code or (err.rpc_status or "").lower() or None)


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise EdgeError(400, "The request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EdgeError(400, f"We could not parse the JSON body of your request: {exc.msg}.") from exc
    if not isinstance(body, dict):
        raise EdgeError(400, "The request body must be a JSON object.")
    return body


def _require_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise EdgeError(
            400,
            "you must provide a model parameter",
            param="model",
            code="missing_required_parameter" if model is None else "invalid_type",
        )


def check_chat(body: dict[str, Any]) -> None:
    _require_model(body)
    messages = body.get("messages")
    if messages is None:
        raise EdgeError(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise EdgeError(400, "'messages' must be a non-empty array.", param="messages", code="invalid_type")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise EdgeError(
                400,
                f"Invalid 'messages[{index}]': expected an object with a 'role'.",
                param=f"messages[{index}]",
                code="invalid_type",
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise EdgeError(400, "'stream' must be a boolean.", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise EdgeError(400, "'stream_options' must be an object.", param="stream_options", code="invalid_type")


def check_embeddings(body: dict[str, Any]) -> None:
    _require_model(body)
    items = body.get("input")
    if items is None:
        raise EdgeError(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    if isinstance(items, str):
        return
    if not isinstance(items, list) or not items:
        raise EdgeError(400, "'input' must be a string or a non-empty array.", param="input", code="invalid_type")
    first = items[0]
    if isinstance(first, str) or isinstance(first, int) or isinstance(first, list):
        if all(isinstance(item, type(first)) for item in items):
            return
    raise EdgeError(
        400, "'input' must be a string, an array of strings, or token arrays.", param="input", code="invalid_type"
    )
