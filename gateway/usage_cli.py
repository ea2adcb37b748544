"""`gateway usage`: requests, tokens and cost as a table, by provider, model, key, project, user or day.

Two ways in, the same table:
- `--url` (or GATEWAY_URL): a running gateway's `/v1/organization/usage/{completions,embeddings,audio_speeches}`,
  with GATEWAY_ADMIN_KEY (or `--key`; a gateway key reads its own usage only).
- otherwise the usage store itself: Redis when REDIS_URL is set, else the config's SQLite file
  (`usage.path`). What a gateway has not flushed yet (a fraction of a second) is not in it.

`--since 30m | 12h | 7d` reads whole UTC minutes, hours or days (hours past the two days the stores
keep minutes, days past the eight days they keep hours): the window starts at the beginning of the
first one, and the header says when. A cost of a model without a price is never shown as $0:
"unpriced", or the priced part and "+N unpriced".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.accounting import HOUR_BUCKETS_KEPT_S, MINUTE_BUCKETS_KEPT_S, make_usage_store
from gateway.accounting.ledger import Row
from gateway.accounting.prices import NANO_PER_USD
from gateway.accounting.report import FIELDS, LIMITS, WIDTHS, add_up, order
from gateway.accounting.usage import COUNTERS, DIMENSIONS

BY = {"provider": "provider", "model": "model", "key": "key", "project": "project", "user": "user", "day": "bucket"}
API_NAMES = {dimension: name for name, dimension in FIELDS.items()}  # "key" -> "api_key_id", ...
_UNITS = {"m": "1m", "h": "1h", "d": "1d"}
_NUMBERS = ("REQUESTS", "INPUT", "CACHED", "OUTPUT", "COST_USD", "ESTIMATED")


def add_usage_command(subparsers: Any) -> None:
    from gateway.settings import DEFAULT_CONFIG

    usage = subparsers.add_parser("usage", help="requests, tokens and cost by provider, model, key, project, user, day")
    usage.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d (whole UTC units; default 7d)")
    usage.add_argument(
        "--by",
        default="provider,model",
        help=f"columns to group by, comma-separated: {', '.join(BY)} (default: %(default)s)",
    )
    usage.add_argument(
        "--url", default=os.environ.get("GATEWAY_URL"), help="a running gateway (default: $GATEWAY_URL); else the store"
    )
    usage.add_argument(
        "--key",
        default=os.environ.get("GATEWAY_ADMIN_KEY"),
        help="with --url: the admin key (default: $GATEWAY_ADMIN_KEY)",
    )
    usage.add_argument(
        "--config",
        default=os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG),
        help="without --url: the providers file naming the usage store (default: as for serve)",
    )
    usage.set_defaults(run=usage_command)


def _say(message: str) -> None:
    print(f"gateway usage: {message}", file=sys.stderr)


def window(since: str, now: float) -> tuple[str, int, int]:
    """(bucket width, start, end) for `--since`; ValueError when it is not like 30m, 12h or 7d."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", since)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"--since must be a number of minutes, hours or days, like 30m, 12h or 7d, not {since!r}")
    width = _UNITS[match[2]]
    span = int(match[1]) * WIDTHS[width]
    # Past what the stores keep of minute and hour buckets, read coarser ones (the header says where it starts).
    if width == "1m" and span > MINUTE_BUCKETS_KEPT_S:
        width = "1h"
    if width == "1h" and span > HOUR_BUCKETS_KEPT_S:
        width = "1d"
    start = int(now) - span
    return width, start - start % WIDTHS[width], int(now) + 1


def usage_command(args: argparse.Namespace) -> int:
    by = [name.strip() for name in args.by.split(",") if name.strip()]
    if unknown := [name for name in by if name not in BY]:
        _say(f"--by takes {', '.join(BY)}; not {', '.join(unknown)}")
        return 2
    try:
        width, start, end = window(args.since, time.time())
    except ValueError as exc:
        _say(str(exc))
        return 2
    if args.url:
        if not args.key:
            _say("set GATEWAY_ADMIN_KEY (or --key) to the gateway's admin key, or pass one of its gateway keys")
            return 2
        try:
            rows = from_gateway(args.url, args.key, by, width, start, end)
        except RuntimeError as exc:
            _say(str(exc))
            return 1
        where = args.url
    else:
        read = _from_store(args.config, width, start, end)
        if isinstance(read, int):
            return read
        rows, where = read
    print(f"usage since {time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} UTC ({args.since}), from {where}")
    print(render(rows, by))
    return 0


def _from_store(config_path: str, width: str, start: int, end: int) -> tuple[list[Row], str] | int:
    from gateway.errors import ConfigError
    from gateway.settings import load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _say(f"cannot read the configuration, which names the usage store ({exc}); give --config, or --url")
        return 2
    redis_url = os.environ.get("REDIS_URL") or None
    if redis_url is None and config.usage.path != ":memory:" and not os.path.isfile(config.usage.path):
        # Opening it would make an empty file, and a table of zeros that reads as "nothing spent".
        _say(f"no usage file at {os.path.abspath(config.usage.path)} (usage.path, relative to here); give --url")
        return 1
    try:
        store = make_usage_store(redis_url, config.usage)
    except ValueError as exc:  # REDIS_URL of no form: the message names them
        _say(str(exc))
        return 2

    async def read() -> tuple[list[Row] | None, dict[str, Any]]:
        await store.start()
        try:
            return await store.rows(width, start, end), store.status()
        finally:
            await store.close()

    rows, status = asyncio.run(read())
    where = " ".join(str(part) for part in (status.get("backend"), status.get("url") or status.get("path")) if part)
    if rows is None:
        _say(f"the usage store ({where}) cannot be read now: {status.get('last_error') or status.get('state')}")
        return 1
    return rows, where


def from_gateway(url: str, key: str, by: Sequence[str], width: str, start: int, end: int) -> list[Row]:
    """Rows rebuilt from a gateway's usage pages, grouped by what `by` needs (RuntimeError: unreadable)."""
    base = url.rstrip("/").removesuffix("/v1")
    group_by = [("group_by", API_NAMES[BY[name]]) for name in by if name != "day"]
    rows: list[Row] = []
    for kind in ("completions", "embeddings", "audio_speeches"):
        cursor: str | None = None
        while True:
            params = [("start_time", start), ("end_time", end), ("bucket_width", width), ("limit", LIMITS[width][1])]
            query = urllib.parse.urlencode([*params, *group_by, *([("page", cursor)] if cursor else [])])
            page = _get(f"{base}/v1/organization/usage/{kind}?{query}", key)
            rows.extend(rows_of(page))
            if not page.get("has_more"):
                break
            cursor = page["next_page"]
    return rows


def _get(url: str, key: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise RuntimeError(
                "the gateway refused the key (401): use its GATEWAY_ADMIN_KEY, or a gateway key"
            ) from None
        try:
            message = str(json.load(exc)["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}: is that a gateway?"
        raise RuntimeError(f"{url}: {message}") from None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"cannot read {url}: {exc}") from None


def rows_of(page: dict[str, Any]) -> list[Row]:
    """A usage page's results as rows (grouped-out dimensions None), so one table serves both ways in."""
    rows: list[Row] = []
    for bucket in page["data"]:
        for result in bucket["results"]:
            dims: list[Any] = [None] * len(DIMENSIONS)
            for name, dimension in FIELDS.items():
                dims[DIMENSIONS.index(dimension)] = result.get(name)
            cost = result.get("cost_usd")
            counters = [
                result["num_model_requests"],
                result["characters"] if "characters" in result else result["input_tokens"],  # speech: characters
                result.get("input_cached_tokens") or 0,
                result.get("output_tokens") or 0,
                round(cost * NANO_PER_USD) if cost else 0,
                0,
                result.get("unpriced_requests") or 0,
                result.get("estimated_requests") or 0,
                0,  # failovers and errors: the dashboard's, not on usage pages
                0,
            ]
            rows.append((bucket["start_time"], tuple(dims), counters))  # type: ignore[arg-type]
    return rows


def cost_cell(counters: Sequence[int]) -> str:
    requests, unpriced = counters[0], counters[6]
    if requests and unpriced == requests:
        return "unpriced"
    usd = f"{(counters[4] + counters[5]) / NANO_PER_USD:,.6f}"
    return f"{usd} +{unpriced} unpriced" if unpriced else usd


def _numbers(counters: Sequence[int]) -> list[str]:
    requests, tokens_in, cached, tokens_out, estimated = *counters[:4], counters[7]
    return [f"{requests:,}", f"{tokens_in:,}", f"{cached:,}", f"{tokens_out:,}", cost_cell(counters), f"{estimated:,}"]


def _label(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(value))
    # A client chose `user`: no escape sequence of its reaches the terminal.
    return "".join(char if char.isprintable() else "?" for char in str(value))


def render(rows: Iterable[Row], by: Sequence[str]) -> str:
    """The table: one line per group of `by` (sorted), then the total; notes when unpriced or estimated."""
    sums = add_up(rows, [BY[name] for name in by])
    total = [0] * len(COUNTERS)
    lines = [[name.upper() for name in by] or [""]]
    lines[0] += _NUMBERS
    for group in sorted(sums, key=order):
        counters = sums[group].counters
        total = [a + b for a, b in zip(total, counters, strict=True)]
        if by:  # else the total is the only line
            lines.append([_label(name, value) for name, value in zip(by, group, strict=True)] + _numbers(counters))
    labels = max(len(by), 1)
    lines.append(["TOTAL"] + [""] * (labels - 1) + _numbers(total))
    widths = [max(len(line[n]) for line in lines) for n in range(len(lines[0]))]

    def format_line(line: list[str]) -> str:
        cells = [
            cell.ljust(w) if n < labels else cell.rjust(w) for n, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    text = [format_line(line) for line in lines[:-1]]
    text += ["-" * len(format_line(lines[-1])), format_line(lines[-1])]
    if total[6]:
        text.append(f"unpriced: {total[6]:,} request(s) to models without a price; give them prices: in providers.yaml")
    if total[7]:
        text.append(f"estimated: {total[7]:,} request(s) with tokens estimated (a stream cut before its usage report)")
    return "\n".join(text)
