"""The `litellm` flavor's start: litellm imported only when needed and never holding up the gateway; the doctor."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import yaml

from tests import fake_anthropic
from tests.conftest import ROOT, config_dict, figure, free_port, wait_for
from tests.fake_anthropic import (
    KEY,
    KEY_ENV,
    anthropic_fixture,  # noqa: F401 (a fixture)
    anthropic_server_fixture,  # noqa: F401 (a fixture)
    chat,
    with_anthropic,
)
from tests.processes import GatewayProcess
from tests.test_doctor import run_cli, table

# -- the shipped entry, and the doctor ---------------------------------------------------------------


def shipped_entry() -> dict[str, Any]:
    """The commented Anthropic entry of the shipped providers.yaml, uncommented."""
    text = (ROOT / "providers.yaml").read_text(encoding="utf-8")
    block = re.search(r"^  # - name: anthropic\n(?:  #  .*\n)+", text, re.M)
    assert block is not None, "providers.yaml has no commented anthropic entry"
    return yaml.safe_load("".join(line.replace("# ", "", 1) for line in block.group(0).splitlines(True)))[0]


def test_the_doctor_checks_the_shipped_entry_for_free(anthropic, tmp_path):
    entry = shipped_entry()
    assert (entry["flavor"], entry["api_key_env"], entry["base_url"]) == (
        "litellm",
        "ANTHROPIC_API_KEY",
        "https://api.anthropic.com",
    )
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump({"providers": [{**entry, "base_url": anthropic.base_url}]}))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = run_cli(["doctor", "--config", str(path)], {**env, "ANTHROPIC_API_KEY": KEY})
    row = table(result.stdout)["anthropic"]
    assert (row["KEY"], row["CONNECTION"], row["MODELS"], row["VERDICT"]) == ("ok", "ok", "1/1 listed", "ok"), row
    assert [(r.method, r.path) for r in anthropic.requests] == [("GET", "/v1/models")]  # free: no token spent
    assert anthropic.last().headers["x-api-key"] == KEY and KEY not in result.stdout + result.stderr

    anthropic.reset()
    anthropic.script(fake_anthropic.reply("anthropic-401-invalid-key"), path="/v1/models")
    # Beside it, a provider litellm has no free model list for: said, and nothing sent.
    unlisted = {**entry, "name": "unlisted", "base_url": anthropic.base_url, "models": {"m": "nosuchprovider/m"}}
    path.write_text(yaml.safe_dump({"providers": [{**entry, "base_url": anthropic.base_url}, unlisted]}))
    result = run_cli(["doctor", "--config", str(path)], {**env, "ANTHROPIC_API_KEY": "not-an-anthropic-key"})
    rows = table(result.stdout)
    row = rows["anthropic"]
    assert (row["KEY"], row["MODELS"], row["VERDICT"]) == ("odd shape", "key rejected", "out"), row
    assert "does not look like a litellm key (sk-ant-...)" in row["NOTES"]
    assert (rows["unlisted"]["MODELS"], rows["unlisted"]["VERDICT"]) == ("not checked", "warn"), rows["unlisted"]
    assert [(r.method, r.path) for r in anthropic.requests] == [("GET", "/v1/models")]  # the first row's only


# -- litellm is imported only when needed, and never holds up the start -------------------------------

_PROBE = """
import json, sys, threading, time
import httpx, uvicorn
from gateway.settings import load_config
from gateway.web.app import Gateway
app = Gateway(load_config(sys.argv[1]))
server = uvicorn.Server(uvicorn.Config(app, port=int(sys.argv[2]), log_level="warning", lifespan="on"))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
deadline = time.monotonic() + 30
url = f"http://127.0.0.1:{sys.argv[2]}"
while time.monotonic() < deadline:
    try:
        health = httpx.get(url + "/health", timeout=2).json()
        if health["checks"] == "done" and all(p["state"] != "starting" for p in health["providers"]):
            break
    except httpx.TransportError:
        pass
    time.sleep(0.05)
chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
served = httpx.post(url + "/v1/chat/completions", json=chat, timeout=10)
print(json.dumps({"litellm": "litellm" in sys.modules, "served_by": served.headers.get("x-gateway-provider")}))
server.should_exit = True
thread.join(10)  # a server thread cut mid-import would leave litellm's finalisers waiting on its lock
"""


def _probe(config: dict[str, Any], tmp_path) -> dict[str, Any]:
    """A real gateway process serving `config`, asked once it is up: is litellm among its modules?"""
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", KEY_ENV: KEY, "TEST_OPENAI_KEY": "sk-canary-openai-0"}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_litellm_is_imported_only_when_a_provider_needs_it(fakes, anthropic, tmp_path):
    only_openai = config_dict(fakes, ("openai",))
    assert _probe(only_openai, tmp_path) == {"litellm": False, "served_by": "openai"}
    assert _probe(with_anthropic(fakes, anthropic), tmp_path) == {"litellm": True, "served_by": "anthropic"}


def test_health_answers_at_once_and_shows_it_starting_then_available(fakes, anthropic, tmp_path, provider_keys):
    path = tmp_path / "providers.yaml"
    config = with_anthropic(fakes, anthropic)
    config["providers"][0]["models"]["claude"] = fake_anthropic.MAPPED  # a model only it serves
    path.write_text(yaml.safe_dump(config))
    launched = time.monotonic()
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY})
    claude = {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    try:
        first = wait_for(lambda: _health(proc.url), timeout=10, what="the first /health answer")
        answered_s = time.monotonic() - launched
        state = next(p for p in first["providers"] if p["name"] == "anthropic")
        # It answered before litellm had loaded (seconds): nothing waits for it. How soon is a figure,
        # not an assertion (a loaded CI runner is no measure of speed): the README gives it.
        assert state["state"] == "starting" and first["serving"] == ["openai"]
        refused = httpx.post(f"{proc.url}/v1/chat/completions", json=claude, timeout=10)  # litellm takes seconds
        assert refused.status_code == 503 and "anthropic: still starting" in refused.json()["error"]["message"]
        wait_for(lambda: proc.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
        served = httpx.post(f"{proc.url}/v1/chat/completions", json=claude, timeout=10)
        assert (served.status_code, served.headers["x-gateway-provider"]) == (200, "anthropic")
        loaded_s = time.monotonic() - launched
        figure(f"litellm flavor: /health answered {answered_s:.2f} s after launch (anthropic starting), "
               f"anthropic available after {loaded_s:.1f} s")  # fmt: skip
    finally:
        proc.stop()


def _health(url: str) -> dict[str, Any] | None:
    try:
        return httpx.get(f"{url}/health", timeout=1).json()
    except httpx.TransportError:
        return None


def test_a_reload_that_adds_a_litellm_provider_loads_it(fakes, anthropic, tmp_path, provider_keys):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, ("openai",))))
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY})
    try:
        wait_for(lambda: proc.health()["checks"] == "done", what="the start-up checks")
        path.write_text(yaml.safe_dump(with_anthropic(fakes, anthropic)))
        proc.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(proc.health()["providers"]) == 2, what="the reload")
        wait_for(lambda: proc.provider("anthropic")["state"] == "available", timeout=30, what="litellm to load")
        assert chat(proc.client()) == ("anthropic", "Hello from anthropic")
    finally:
        proc.stop()


def test_a_litellm_that_cannot_be_imported_leaves_its_provider_misconfigured(fakes, anthropic, tmp_path):
    # `python -m` puts its working directory (the config's) first on sys.path: this one shadows litellm.
    (tmp_path / "litellm").mkdir()
    (tmp_path / "litellm" / "__init__.py").write_text('raise ImportError("no litellm in this test")\n')
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(with_anthropic(fakes, anthropic)))
    proc = GatewayProcess(path, {**os.environ, KEY_ENV: KEY, "TEST_OPENAI_KEY": "sk-canary-openai-0"})
    try:
        wait_for(lambda: proc.provider("anthropic")["state"] != "starting", timeout=30, what="the import to end")
        state = proc.provider("anthropic")
        assert (state["state"], state["reason"]) == ("misconfigured", "load_failed")
        assert "no litellm in this test" in state["detail"]
        assert chat(proc.client())[0] == "openai" and anthropic.calls("/v1/messages") == 0
    finally:
        proc.stop()
