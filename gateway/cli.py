"""The command line: `gateway serve`, `status`, `doctor`, `cooldown`, `keys hash|new`, `usage`.

Configuration comes from `--config` (or `GATEWAY_CONFIG`, else ./providers.yaml); the store from
`REDIS_URL` (unset: in-process). A bad config exits with status 2 and a message naming the file
and key; a missing provider key only marks that provider misconfigured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import urllib.error
import urllib.request

from gateway import client_keys
from gateway.settings import DEFAULT_CONFIG, ConfigError, Limits, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible LLM fallback gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config",
        default=os.environ.get("GATEWAY_CONFIG", DEFAULT_CONFIG),
        help="providers file (default: $GATEWAY_CONFIG or ./providers.yaml)",
    )
    serve.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")))
    serve.add_argument("--log-level", default=os.environ.get("GATEWAY_LOG_LEVEL", "warning"))
    serve.add_argument(
        "--request-log",
        choices=("stdout", "off"),
        default=os.environ.get("GATEWAY_REQUEST_LOG", "stdout"),
        help="one JSON line per request (default: stdout; $GATEWAY_REQUEST_LOG)",
    )
    serve.add_argument(
        "--drain-settle-s",
        type=float,
        default=5.0,
        help="on SIGTERM, seconds to keep serving while load balancers see /health/ready fail (default 5)",
    )
    serve.add_argument(
        "--drain-s",
        type=float,
        default=30.0,
        help="then, seconds for requests in flight to finish; streams still open end with an error (default 30)",
    )
    serve.set_defaults(run=serve_command)

    doctor = commands.add_parser("doctor", help="check every provider's key, connection, models, quota")
    doctor.add_argument("--config", default=serve.get_default("config"), help="providers file (default: as for serve)")
    doctor.set_defaults(run=doctor_command)

    status = commands.add_parser("status", help="who is serving, who is out, why and until when")
    status.add_argument(
        "--url",
        default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000"),
        help="a running gateway (default: $GATEWAY_URL or http://127.0.0.1:8000)",
    )
    status.set_defaults(run=status_command)

    cooldown = commands.add_parser("cooldown", help="set or clear a provider's cooldown by hand")
    cd_commands = cooldown.add_subparsers(dest="cooldown_command", required=True)
    clear = cd_commands.add_parser("clear", help="un-bench a provider (or provider/model) now")
    bench = cd_commands.add_parser("set", help="bench a provider (or provider/model) for a while")
    bench.add_argument("--seconds", type=float, required=True)
    bench.add_argument("--reason", default="manual")
    for command in (clear, bench):
        command.add_argument("key", help="a provider name, or provider/model")
        command.add_argument(
            "--url",
            default=os.environ.get("GATEWAY_URL"),
            help="a running gateway's admin API (needs GATEWAY_ADMIN_KEY); else REDIS_URL directly",
        )
        command.add_argument(
            "--config", default=serve.get_default("config"), help="to check the name, with REDIS_URL (as for serve)"
        )
        command.set_defaults(run=cooldown_command)
    clear.set_defaults(seconds=None, reason=None)

    keys = commands.add_parser("keys", help="gateway keys for client_keys in providers.yaml")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    hash_key = key_commands.add_parser("hash", help="print the client_keys entry of a key (read from stdin if omitted)")
    hash_key.add_argument("key", nargs="?")
    hash_key.set_defaults(run=keys_hash_command)
    key_commands.add_parser("new", help="make a new key and print it with its entry").set_defaults(run=keys_new_command)

    from gateway.usage_cli import add_usage_command

    add_usage_command(commands)
    return parser


def cooldown_command(args: argparse.Namespace) -> int:
    from gateway import cooldown_cli

    return cooldown_cli.run(args)


def keys_hash_command(args: argparse.Namespace) -> int:
    # Exactly what the gateway will compare: it strips the surrounding whitespace of what it is sent,
    # so a key file's trailing `\r\n` or spaces must not end up in the digest.
    key = (args.key if args.key is not None else sys.stdin.readline()).encode().strip()
    if not key:
        print("gateway keys hash: no key given", file=sys.stderr)
        return 2
    print(client_keys.digest(key))
    return 0


def keys_new_command(_args: argparse.Namespace) -> int:
    key = client_keys.new_key()
    print(f"key (give it to the client):        {key}")
    print(f"client_keys entry (providers.yaml): {client_keys.digest(key)}")
    return 0


def status_command(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            code, report = response.status, json.load(response)
    except urllib.error.HTTPError as exc:  # 503: up, but nothing can serve
        code, report = exc.code, json.load(exc)
    except (OSError, ValueError) as exc:
        print(f"gateway status: cannot read {url}: {exc}", file=sys.stderr)
        return 2
    print(f"gateway {args.url}: {report['status']}; serving: {', '.join(report['serving']) or 'nobody'}")
    print(f"{'PROVIDER':<12} {'STATE':<14} {'REASON':<16} {'FOR':>8}  DETAIL")
    for p in report["providers"]:
        remaining = p.get("cooldown_remaining_s")
        wait = f"{remaining:.0f} s" if remaining else "-"
        print(f"{p['name']:<12} {p['state']:<14} {p.get('reason') or '-':<16} {wait:>8}  {p.get('detail') or ''}")
        for model, state in p.get("models", {}).items():
            if state["state"] != "available":
                print(f"{'':<12} model {model}: {state['reason']} for {state['cooldown_remaining_s']:.0f} s")
    store = report["store"]
    print(
        f"store: {store['backend']} {store['state']}" + (f" ({store['last_error']})" if "last_error" in store else "")
    )
    return 0 if code == 200 else 1


def doctor_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    from gateway import doctor

    report = asyncio.run(doctor.run(config, os.environ.get("REDIS_URL") or None))
    print(report.render())
    return report.exit_code()


def serve_command(args: argparse.Namespace) -> int:
    if args.request_log not in ("stdout", "off"):  # argparse does not check a default from the environment
        print(
            f"gateway: --request-log / GATEWAY_REQUEST_LOG must be stdout or off, not {args.request_log!r}",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    from gateway.request_log import RequestLog
    from gateway.web.app import Gateway
    from gateway.web.drain import DrainingServer

    try:
        app = Gateway(
            config,
            os.environ.get("REDIS_URL") or None,
            os.environ.get("GATEWAY_ADMIN_KEY") or None,
            config_path=args.config,
            request_log=RequestLog() if args.request_log == "stdout" else RequestLog(None),
        )
    except ValueError as exc:  # a REDIS_URL of no known form: its message names the forms, never a password
        print(f"gateway: unusable REDIS_URL: {exc}", file=sys.stderr)
        return 2
    # Missing keys, like every other reason a provider cannot serve, are in the one table the start-up
    # checks log a moment later: one block that says what to fix, not a warning per provider first.
    _fit_open_files(config.limits)
    store = "redis" if os.environ.get("REDIS_URL") else "in-process"
    print(f"gateway: serving {args.config} on http://{args.host}:{args.port} ({store} cooldown store)", file=sys.stderr)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=False,  # nothing here reads the client address; saves a middleware per request
        server_header=False,
        # The drain ends open streams after --drain-s; this backstop, a little later, anything else.
        timeout_graceful_shutdown=max(args.drain_s, 0) + 2,
        loop="auto",
        http=app.http_protocol(),  # uvicorn's httptools protocol, with the ingress limits
        lifespan="on",
    )
    DrainingServer(config, app.drain, max(args.drain_settle_s, 0), max(args.drain_s, 0)).run()
    return 0


def _fit_open_files(limits: Limits) -> None:
    """Make room for the connections the limits allow: each is a file, and so is its upstream's."""
    import resource

    needed = limits.max_connections + limits.max_in_flight + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < needed:
            logging.getLogger("gateway").warning(
                "the open-files limit is %d (ulimit -n): fewer than limits.max_connections + max_in_flight + 64 = %d;"
                " raise it, or lower those limits, or connections past it are refused by the system",
                raised,
                needed,
            )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
