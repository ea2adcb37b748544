"""The soak: mixed traffic for minutes against one `gateway serve`, its RSS sampled every 10 s.

Plain answers, streams, failovers (the first provider refuses each request as too large, which
benches nothing, so every one of them fails over) and streams cut mid-way, from 8 keep-alive
clients, against bench/mock_sse.py. What it shows: whether memory levels off (a leak grows with
the requests served; a working set stops).

    python bench/soak.py [--minutes 10] [--out soak.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIX = (("plain", False, 50), ("sse-20", True, 25), ("failover", False, 15), ("cut-5", True, 10))
CLIENTS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def config(mock: int) -> str:
    base = f"http://127.0.0.1:{mock}/v1"
    entry = f"flavor: openai, base_url: '{base}', api_key_env: SOAK_KEY"
    # Cut streams on a last-resort provider of their own: cut after they began, they count towards its
    # breaker, which would bench a provider that also served the rest; a last resort is never benched.
    return (
        "providers:\n"
        f"  - {{name: primary, {entry}, models: {{plain: plain, sse-20: sse-20, failover: toolarge}}}}\n"
        f"  - {{name: backup, {entry}, models: {{failover: plain}}}}\n"
        f"  - {{name: cutter, {entry}, last_resort: true, models: {{cut-5: cut-5}}}}\n"
        "usage: {path: ':memory:'}\n"
    )


def client(port: int, stop: threading.Event, counts: dict[str, int], seed: int) -> None:
    pick = random.Random(seed)
    names = [name for name, _, weight in MIX for _ in range(weight)]
    streamed = {name: stream for name, stream, _ in MIX}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        model = pick.choice(names)
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": streamed[model]})
        try:
            conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            counts[model] = counts.get(model, 0) + 1
            if response.status != 200:
                counts["not 200"] = counts.get("not 200", 0) + 1
        except (OSError, http.client.HTTPException):
            counts["broken"] = counts.get("broken", 0) + 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    mock, port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    (work / "providers.yaml").write_text(config(mock))
    env = {**os.environ, "SOAK_KEY": "sk-soak", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    procs = [subprocess.Popen([sys.executable, str(BENCH / "mock_sse.py"), str(mock)])]
    serve = [sys.executable, "-m", "gateway", "serve", "--config", str(work / "providers.yaml"), "--port", str(port)]
    serve += ["--request-log", "off", "--drain-settle-s", "0"]
    gateway = subprocess.Popen(serve, env={**env, "PYTHONPATH": str(ROOT)}, cwd=work)
    procs.append(gateway)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/health/live")
                break
            except OSError:
                time.sleep(0.1)
        stop, counts = threading.Event(), [{} for _ in range(CLIENTS)]
        threads = [threading.Thread(target=client, args=(port, stop, counts[i], i)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        samples = []
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            served = sum(sum(c.values()) - c.get("not 200", 0) - c.get("broken", 0) for c in counts)
            samples.append({"t_s": round(elapsed), "rss_mb": round(rss_mb(gateway.pid), 1), "requests": served})
            print(f"{samples[-1]['t_s']:5d} s  RSS {samples[-1]['rss_mb']:6.1f} MB  {served} requests", flush=True)
            time.sleep(10)
        stop.set()
        for thread in threads:
            thread.join(60)
        totals: dict[str, int] = {}
        for c in counts:
            for name, n in c.items():
                totals[name] = totals.get(name, 0) + n
        print("requests by kind:", totals)
        if args.out:
            Path(args.out).write_text(json.dumps({"samples": samples, "requests": totals}, indent=1))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(40)


if __name__ == "__main__":
    main()
