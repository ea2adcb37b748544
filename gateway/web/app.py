"""The HTTP application: the hot path (plain ASGI) in front, FastAPI for everything else.

FastAPI serves /health, /metrics, /v1/models and the error pages, and runs start-up and shutdown;
requests to the endpoint table's routes (gateway.endpoints) skip its routing and validation entirely.

Reload (SIGHUP or `POST /admin/reload`) builds a new router, edge and key list from the file and
swaps them in at once; requests in flight finish on what they started with. The store, the
transports (the HTTP pool) and the metrics live across reloads.

At start and after each reload the free checks of `gateway doctor` run in the background (no
token spent); what they find for certain (a provider that cannot be reached, a key rejected) goes
into routing before the first request pays for it, and one block in the log says who can serve.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway import checks, heap
from gateway.accounting import make_usage_store
from gateway.accounting.ledger import Ledger
from gateway.accounting.meter import Meter
from gateway.client_keys import ClientKeys
from gateway.endpoints import ENDPOINTS
from gateway.errors import ConfigError
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.providers import Provider
from gateway.request_log import RequestLog
from gateway.routing.router import Router
from gateway.settings import Config, load_config
from gateway.store import make_store
from gateway.transport import Transports
from gateway.web import dashboard_api, messages, usage_api
from gateway.web.admin import add_admin_off_routes, add_admin_routes
from gateway.web.dashboard import DASHBOARD_PATHS, add_dashboard_routes
from gateway.web.drain import Drain
from gateway.web.edge import KEY_SCOPE, Edge, respond
from gateway.web.health import PATHS as HEALTH_PATHS
from gateway.web.health import add_health_routes
from gateway.web.wire import error_body

log = logging.getLogger("gateway")
_CREATED = int(time.time())
# Health, scraping and the dashboard page (it asks for a key itself) need no gateway key; none shows a secret.
_OPEN_PATHS = frozenset({*HEALTH_PATHS, "/metrics", *DASHBOARD_PATHS})
_SELF_CHECKED = usage_api.SERVED_PATHS | dashboard_api.SERVED_PATHS
_SERVED = (
    *(f"POST /v1{endpoint.path}" for endpoint in ENDPOINTS),
    "GET /v1/models",
    "GET /v1/models/{model}",
    *(f"GET /v1{path}" for path in (*usage_api.PATHS, *dashboard_api.PATHS)),
    *(f"GET {path}" for path in HEALTH_PATHS),
    "GET /metrics",
    "GET /dashboard",
)


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class Gateway:
    """The ASGI callable uvicorn serves."""

    def __init__(
        self,
        config: Config,
        redis_url: str | None = None,
        admin_key: str | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.config_path = config_path
        self.admin_key = admin_key
        self.store = make_store(redis_url)
        self.transports = Transports(config.timeouts)
        self.metrics = Metrics(lambda: self.router.statuses())
        # Usage and spend: Redis when REDIS_URL is set, else the SQLite file `usage.path`.
        self.usage_store = make_usage_store(redis_url, config.usage)
        self.ledger = Ledger(self.usage_store, replica=os.urandom(6).hex())
        self.meter = Meter(self.ledger, self.metrics)
        self.metrics.budgets = self.meter.budgets
        self.request_log = request_log if request_log is not None else RequestLog()
        # A provider cleared on another replica (its probe succeeded there) starts afresh here too.
        self.store.on_cleared = lambda key: self.router.cleared_elsewhere(key)
        self._in_flight = 0  # proxied requests being answered, streams included
        self.drain = Drain()  # kept across reloads: a replica that drains goes on draining
        self.checks = "pending"  # the start-up checks: pending, running, done
        self._checks_task: asyncio.Task[None] | None = None
        self._apply(config)
        self.api = self._build_api()
        if admin_key:
            add_admin_routes(self.api, self, admin_key)
        else:
            add_admin_off_routes(self.api)
        usage_api.add_usage_routes(self.api, self)  # the admin key reads all; a gateway key its own usage
        dashboard_api.add_dashboard_api(self.api, self)  # the same

    def _apply(self, config: Config, previous: Router | None = None) -> None:
        router = Router(config, self.store, self.transports, self.metrics)
        if previous is not None:
            router.adopt(previous)
        edge = self._edge = Edge(router, config.limits.max_body_bytes, self.request_log, self.meter, self.drain)
        self.transports.configure(config.timeouts, config.limits.max_response_bytes)
        self.keys = ClientKeys(config.client_keys) if config.client_keys is not None else None
        self.meter.configure(router, self.keys)
        self.config, self.router = config, router
        self._hot = {}
        for endpoint in ENDPOINTS:  # with and without /v1, as clients configure their base URL either way
            handler = functools.partial(edge.handle, endpoint)
            self._hot[endpoint.path] = self._hot["/v1" + endpoint.path] = handler

    def http_protocol(self) -> type:
        """The HTTP protocol to serve this app with: uvicorn's, guarded by the current `limits:`."""
        from gateway.web.ingress import guarded_protocol

        return guarded_protocol(lambda: self.config.limits)

    def reload(self) -> Config:
        """Re-read the config file and serve it; on a bad file raise ConfigError and keep the running one."""
        if self.config_path is None:
            raise ConfigError("this gateway was not started from a file, so there is nothing to reload")
        config = load_config(self.config_path)
        self._apply(config, self.router)
        self._start_checks()
        log.warning("reloaded %s: providers %s", self.config_path, ", ".join(p.name for p in config.providers))
        return config

    def _reload_on_signal(self) -> None:
        try:
            self.reload()
        except ConfigError as exc:
            log.error("SIGHUP: configuration not reloaded; the running one keeps serving.\n%s", exc)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and self.keys is not None
            and scope["path"] not in _OPEN_PATHS
            and scope["path"] not in _SELF_CHECKED  # these take the admin key or a gateway key themselves
            and not scope["path"].startswith("/admin/")  # the admin key guards those
        ):
            authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            key = self.keys.identify(authorization)
            if key is None:
                return await self._edge.unauthorized(scope, send)
            scope[KEY_SCOPE] = key  # who the request counts for
        if scope["type"] == "http" and (handler := self._hot.get(scope["path"])) is not None:
            if scope["method"] == "POST":
                if self._in_flight >= self.config.limits.max_in_flight:  # shed at once: never a queue
                    return await self._edge.shed(scope, send, self.config.limits.max_in_flight)
                self._in_flight += 1
                try:
                    return await handler(scope, receive, send)
                finally:
                    self._in_flight -= 1
            body = error_body(405, f"Method {scope['method']} is not allowed on {scope['path']}; use POST.")
            return await respond(send, 405, body, [(b"allow", b"POST")])
        await self.api(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.transports.start()
        await self.store.start()
        await self.ledger.start()
        self._start_checks()
        heap.settle()  # what start-up made lives as long as the process: out of the collector's way
        # Signals reach only the main thread; a gateway embedded in a test thread reloads by admin call.
        on_signal = self.config_path is not None and threading.current_thread() is threading.main_thread()
        if on_signal:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload_on_signal)
        try:
            yield
        finally:
            if on_signal:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if self._checks_task is not None and not self._checks_task.done():
                self._checks_task.cancel()  # and let it close its own connections, for a moment at most
                await asyncio.wait([self._checks_task], timeout=1.0)
            await self.ledger.close()  # what is left is flushed, a bounded wait
            await self.store.close()
            await self.transports.close()

    def _start_checks(self) -> None:
        if self._checks_task is not None:
            self._checks_task.cancel()  # a reload: the new config's checks replace the old ones
        self.checks = "running"
        self._checks_task = asyncio.get_running_loop().create_task(self._run_checks(self.router), name="checks")

    async def _run_checks(self, router: Router) -> None:
        cooldowns = router.config.cooldowns

        def found(provider: Provider, row: checks.Row) -> None:  # each provider as soon as it is known
            router.checked(provider.name, row.finding, row.reachable, row.key_accepted)

        try:
            await self.store.synced(2.0)  # so that what the checks disprove is in the view to be cleared
            # As many refused connections as open the breaker: one at boot may be a blip.
            checked = await checks.check_all(router.config, attempts=cooldowns.transient_failures, found=found)
        except Exception:  # a bug in a check must not leave the state "running" for good, nor stop serving
            log.exception("start-up checks failed")
            self.checks = "failed"
            return
        self.checks = "done"
        store = self.store.status()
        store_line = f"store: {store['backend']} {store['state']}" + (f" ({store['url']})" if "url" in store else "")
        log.warning(
            "start-up checks (no tokens spent):\n%s\nFix what NOTES says: a key variable needs a restart; a changed "
            "providers.yaml a reload (kill -HUP, or POST /admin/reload with GATEWAY_ADMIN_KEY). "
            "`gateway doctor` runs these checks again at any time.",
            checks.Report([row for _, row in checked], store_line).render(),
        )
        # A last-resort provider is never benched, so while no request reaches it nothing else would
        # notice it coming back: check it again, for free, every transient_s (until a reload or stop).
        while True:
            await asyncio.sleep(cooldowns.transient_s)
            if router.unreachable:
                try:
                    await checks.check_all(router.config, names=set(router.unreachable), found=found)
                except Exception:
                    log.exception("checking unreachable providers again failed")

    def _build_api(self) -> FastAPI:
        api = FastAPI(title="LLM fallback gateway", lifespan=self._lifespan, docs_url=None, redoc_url=None)
        add_dashboard_routes(api)  # GET /dashboard: the page and its static files

        add_health_routes(api, self)

        @api.get("/metrics")
        async def metrics() -> Response:
            return Response(self.metrics.render(), media_type=CONTENT_TYPE)

        @api.get("/v1/models")
        async def models() -> Response:
            data = [_model(name) for name in self.router.models()]
            return _json(200, orjson.dumps({"object": "list", "data": data}))

        @api.get("/v1/models/{model:path}")
        async def model(model: str) -> Response:
            if model not in self.router.models():
                message = messages.unknown_model(model)
                return _json(404, error_body(404, message, param="model", code="model_not_found"))
            return _json(200, orjson.dumps(_model(model)))

        @api.exception_handler(HTTPException)
        async def http_error(request: Request, exc: HTTPException) -> Response:
            if exc.status_code == 404:  # no such route: say so, and what is served, not "not found" like a model
                message = (
                    f"Invalid URL ({request.method} {request.url.path}): this gateway does not serve it. "
                    f"It serves: {', '.join(_SERVED)}."
                )
                return _json(404, error_body(404, message, code="unsupported_endpoint"))
            return _json(exc.status_code, error_body(exc.status_code, str(exc.detail)), getattr(exc, "headers", None))

        @api.exception_handler(RequestValidationError)
        async def invalid(_request: Request, exc: RequestValidationError) -> Response:
            return _json(400, error_body(400, f"Invalid request: {exc.errors()[0]['msg']}"))

        @api.exception_handler(Exception)
        async def crashed(_request: Request, _exc: Exception) -> Response:
            return _json(500, error_body(500, "The gateway failed unexpectedly; see its log."))

        return api


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _CREATED, "owned_by": "gateway"}
