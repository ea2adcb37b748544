"""`gateway cooldown set|clear`: bench or un-bench a provider by hand, and say what really happened.

Two ways in, with different reach:
- `--url` (or GATEWAY_URL): a running gateway's admin API. It changes that gateway's store: its own
  memory, or the Redis it shares with other replicas. Needs GATEWAY_ADMIN_KEY, the gateway's.
- otherwise REDIS_URL: straight to Redis. Only gateways that use that Redis see it; one started
  without REDIS_URL keeps its cooldowns in its own memory, and only its admin API (or a restart)
  changes them. So the command says how many gateways use that Redis right now.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request

from gateway.errors import ConfigError
from gateway.settings import Config, load_config
from gateway.store.base import OPERATOR_REASON

_MAX_BENCH_S = 30 * 86400  # as the admin API


def run(args: argparse.Namespace) -> int:
    if args.seconds is not None and not 0 < args.seconds <= _MAX_BENCH_S:
        _say(f"--seconds must be more than 0 and at most {_MAX_BENCH_S} (30 days), not {args.seconds:g}")
        return 2
    if args.reason is not None and not OPERATOR_REASON.fullmatch(args.reason):
        _say("--reason must be 1 to 64 letters, digits, spaces or _ . : / - (it is shown to clients)")
        return 2
    if args.url:
        return _through_gateway(args)
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        _say("give --url (a running gateway, with GATEWAY_ADMIN_KEY) or set REDIS_URL (the gateways' Redis)")
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        _say(f"cannot check {args.key!r} against the configuration ({exc}); give --config")
        return 2
    if (problem := _unknown(config, args.key)) is not None:
        _say(problem)
        return 1
    return asyncio.run(_in_redis(redis_url, args))


def _say(message: str) -> None:
    print(f"gateway cooldown: {message}", file=sys.stderr)


def _done(args: argparse.Namespace) -> str:
    return "cleared" if args.seconds is None else f"benched for {args.seconds:g} s ({args.reason})"


def _unknown(config: Config, key: str) -> str | None:
    """None when `key` names a configured provider (or provider/model), else what is wrong."""
    name, _, model = key.partition("/")
    provider = next((p for p in config.providers if p.name == name), None)
    if provider is None:
        return f"no provider {name!r} is configured; configured: {', '.join(p.name for p in config.providers)}"
    if model and model not in provider.models:
        return f"provider {name!r} has no model {model!r}; its models: {', '.join(provider.models)}"
    return None


def _through_gateway(args: argparse.Namespace) -> int:
    admin_key = os.environ.get("GATEWAY_ADMIN_KEY")
    if not admin_key:
        _say("set GATEWAY_ADMIN_KEY to the key the gateway was started with, to use its admin API")
        return 2
    url = f"{args.url.rstrip('/')}/admin/cooldowns/{args.key}"
    data = None if args.seconds is None else json.dumps({"seconds": args.seconds, "reason": args.reason}).encode()
    method = "DELETE" if data is None else "PUT"
    request = urllib.request.Request(url, data=data, method=method, headers={"authorization": f"Bearer {admin_key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.load(exc)["error"]["message"])
        except (ValueError, KeyError, TypeError):  # not a gateway's answer
            message = f"HTTP {exc.code} from {args.url}: is that a gateway?"
        if exc.code == 401:
            _say("the gateway refused the admin key (401): GATEWAY_ADMIN_KEY here must be the one it was started with")
        else:
            _say(message)  # the admin API says what is wrong and what to do
        return 1
    except OSError as exc:
        _say(f"cannot reach {args.url}: {exc}")
        return 2
    print(f"{args.key}: {_done(args)} on the gateway at {args.url} (and every replica sharing its Redis, if any)")
    return 0


async def _in_redis(redis_url: str, args: argparse.Namespace) -> int:
    from gateway.store import Cooldown
    from gateway.store.cooldowns import RedisCooldowns
    from gateway.store.redis import safe_url

    where = safe_url(redis_url)  # never the password
    try:
        store = RedisCooldowns(redis_url, timeout_s=2.0)  # a person can wait longer than a request
        store.connect()
    except ValueError as exc:  # not a Redis URL of any form: the message names them
        _say(str(exc))
        return 2
    try:
        now = time.time()
        cooldown = (
            None if args.seconds is None else Cooldown(args.reason, "set by an operator", now, now + args.seconds)
        )
        if not await store.apply_now(args.key, cooldown):
            _say(f"redis at {where} did not answer ({store.status().get('last_error', 'no answer')})")
            return 1
        gateways = await store.gateways()
    finally:
        await store.close()
    if gateways:
        print(f"{args.key}: {_done(args)} in {where}; {gateways} running gateway(s) use it and see it within a second")
        return 0
    if gateways is None:
        print(f"{args.key}: {_done(args)} in {where} (how many gateways use it could not be read)")
        return 0
    print(f"{args.key}: {_done(args)} in {where}, but no running gateway uses this Redis")
    _say(
        "no gateway has checked in with this Redis in the last 10 s. A gateway started without REDIS_URL keeps "
        "its cooldowns in its own memory: change them through its admin API (--url, with GATEWAY_ADMIN_KEY), "
        "or restart it, which forgets them"
    )
    return 0  # what was asked was written (gateways started later read it): the words say the rest
