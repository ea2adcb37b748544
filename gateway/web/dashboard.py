"""The dashboard page: `GET /dashboard` and its static files, served by the gateway itself.

The page (gateway/web/static/) is plain HTML, CSS and JavaScript with uPlot vendored beside it: no
build step, no CDN, so it works offline and behind a proxy. It holds no data: it asks for a key,
keeps it in the tab (sessionStorage) and reads the same JSON the API and CLI use (/health, the
usage API, /v1/dashboard/*), sending the key only as `Authorization: Bearer` to this origin.

So the page and its files need no key (the app lets DASHBOARD_PATHS through its gateway-key check), and
every answer carries a Content-Security-Policy that lets the page talk to its own origin only.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# Read once at import: a handful of small files, and a fixed set, so no path from a URL reaches the disk.
_STATIC = {
    item.name: item.read_bytes()
    for item in resources.files("gateway.web").joinpath("static").iterdir()
    if item.is_file() and any(item.name.endswith(ext) for ext in _TYPES)
}
PAGE = "/dashboard"
STATIC = "/dashboard/static/"
# Open to anyone who can reach the gateway: the page asks for the key itself, and shows nothing without one.
DASHBOARD_PATHS = frozenset({PAGE, *(STATIC + name for name in _STATIC if name != "dashboard.html")})
_HEADERS = {
    # The browser itself refuses any request to another origin: no CDN, no leak of the key or the data.
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # A new gateway version brings its page with it: the browser asks again (cheap: a few small files).
    "cache-control": "no-cache",
}


def _file(name: str) -> Response:
    media_type = next(kind for ext, kind in _TYPES.items() if name.endswith(ext))
    return Response(_STATIC[name], media_type=media_type, headers=_HEADERS)


def add_dashboard_routes(api: FastAPI) -> None:
    """Serve the page at /dashboard and its files at /dashboard/static/<name> (an unknown name is the app's 404)."""

    @api.get(PAGE, include_in_schema=False)
    async def page() -> Response:
        return _file("dashboard.html")

    for name in _STATIC:
        if name != "dashboard.html":
            api.add_api_route(STATIC + name, _serve(name), methods=["GET"], include_in_schema=False)


def _serve(name: str) -> object:
    # A closure per file, not a path parameter: only the files above are ever served.
    async def serve() -> Response:
        return _file(name)

    return serve
