"""The stack's own floor: a proxy with the gateway's libraries and none of the gateway, for bench/run.py.

uvicorn (httptools, uvloop) in front, one pooled aiohttp session behind, the same deadline per
request (`asyncio.timeout`), the heap frozen after start-up like the gateway's, and nothing else:
no routing, checks, accounting, log line or metrics. What a request costs here the gateway cannot
go below without leaving these libraries; the difference is the gateway's own work.

    python bench/stack_floor.py PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any

import aiohttp
import uvicorn

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2].rstrip("/")
session: aiohttp.ClientSession | None = None


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global session
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            skip = ("User-Agent",)
            session = aiohttp.ClientSession(connector=connector, auto_decompress=False, skip_auto_headers=skip)
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        await session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
    async with asyncio.timeout(120):
        response = await session.post(UPSTREAM + scope["path"].removeprefix("/v1"), data=body, headers=headers)
        answer = await response.read()
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": response.status, "headers": head})
    await send({"type": "http.response.body", "body": answer})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, loop="auto", http="httptools", log_level="warning", access_log=False)
