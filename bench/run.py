"""The gateway benchmark: direct to a mock, nginx proxy_pass (the floor), the gateway, and LiteLLM proxy.

Everything listens on 127.0.0.1 and stops by itself. The proxy under test is pinned to CPU 0; the
mocks and the load generator (wrk) to CPU 1. The figure that holds on a noisy machine is the
proxy's own CPU time per request, read from /proc/PID/stat before and after each load run.
See bench/README.md for what each figure means.

    python bench/run.py [--quick] [--litellm] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from mock_sse import COMPLETION  # noqa: E402

PROXY_CPU, LOAD_CPU = "0", "1"
# Every target gets this bearer token; LiteLLM proxy refuses to start without a strong master key.
CLIENT_KEY = "sk-bench-master-6f1c2a9e4b7d4e0f8a3c5b1d2e9f7a60"
TICK = os.sysconf("SC_CLK_TCK")
QUOTA_BODY = json.dumps(
    {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / TICK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        total += int(match.group(1)) if match else 0
    return total / 1024


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def post(url: str, body: dict, timeout: float = 2.0) -> tuple[int, bytes]:
    headers = {"content-type": "application/json", "authorization": f"Bearer {CLIENT_KEY}"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_200(url: str, body: dict, deadline_s: float = 120) -> float:
    """Seconds until the first 200 (polling every 10 ms); the caller starts the clock."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if post(url, body, timeout=1)[0] == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} never answered 200")


@dataclass
class Target:
    name: str
    url: str  # base, e.g. http://127.0.0.1:PORT/v1
    pids: list[int] = field(default_factory=list)


def settle(target: Target, limit_s: float = 60) -> None:
    """Wait until the target stops using CPU: an overloaded proxy (LiteLLM) works through its
    backlog after wrk stops, and would steal the shared core from the next target's run."""
    if not target.pids:
        return
    end = time.monotonic() + limit_s
    last = cpu_seconds(target.pids)
    while time.monotonic() < end:
        time.sleep(0.5)
        now = cpu_seconds(target.pids)
        if now - last <= 0.02:  # two clock ticks in half a second: idle
            return
        last = now


@dataclass
class Run:
    target: str
    scenario: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None
    max_ms: float | None = None  # the slowest request of the run (wrk's Latency Max)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(text: str) -> float:
    """wrk's latency ("151.00us", "3.23ms", "1.02s"); NaN when it printed something else."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        print(f"bench: unreadable wrk latency {text!r}", file=sys.stderr)
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(target: Target, body: dict, concurrency: int, seconds: float, scenario: str) -> Run:
    env = {**os.environ, "BENCH_BODY": json.dumps(body), "BENCH_CLIENT_KEY": CLIENT_KEY}
    before = cpu_seconds(target.pids) if target.pids else None
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CPU,
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(BENCH / "post.lua"),
            f"{target.url}/chat/completions",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    cpu = (cpu_seconds(target.pids) - before) if before is not None else None
    settle(target)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Run(
        target=target.name,
        scenario=scenario,
        concurrency=concurrency,
        requests=requests,
        errors=errors,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(m.group(1) if (m := re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)) else ""),
        p99_ms=_ms(m.group(1) if (m := re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)) else ""),
        cpu_ms_per_request=(cpu * 1000 / requests) if cpu is not None and requests else None,
        max_ms=_ms(m.group(1) if (m := re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.MULTILINE)) else ""),
    )


class Bench:
    def __init__(self, quick: bool, litellm: bool) -> None:
        self.quick = quick
        self.litellm = litellm
        self.seconds = 3 if quick else 4
        # Every measurement is repeated, interleaved, and reported as the median: this VM's
        # neighbours steal bursts of CPU that would otherwise decide a single run.
        self.rounds = 1 if quick else 3
        self.stack = ExitStack()
        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="gateway-bench-")))
        self.procs: list[subprocess.Popen] = []
        self.results: dict = {"runs": []}

    # -- processes ---------------------------------------------------------------------------------

    def spawn(self, args: list[str], cpu: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *args],
            stdout=subprocess.DEVNULL,
            stderr=kwargs.pop("stderr", subprocess.DEVNULL),
            **kwargs,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.stack.close()

    def nginx(self, name: str, servers: str, cpu: str) -> subprocess.Popen:
        root = self.tmp / name
        root.mkdir()
        conf = root / "nginx.conf"
        conf.write_text(
            f"worker_processes 1; daemon off; master_process off; pid {root}/nginx.pid;"
            f" error_log {root}/error.log; events {{ worker_connections 4096; }}"
            f" http {{ access_log off; client_body_temp_path {root}/b; proxy_temp_path {root}/p;"
            f" fastcgi_temp_path {root}/f; uwsgi_temp_path {root}/u; scgi_temp_path {root}/s; {servers} }}"
        )
        return self.spawn(["nginx", "-c", str(conf), "-p", str(root)], cpu)

    def start_mocks(self) -> None:
        self.mock_port, self.sse_port, self.floor_port = free_port(), free_port(), free_port()
        completion = COMPLETION.decode().replace("'", "\\'")
        quota = QUOTA_BODY.replace("'", "\\'")
        self.nginx(
            "mock",
            f"""
            server {{ listen 127.0.0.1:{self.mock_port} backlog=4096; keepalive_requests 1000000;
              location /benched/ {{ access_log {self.tmp}/benched.log; default_type application/json;
                                   return 200 '{completion}'; }}
              location /quota/ {{ default_type application/json; return 429 '{quota}'; }}
              location / {{ default_type application/json; return 200 '{completion}'; }} }}""",
            LOAD_CPU,
        )
        self.spawn([sys.executable, str(BENCH / "mock_sse.py"), str(self.sse_port)], LOAD_CPU)
        self.floor = self.nginx(
            "floor",
            f"""
            upstream mock {{ server 127.0.0.1:{self.mock_port}; keepalive 128; }}
            upstream sse {{ server 127.0.0.1:{self.sse_port}; keepalive 128; }}
            server {{ listen 127.0.0.1:{self.floor_port} backlog=4096; keepalive_requests 1000000;
              location /sse/ {{ proxy_pass http://sse/; proxy_http_version 1.1; proxy_set_header Connection "";
                               proxy_buffering off; }}
              location / {{ proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""",
            PROXY_CPU,
        )
        self.redis_port = free_port()
        self.spawn(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            LOAD_CPU,
        )
        wait_until_200(f"http://127.0.0.1:{self.floor_port}/v1/chat/completions", {"model": "x"}, 10)
        wait_until_200(f"http://127.0.0.1:{self.floor_port}/sse/v1/chat/completions", {"model": "sse-1"}, 10)

    def gateway_config(self, name: str, quota_s: float = 3600) -> Path:
        mock = f"http://127.0.0.1:{self.mock_port}"
        chat = {"gpt-4o-mini": "gpt-4o-mini", "sse-10": "sse-10", "sse-200": "sse-200"}
        providers = [
            # The real shape: a primary with a failover chain behind it.
            {
                "name": "openai",
                "flavor": "openai",
                "base_url": f"{mock}/v1",
                "api_key_env": "BENCH_KEY",
                "models": {"gpt-4o-mini": "gpt-4o-mini"},
            },
            {
                "name": "openai-sse",
                "flavor": "openai",
                "base_url": f"http://127.0.0.1:{self.sse_port}/v1",
                "api_key_env": "BENCH_KEY",
                "models": {"sse-10": "sse-10", "sse-200": "sse-200"},
            },
            {
                "name": "broke",
                "flavor": "openai",
                "base_url": f"{mock}/quota/v1",
                "api_key_env": "BENCH_KEY",
                "models": {"failover": "gpt-4o-mini"},
            },
            {
                "name": "benched",
                "flavor": "openai",
                "base_url": f"{mock}/benched/v1",
                "api_key_env": "BENCH_KEY",
                "models": {"benched": "gpt-4o-mini"},
            },
            {
                "name": "groq",
                "flavor": "groq",
                "base_url": f"{mock}/v1",
                "api_key_env": "BENCH_KEY",
                "models": {**chat, "failover": "gpt-4o-mini", "benched": "gpt-4o-mini"},
            },
            {
                "name": "deepseek",
                "flavor": "deepseek",
                "base_url": f"{mock}/v1",
                "api_key_env": "BENCH_KEY",
                "models": chat,
            },
            {"name": "ollama", "flavor": "ollama", "base_url": f"{mock}/v1", "models": chat},
        ]
        config = {"providers": providers, "cooldowns": {"quota_s": quota_s}}
        # Every request counts for a named key with a budget and rate limits, so that the whole of
        # accounting (checks, reservation, charge) is on the measured path; usage goes to a file here.
        digest = "sha256:" + hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
        limits = {"requests_per_minute": 10**9, "tokens_per_minute": 10**12}
        key = {"name": "bench", "key": digest, "budget": {"daily_usd": 10**6}, "rate_limits": limits}
        config["client_keys"] = [key]
        config["usage"] = {"path": str(self.tmp / f"{name}-usage.sqlite3")}
        path = self.tmp / f"{name}.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def start_gateway(self, name: str, config: Path, redis: bool) -> tuple[Target, float]:
        port = free_port()
        env = {**os.environ, "BENCH_KEY": "sk-bench", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        env.pop("REDIS_URL", None)
        if redis:
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        started = time.monotonic()
        proc = self.spawn(
            # No drain settle: nothing routes to it but this script, which stops it between runs.
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--drain-settle-s",
                "0",
            ],
            PROXY_CPU,
            env=env,
            cwd=ROOT,
        )
        ready = wait_until_200(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        return Target(name, f"http://127.0.0.1:{port}/v1", [proc.pid]), ready - started

    def start_stack_floor(self) -> Target:
        """bench/stack_floor.py: the gateway's libraries relaying to the mock, without the gateway."""
        port = free_port()
        upstream = f"http://127.0.0.1:{self.mock_port}/v1"
        proc = self.spawn([sys.executable, str(BENCH / "stack_floor.py"), str(port), upstream], PROXY_CPU, cwd=ROOT)
        wait_until_200(f"http://127.0.0.1:{port}/v1/chat/completions", {"model": "gpt-4o-mini"})
        return Target("stack", f"http://127.0.0.1:{port}/v1", [proc.pid])

    def start_litellm(self) -> tuple[Target, float] | None:
        exe = BENCH / ".venv-litellm" / "bin" / "litellm"
        if not exe.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH / ".venv-litellm")], check=True)
            subprocess.run([str(BENCH / ".venv-litellm/bin/pip"), "install", "-q", "litellm[proxy]"], check=True)
        port = free_port()
        mock = f"http://127.0.0.1:{self.mock_port}/v1"
        model_list = []
        for name, base in (
            ("gpt-4o-mini", mock),
            ("groq-fallback", mock),
            ("sse-10", f"http://127.0.0.1:{self.sse_port}/v1"),
            ("sse-200", f"http://127.0.0.1:{self.sse_port}/v1"),
        ):
            model_list.append(
                {
                    "model_name": name,
                    "litellm_params": {
                        "model": f"openai/{'gpt-4o-mini' if 'sse' not in name else name}",
                        "api_base": base,
                        "api_key": "sk-bench",
                    },
                }
            )
        config = {
            "model_list": model_list,
            "router_settings": {"fallbacks": [{"gpt-4o-mini": ["groq-fallback"]}]},
            "litellm_settings": {"drop_params": True},
        }
        path = self.tmp / "litellm.yaml"
        path.write_text(json.dumps(config))
        env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MASTER_KEY": CLIENT_KEY,
        }
        started = time.monotonic()
        proc = self.spawn(
            [str(exe), "--config", str(path), "--port", str(port), "--num_workers", "1"],
            PROXY_CPU,
            env=env,
            stderr=(self.tmp / "litellm.log").open("w"),
        )
        try:
            ready = wait_until_200(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                180,
            )
        except RuntimeError:
            print((self.tmp / "litellm.log").read_text()[-3000:], file=sys.stderr)
            raise
        return Target("litellm", f"http://127.0.0.1:{port}/v1", [proc.pid, *children(proc.pid)]), ready - started

    # -- scenarios ---------------------------------------------------------------------------------

    def redis_calls(self) -> int:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "info", "stats"], capture_output=True, text=True
        ).stdout
        return int(re.search(r"total_commands_processed:(\d+)", out).group(1))

    def bench_in_redis(self, gateway: Target, provider: str) -> None:
        """Bench a provider in Redis as another replica would, and wait until the gateway knows."""
        key, now = f"{{gateway}}:cooldown:{provider}", time.time()
        value = json.dumps({"reason": "quota_exhausted", "detail": "bench", "since": now, "until": now + 3600})
        cli = ["redis-cli", "-p", str(self.redis_port)]
        for command in (
            ["set", key, value, "ex", "3600"],
            ["sadd", "{gateway}:cooldown-keys", provider],
            ["incr", "{gateway}:cooldown-version"],
        ):
            subprocess.run(cli + command, check=True, capture_output=True)
        health_url = gateway.url.removesuffix("/v1") + "/health"
        end = time.monotonic() + 5
        while time.monotonic() < end:
            report = json.loads(urllib.request.urlopen(health_url).read())
            if any(p["name"] == provider and p["state"] == "cooldown" for p in report["providers"]):
                return
            time.sleep(0.01)
        raise RuntimeError(f"the gateway never saw {provider} benched")

    def median_start(self, tries: int = 3) -> float:
        """Start to first 200 of fresh gateway processes (in-process store), the median of a few."""
        seconds = []
        for _ in range(tries):
            target, started = self.start_gateway("start", self.gateway_config("start"), redis=False)
            seconds.append(started)
            proc = next(p for p in self.procs if p.pid == target.pids[0])
            proc.terminate()
            proc.wait(30)
        return statistics.median(seconds)

    def measure(self, plan: list[tuple[Target, dict, int, str]], rounds: int | None = None) -> list[Run]:
        """Run every item of the plan `rounds` times, round-robin."""
        runs = []
        for _ in range(rounds or self.rounds):
            for target, body, concurrency, scenario in plan:
                run = wrk(target, body, concurrency, self.seconds, scenario)
                self.results["runs"].append(run.__dict__)
                runs.append(run)
        return runs

    def run(self) -> dict:
        self.start_mocks()
        gateway, _ = self.start_gateway("gateway", self.gateway_config("gateway"), redis=True)
        failover_gw, _ = self.start_gateway(
            # A microsecond quota cooldown: every request meets the primary's 429 before failing over.
            "gateway-failover",
            self.gateway_config("failover", quota_s=1e-6),
            redis=False,
        )
        direct = Target("direct", f"http://127.0.0.1:{self.mock_port}/v1", [])
        targets = [direct, Target("nginx", f"http://127.0.0.1:{self.floor_port}/v1", [self.floor.pid])]
        targets += [self.start_stack_floor(), gateway]
        sse_targets = [
            Target("direct", f"http://127.0.0.1:{self.sse_port}/v1", []),
            Target("nginx", f"http://127.0.0.1:{self.floor_port}/sse/v1", [self.floor.pid]),
            gateway,
        ]
        self.results["start_to_first_200_s"] = {"gateway": round(self.median_start(), 3)}
        if self.litellm:
            litellm, litellm_start = self.start_litellm()
            targets.append(litellm)
            sse_targets.append(litellm)
            self.results["start_to_first_200_s"]["litellm"] = round(litellm_start, 3)

        def ask(model: str, stream: bool = False) -> dict:
            return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}

        chat = ask("gpt-4o-mini")
        for target in targets:  # warm-up: connections, caches, lazy imports
            wrk(target, chat, 16, 1, "warmup")
        calls_before, clock_before = self.redis_calls(), time.monotonic()
        runs = self.measure([(t, chat, c, "chat") for c in (1, 16, 64) for t in targets])
        calls = self.redis_calls() - calls_before
        gateway_requests = sum(r.requests for r in runs if r.target == "gateway")
        self.results["redis"] = {
            "commands": calls,
            "gateway_requests": gateway_requests,
            "commands_per_request": calls / gateway_requests,
            "commands_per_second": calls / (time.monotonic() - clock_before),
        }
        self.measure([(t, ask(f"sse-{n}", stream=True), 16, f"stream-{n}") for n in (10, 200) for t in sse_targets])
        self.results["rss_mb_after_load"] = {t.name: round(rss_mb(t.pids), 1) for t in targets if t.pids}

        # A benched primary: the model "benched" has it first in its chain, "gpt-4o-mini" a healthy one.
        self.bench_in_redis(gateway, "benched")
        log = self.tmp / "benched.log"
        before = log.read_text().count("\n") if log.exists() else 0
        # A difference of a few per cent needs more rounds than this machine's noise allows elsewhere.
        self.measure(
            [(gateway, chat, 16, "primary-healthy"), (gateway, ask("benched"), 16, "primary-benched")],
            rounds=self.rounds * 3,
        )
        self.results["benched_primary_attempts"] = (log.read_text().count("\n") if log.exists() else 0) - before

        # Failover: "failover" meets the primary's 429 insufficient_quota on every request (quota_s ~ 0).
        self.measure(
            [
                (direct, chat, 1, "direct-c1"),
                (gateway, chat, 1, "gateway-c1"),
                (failover_gw, ask("failover"), 1, "failover-c1"),
            ]
        )
        return self.results


def summarize(results: dict) -> str:
    runs = [r for r in results["runs"] if r["scenario"] != "warmup"]
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["target"], r["scenario"], r["concurrency"]), []).append(r)

    def median(key: tuple[str, str, int], field: str) -> float | None:
        values = [r[field] for r in groups.get(key, []) if r[field] is not None]
        return statistics.median(values) if values else None

    lines = [
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"medians of {min(len(g) for g in groups.values())} interleaved runs or more",
        "",
        "| target | scenario | c | req/s | p50 ms | p99 ms | max ms | p99/p50 | CPU ms/req (min-max) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, group in groups.items():
        cpus = [r["cpu_ms_per_request"] for r in group if r["cpu_ms_per_request"] is not None]
        cpu = f"{statistics.median(cpus):.3f} ({min(cpus):.3f}-{max(cpus):.3f})" if cpus else "-"
        p50, p99 = median(key, "p50_ms"), median(key, "p99_ms")
        slowest = max((r["max_ms"] for r in group if r.get("max_ms") is not None), default=None)
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {median(key, 'rps'):.0f} | {p50:.2f} | {p99:.2f} "
            f"| {f'{slowest:.2f}' if slowest is not None else '-'} | {p99 / p50:.1f} | {cpu} "
            f"| {sum(r['errors'] for r in group)} |"
        )

    def cpu(target: str, scenario: str, c: int = 16) -> float | None:
        return median((target, scenario, c), "cpu_ms_per_request")

    gw, floor, lite = cpu("gateway", "chat"), cpu("nginx", "chat"), cpu("litellm", "chat")
    line = f"gateway CPU per request (c=16): {gw:.3f} ms; nginx floor {floor:.3f} ms ({gw / floor:.1f}x the floor)"
    if (stack := cpu("stack", "chat")) is not None:
        line += f"; uvicorn + aiohttp alone {stack:.3f} ms ({stack / floor:.1f}x), the gateway's work {gw - stack:.3f}"
    if lite:
        line += f"; LiteLLM {lite:.3f} ms ({lite / gw:.0f}x the gateway)"
    lines += ["", line]
    for target in ("nginx", "gateway", "litellm"):
        low, high = cpu(target, "stream-10"), cpu(target, "stream-200")
        if low is not None and high is not None:
            lines.append(
                f"{target}: CPU per streamed response {low:.3f} ms (10 chunks), {high:.3f} ms (200 chunks); "
                f"per chunk {(high - low) / 190 * 1000:.1f} us"
            )
    lines.append(f"start to first 200 (s): {results['start_to_first_200_s']}")
    lines.append(f"RSS after load (MB): {results['rss_mb_after_load']}")
    redis = results["redis"]
    lines.append(
        f"redis commands during the chat runs: {redis['commands']} for {redis['gateway_requests']} gateway "
        f"requests ({redis['commands_per_request']:.4f}/request; {redis['commands_per_second']:.1f}/s "
        "of background sync)"
    )
    healthy, benched = cpu("gateway", "primary-healthy"), cpu("gateway", "primary-benched")
    lines.append(
        f"primary in cooldown: {results['benched_primary_attempts']} upstream attempts on it; CPU "
        f"{benched:.3f} vs {healthy:.3f} ms/request with a healthy primary ({(benched / healthy - 1) * 100:+.1f} %)"
    )
    p50 = {
        s: median(("gateway-failover" if s == "failover-c1" else s.split("-")[0], s, 1), "p50_ms")
        for s in ("direct-c1", "gateway-c1", "failover-c1")
    }
    lines.append(
        f"failover on insufficient_quota (c=1, p50): {p50['failover-c1']:.2f} ms vs {p50['gateway-c1']:.2f} ms "
        f"without; added {p50['failover-c1'] - p50['gateway-c1']:.2f} ms; a direct round trip to the mock is "
        f"{p50['direct-c1']:.2f} ms"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one 3 s round instead of three 4 s rounds (about a minute)"
    )
    parser.add_argument(
        "--litellm", action="store_true", help="also run LiteLLM proxy (installed in bench/.venv-litellm)"
    )
    parser.add_argument("--out", type=Path, help="write the raw results as JSON here")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "redis-server", "redis-cli", "taskset"):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} is not installed (apt-get install wrk nginx-light redis-server util-linux)",
                file=sys.stderr,
            )
            return 1
    bench = Bench(args.quick, args.litellm)
    try:
        results = bench.run()
    finally:
        bench.stop_all()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(summarize(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
