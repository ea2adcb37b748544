"""The admin API: see, set and clear cooldowns by hand ("billing fixed, un-bench OpenAI now").

Mounted only when GATEWAY_ADMIN_KEY is set; without it every /admin path is a 404 that says the
admin API is off and how to turn it on (code `admin_api_disabled`). Every call
needs `Authorization: Bearer <admin key>` (compared in constant time), else a 401. A change goes
to the cooldown store, so with Redis every replica sees it within one sync poll.

`POST /admin/reload` re-reads providers.yaml on this replica (as SIGHUP does); a bad file is a
400 that names the file and key, and the running config keeps serving.
"""

from __future__ import annotations

import hmac
import time
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from gateway.errors import ConfigError
from gateway.store import Cooldown
from gateway.store.base import OPERATOR_REASON
from gateway.web.wire import error_body

if TYPE_CHECKING:
    from gateway.web.app import Gateway


def _json(status: int, body: bytes) -> Response:
    return Response(body, status_code=status, media_type="application/json")


_METHODS = ["GET", "PUT", "POST", "DELETE", "PATCH"]


def add_admin_off_routes(api: FastAPI) -> None:
    """Without an admin key, every /admin path says so, instead of a bare "Not found"."""

    @api.api_route("/admin/{_path:path}", methods=_METHODS)
    async def admin_off(_path: str) -> Response:
        message = (
            "The admin API is off on this gateway: start it with GATEWAY_ADMIN_KEY set to turn it on "
            "(then send that key as 'Authorization: Bearer <key>')."
        )
        return _json(404, error_body(404, message, code="admin_api_disabled"))


def add_admin_routes(api: FastAPI, gateway: Gateway, admin_key: str) -> None:
    expected = f"Bearer {admin_key}".encode()

    def refused(request: Request) -> Response | None:
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if hmac.compare_digest(given, expected):
            return None
        return _json(401, error_body(401, "Missing or invalid admin key.", code="invalid_admin_key"))

    def unknown(key: str) -> Response | None:
        name, _, model = key.partition("/")
        provider = next((p for p in gateway.router.providers if p.name == name), None)
        if provider is None:
            names = ", ".join(p.name for p in gateway.router.providers)
            message = f"No provider {name!r} is configured; configured: {names}."
            return _json(404, error_body(404, message, code="unknown_provider"))
        if model and model not in provider.config.models:
            message = f"Provider {name!r} has no model {model!r}; its models: {', '.join(provider.config.models)}."
            return _json(404, error_body(404, message, code="unknown_provider"))
        return None

    def listing() -> bytes:
        now = time.time()
        active = gateway.router.store.active(now)
        entries = [
            {"key": key, "reason": cd.reason, "remaining_s": round(cd.remaining(now), 1), "detail": cd.detail}
            for key, cd in sorted(active.items())
        ]
        return orjson.dumps({"cooldowns": entries})

    @api.get("/admin/cooldowns")
    async def list_cooldowns(request: Request) -> Response:
        return refused(request) or _json(200, listing())

    @api.delete("/admin/cooldowns/{key:path}")
    async def clear_cooldown(key: str, request: Request) -> Response:
        if (problem := refused(request) or unknown(key)) is not None:
            return problem
        gateway.router.store.clear(key)
        if "/" not in key:
            provider = next(p for p in gateway.router.providers if p.name == key)
            gateway.router.record_success(provider)  # a fresh start for the circuit breaker too
        return _json(200, listing())

    @api.put("/admin/cooldowns/{key:path}")
    async def set_cooldown(key: str, request: Request) -> Response:
        if (problem := refused(request) or unknown(key)) is not None:
            return problem
        try:
            body: Any = orjson.loads(await request.body())
            seconds = float(body["seconds"])
            reason = body.get("reason", "manual")
            if not 0 < seconds <= 30 * 86400 or not isinstance(reason, str) or not OPERATOR_REASON.fullmatch(reason):
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            message = (
                'Expected {"seconds": N, "reason": "..."} with 0 < N <= 2592000 and a reason of 1 to 64 letters, '
                "digits, spaces or _ . : / -."
            )
            return _json(400, error_body(400, message, param="seconds"))
        now = time.time()
        gateway.router.store.replace(key, Cooldown(reason, "set by an operator", now, now + seconds))
        return _json(200, listing())

    @api.post("/admin/reload")
    async def reload(request: Request) -> Response:
        if (problem := refused(request)) is not None:
            return problem
        try:
            config = gateway.reload()
        except ConfigError as exc:
            message = f"The configuration was not reloaded; the running one keeps serving. {exc}"
            return _json(400, error_body(400, message, code="invalid_config"))
        names = [p.name for p in config.providers]
        return _json(200, orjson.dumps({"reloaded": str(gateway.config_path), "providers": names}))
