"""What one gateway replica asks of Redis: commands at idle and under a bounded burst, counted by Redis.

Starts the benchmark's mocks and a real redis-server (bench/run.py's Bench, so the gateway is the
benchmark's: a seven-provider chain, every request counted for a key with a budget and rate limits,
usage on Redis), then one `gateway serve` with REDIS_URL. Reads `INFO commandstats` and `INFO cpu`
of that Redis before and after (1) an idle window and (2) a burst of chat requests sent by a few
threads, and prints the counts per command. Figures for README "Sizing".

    python bench/redis_load.py [--idle-s 10] [--requests 2000] [--threads 4]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Bench, post

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def info(port: int, section: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), "info", section], capture_output=True, text=True, check=True
    ).stdout


def commandstats(port: int) -> dict[str, int]:
    """Calls per command so far, as Redis counts them (commands run by a Lua script count too)."""
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^cmdstat_(\S+?):calls=(\d+)", info(port, "commandstats"), re.M)
    }


def redis_cpu_s(port: int) -> float:
    text = info(port, "cpu")
    return sum(
        float(re.search(rf"^{name}:([\d.]+)", text, re.M).group(1)) for name in ("used_cpu_sys", "used_cpu_user")
    )


def window(port: int, work) -> tuple[dict[str, int], float, float, object]:
    """Commands per command, Redis CPU seconds and wall seconds over `work()`, and what it returned."""
    calls, cpu, clock = commandstats(port), redis_cpu_s(port), time.monotonic()
    result = work()
    elapsed, cpu = time.monotonic() - clock, redis_cpu_s(port) - cpu
    after = commandstats(port)
    diff = {name: n - calls.get(name, 0) for name, n in after.items() if n - calls.get(name, 0)}
    # Our own INFO calls are not the gateway's.
    diff.pop("info", None)
    return diff, cpu, elapsed, result


def report(title: str, diff: dict[str, int], cpu: float, elapsed: float, requests: int = 0) -> None:
    total = sum(diff.values())
    print(f"\n{title}: {total} commands in {elapsed:.1f} s ({total / elapsed:.0f}/s); Redis CPU {cpu * 1000:.0f} ms")
    if requests:
        print(f"  {requests} requests: {total / requests:.3f} commands per request")
    for name, n in sorted(diff.items(), key=lambda item: -item[1]):
        print(f"  {name:<14} {n:>8}  ({n / elapsed:.1f}/s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=10.0, help="length of the idle window (default 10 s)")
    parser.add_argument("--requests", type=int, default=2000, help="chat requests in the burst (default 2000)")
    parser.add_argument("--threads", type=int, default=4, help="client threads sending them (default 4)")
    args = parser.parse_args()
    for tool in ("nginx", "redis-server", "redis-cli", "taskset"):
        if shutil.which(tool) is None:
            print(f"redis_load: {tool} is not installed (see bench/README.md)", file=sys.stderr)
            return 1
    bench = Bench(quick=True, litellm=False)
    try:
        bench.start_mocks()
        # Redis with no client at all: its own housekeeping, to subtract from the CPU figures below.
        diff, cpu, elapsed, _ = window(bench.redis_port, lambda: time.sleep(args.idle_s))
        report(f"Redis alone, {args.idle_s:.0f} s, no gateway", diff, cpu, elapsed)
        gateway, _ = bench.start_gateway("gateway", bench.gateway_config("gateway"), redis=True)
        url = f"{gateway.url}/chat/completions"
        for _ in range(20):  # warm-up: connections, the first flush, the start-up checks' writes
            post(url, CHAT)
        time.sleep(2)  # let the start-up checks finish before counting the idle traffic

        diff, cpu, elapsed, _ = window(bench.redis_port, lambda: time.sleep(args.idle_s))
        report(f"idle, {args.idle_s:.0f} s, one replica", diff, cpu, elapsed)

        def burst() -> list[int]:
            with ThreadPoolExecutor(args.threads) as pool:
                return [status for status, _ in pool.map(lambda _: post(url, CHAT, timeout=10), range(args.requests))]

        diff, cpu, elapsed, statuses = window(bench.redis_port, burst)
        ok = sum(1 for s in statuses if s == 200)
        report(f"burst, {args.requests} requests, {args.threads} threads, one replica", diff, cpu, elapsed, ok)
        print(f"  answered 200: {ok} of {args.requests}")
        clients = re.search(r"^connected_clients:(\d+)", info(bench.redis_port, "clients"), re.M).group(1)
        print(f"\nconnections to Redis: {int(clients) - 1} from the gateway (and this script's redis-cli)")
    finally:
        bench.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
