"""OpenAI's usage and costs API on the gateway: `GET /v1/organization/usage/completions`,
`…/embeddings`, `…/audio_speeches` and `/v1/organization/costs` (also without `/v1`, as the hot
routes, since clients set their base URL either way). The shapes are in gateway.accounting.report.

Who reads what: `Authorization: Bearer <admin key>` (GATEWAY_ADMIN_KEY, as the OpenAI SDK's
`admin_api_key` sends it) reads everything; a listed gateway key reads its own usage only, so a
team can watch its spend without the admin key; anyone else gets OpenAI's 401. These routes check
the caller themselves: the app lets SERVED_PATHS through its gateway-key check, which would
refuse the admin key.

A store that cannot be read now (Redis away) is a 503 in OpenAI's shape, never an empty page that
would read as "nothing was spent".
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.accounting.report import QueryError, costs_page, parse_query, usage_page
from gateway.web.wire import error_body

log = logging.getLogger("gateway.accounting")
PATHS = {
    "/organization/usage/completions": "completions",
    "/organization/usage/embeddings": "embeddings",
    "/organization/usage/audio_speeches": "audio_speeches",
    "/organization/costs": "costs",
}
# The exact paths served here: the app's gateway-key check lets these through (they check callers themselves).
SERVED_PATHS = frozenset(prefix + path for path in PATHS for prefix in ("/v1", ""))


def _json(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def reader(gateway: Any, request: Request) -> tuple[bool, str | None]:
    """(allowed, key name): (True, None) for the admin key, (True, name) for a listed gateway key."""
    # The raw header bytes, as the gateway-key check hashes them (Starlette's str is latin-1 decoded).
    authorization = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
    admin_key: str | None = gateway.admin_key
    if admin_key and hmac.compare_digest(authorization, f"Bearer {admin_key}".encode()):
        return True, None
    keys = gateway.keys
    key = keys.identify(authorization) if keys is not None else None
    return (True, key.name) if key is not None else (False, None)


def refused(gateway: Any) -> Response:
    if not gateway.admin_key and gateway.keys is None:
        message = (
            "Reading usage needs an admin key, and this gateway has none: start it with GATEWAY_ADMIN_KEY set, "
            "then send 'Authorization: Bearer <admin key>'."
        )
    else:
        message = (
            "Missing or invalid key: send 'Authorization: Bearer <key>' with the admin key (GATEWAY_ADMIN_KEY: "
            "all usage) or a gateway key (its own usage)."
        )
    return _json(401, error_body(401, message, code="invalid_api_key"))


def unreadable(gateway: Any, why: str) -> Response:
    message = f"Usage cannot be read right now ({why}); what was recorded is kept. Try again shortly."
    return _json(503, error_body(503, message, code="usage_store_unavailable"))


async def read_store(gateway: Any, read: Callable[[Any], Awaitable[Any]]) -> Any:
    """What `read(store)` answers, or the 503 to send when the store cannot be read now."""
    store = gateway.usage_store
    if store is None:
        return unreadable(gateway, "this gateway keeps no usage store")
    try:
        found = await read(store)
    except Exception:  # a store's bug must read as "unavailable", not as a 500 with no words
        log.exception("reading usage failed")
        found = None
    if found is None:
        status = store.status()
        return unreadable(gateway, f"the {status.get('backend', 'usage')} store is {status.get('state', 'down')}")
    return found


def add_usage_routes(api: FastAPI, gateway: Any) -> None:
    """`gateway` has `usage_store` (a UsageStore), `admin_key` (str | None) and `keys` (ClientKeys | None),
    read on every request so that a reload's new key list applies at once."""

    async def answer(kind: str, request: Request) -> Response:
        allowed, own = reader(gateway, request)
        if not allowed:
            return refused(gateway)
        try:
            query = parse_query(kind, request.query_params.multi_items(), time.time())
        except QueryError as exc:
            return _json(400, error_body(400, exc.message, param=exc.param, code="invalid_value"))
        rows = await read_store(gateway, lambda store: store.rows(*query.window()))
        if isinstance(rows, Response):
            return rows
        if own is not None:  # a gateway key sees its own requests only
            rows = [row for row in rows if row[1][0] == own]
        page = costs_page(query, rows) if kind == "costs" else usage_page(query, rows)
        return _json(200, orjson.dumps(page))

    def route(kind: str) -> Any:
        # A closure, not a default argument: FastAPI would read `kind` from the query string.
        async def serve(request: Request) -> Response:
            return await answer(kind, request)

        return serve

    for served in sorted(SERVED_PATHS):
        api.add_api_route(served, route(PATHS[served.removeprefix("/v1")]), methods=["GET"], include_in_schema=False)
