"""`gateway serve`: the command line.

Configuration comes from `--config` (or `GATEWAY_CONFIG`, else ./providers.yaml); the store from
`REDIS_URL` (unset: in-process). A bad config exits with status 2 and a message naming the file
and key; a missing provider key only marks that provider misconfigured.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway.settings import DEFAULT_CONFIG, ConfigError, load_config


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
    return parser


def serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    from gateway.app import Gateway

    app = Gateway(config, os.environ.get("REDIS_URL") or None)
    for provider in app.router.providers:
        if provider.key is None:
            logging.getLogger("gateway").warning(
                "provider %s is misconfigured: %s is not set; it will be skipped",
                provider.name,
                provider.config.api_key_env,
            )
    store = "redis" if os.environ.get("REDIS_URL") else "in-process"
    print(f"gateway: serving {args.config} on http://{args.host}:{args.port} ({store} cooldown store)", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        proxy_headers=False,  # nothing here reads the client address; saves a middleware per request
        server_header=False,
        timeout_graceful_shutdown=30,  # in-flight answers get time to finish, a stuck one cannot hold shutdown
        loop="auto",
        http="auto",
        lifespan="on",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
