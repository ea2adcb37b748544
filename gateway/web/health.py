"""`/health` (the full picture), `/health/live` (the process works) and `/health/ready` (it can serve).

Orchestrators restart on liveness and route on readiness, so they must not be the same question: a
replica whose providers are all out, or that is draining, is alive (restarting it helps nobody)
but not ready (sending it traffic helps nobody either).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Response

PATHS = ("/health", "/health/live", "/health/ready")


def report(gateway: Any) -> tuple[int, dict[str, Any]]:
    """The full picture, and its status code: 200 while the replica can serve at all, else 503."""
    now = time.time()
    statuses = gateway.router.statuses(now)
    serving = [s.name for s in statuses if s.serving]
    status = "ok" if len(serving) == len(statuses) else "degraded" if serving else "unavailable"
    if gateway.drain.draining:
        status = "draining"
    providers = [s.as_dict(now) for s in statuses]
    # 200 while the gateway can serve at all, so orchestrators do not restart a useful replica.
    code = 200 if serving and not gateway.drain.draining else 503
    return code, {
        "status": status,
        "serving": serving,
        "providers": providers,
        "store": gateway.store.status(),
        "usage_store": gateway.usage_store.status(),
        "checks": gateway.checks,
    }


def _json(code: int, doc: dict[str, Any]) -> Response:
    return Response(orjson.dumps(doc), status_code=code, media_type="application/json")


def add_health_routes(api: FastAPI, gateway: Any) -> None:
    @api.api_route("/health", methods=["GET", "HEAD"])  # load balancers ask with HEAD
    async def health() -> Response:
        return _json(*report(gateway))

    @api.api_route("/health/live", methods=["GET", "HEAD"])
    async def live() -> Response:
        return _json(200, {"status": "live"})  # answering at all is the proof

    @api.api_route("/health/ready", methods=["GET", "HEAD"])
    async def ready() -> Response:
        if gateway.drain.draining:
            return _json(503, {"status": "draining"})
        serving = [s.name for s in gateway.router.statuses() if s.serving]
        if not serving:
            return _json(503, {"status": "unavailable", "serving": []})  # /health says why
        return _json(200, {"status": "ready", "serving": serving})
