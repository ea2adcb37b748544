"""The dashboard's JSON, beside the usage API and with its auth: who served, who failed over and why,
what each key spent. `GET /v1/dashboard/session`, `…/traffic`, `…/failovers`, `…/keys` (also without
`/v1`, as the usage API). The admin key reads everything; a gateway key its own requests only.
Provider states are /health's (open: they hold no secrets).

Everything is read from the usage store, so with Redis it is every replica's: traffic from the minute
buckets (served requests by provider, failovers, errors), recent failovers from the list the ledger
keeps there, spend from the day buckets. What a replica has not flushed yet (≤ 0.1 s) is not in it.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from gateway.accounting.usage import UNSERVED
from gateway.web.usage_api import read_store, reader, refused

PATHS = ("/dashboard/session", "/dashboard/traffic", "/dashboard/failovers", "/dashboard/keys")
SERVED_PATHS = frozenset(prefix + path for path in PATHS for prefix in ("/v1", ""))
MINUTES = 60  # the traffic chart's last hour
_REQUESTS, _INPUT, _OUTPUT, _COST_IN, _COST_OUT, _FAILOVERS, _ERRORS = 0, 1, 3, 4, 5, 8, 9


def _json(status: int, doc: Any) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def add_dashboard_api(api: FastAPI, gateway: Any) -> None:
    """`gateway` as for the usage API, plus `router` (its providers, in order)."""

    async def read(request: Request, read_from: Any) -> tuple[str | None, Any] | Response:
        """(own key name or None for the admin, what `read_from(store)` read), or the error to answer."""
        allowed, own = reader(gateway, request)
        if not allowed:
            return refused(gateway)
        found = await read_store(gateway, read_from)
        return found if isinstance(found, Response) else (own, found)

    @api.get("/v1/dashboard/session", include_in_schema=False)
    @api.get("/dashboard/session", include_in_schema=False)
    async def session(request: Request) -> Response:
        allowed, own = reader(gateway, request)
        if not allowed:
            return refused(gateway)
        if own is None:
            return _json(200, {"role": "admin"})
        return _json(200, {"role": "key", "key": own, "project": gateway.keys.by_name[own].project})

    @api.get("/v1/dashboard/traffic", include_in_schema=False)
    @api.get("/dashboard/traffic", include_in_schema=False)
    async def traffic(request: Request) -> Response:
        end = int(time.time()) // 60 * 60 + 60
        start = end - MINUTES * 60
        answer = await read(request, lambda store: store.rows("1m", start, end))
        if isinstance(answer, Response):
            return answer
        own, rows = answer
        minutes = {at: {"start_time": at, "served": {}, "failovers": 0, "errors": 0} for at in range(start, end, 60)}
        for at, dims, counters in rows:
            minute = minutes.get(at)
            if minute is None or (own is not None and dims[0] != own):
                continue
            if counters[_REQUESTS] and dims[3] != UNSERVED:
                minute["served"][dims[3]] = minute["served"].get(dims[3], 0) + counters[_REQUESTS]
            minute["failovers"] += counters[_FAILOVERS]
            minute["errors"] += counters[_ERRORS]
        providers = [p.name for p in gateway.router.providers]
        return _json(200, {"bucket_seconds": 60, "providers": providers, "data": list(minutes.values())})

    @api.get("/v1/dashboard/failovers", include_in_schema=False)
    @api.get("/dashboard/failovers", include_in_schema=False)
    async def failovers(request: Request) -> Response:
        answer = await read(request, lambda store: store.recent_failovers())
        if isinstance(answer, Response):
            return answer
        own, entries = answer
        data = [entry for entry in map(orjson.loads, entries) if own is None or entry.get("key") == own]
        return _json(200, {"data": data})

    @api.get("/v1/dashboard/keys", include_in_schema=False)
    @api.get("/dashboard/keys", include_in_schema=False)
    async def keys(request: Request) -> Response:
        now = time.time()
        day = int(now) // 86400 * 86400
        today = time.gmtime(now)
        month = calendar.timegm((today.tm_year, today.tm_mon, 1, 0, 0, 0))
        minute = int(now) // 60 * 60

        async def both(store: Any) -> Any:
            days, minutes = await store.rows("1d", month, day + 86400), await store.rows("1m", minute, minute + 60)
            return None if days is None or minutes is None else (days, minutes)

        answer = await read(request, both)
        if isinstance(answer, Response):
            return answer
        own, (days, minutes) = answer
        listed = gateway.keys.by_name if gateway.keys is not None else {}
        data = []
        for name, key in listed.items():
            if own is not None and name != own:
                continue
            spent_day = sum(c[_COST_IN] + c[_COST_OUT] for at, d, c in days if d[0] == name and at == day)
            spent_month = sum(c[_COST_IN] + c[_COST_OUT] for _, d, c in days if d[0] == name)
            requests = sum(c[_REQUESTS] for _, d, c in minutes if d[0] == name)
            tokens = sum(c[_INPUT] + c[_OUTPUT] for _, d, c in minutes if d[0] == name)
            data.append(
                {
                    "name": name,
                    "project": key.project,
                    "budget": key.budget.model_dump() if key.budget is not None else None,
                    "spent_usd": {"day": spent_day / 1e9, "month": spent_month / 1e9},
                    "rate_limits": key.rate_limits.model_dump() if key.rate_limits is not None else None,
                    "this_minute": {"requests": requests, "tokens": tokens},
                }
            )
        return _json(200, {"data": data})
