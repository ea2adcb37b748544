"""OpenAI's wire format at the edge: the JSON body of a request, and every error the gateway writes.

Errors become wire format only here, always `{"error": {"message", "type", "param", "code"}}`,
so the official SDKs raise the right exception class.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.classify import UpstreamError
from gateway.errors import BadRequest

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


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None, kind: str | None = None
) -> bytes:
    kind = kind or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


def bad_request_body(exc: BadRequest) -> bytes:
    return error_body(exc.status, exc.message, param=exc.param, code=exc.code)


def relayable_error(err: UpstreamError, body: bytes) -> bytes:
    """An upstream's rejection of the request: as it came when OpenAI-shaped, else rewrapped."""
    if err.openai_shaped:
        return body
    message = err.message or f"The upstream provider rejected the request (HTTP {err.status})."
    return error_body(err.status, message, code=err.code or (err.rpc_status or "").lower() or None)


def parse_json(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise BadRequest(400, "The request body is empty; expected a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, f"We could not parse the JSON body of your request: {exc.msg}.") from exc
    if not isinstance(body, dict):
        raise BadRequest(400, "The request body must be a JSON object.")
    return body
