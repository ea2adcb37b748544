"""Start-up checks: the doctor's free checks run when a gateway starts or reloads, and what they find for
certain reaches routing and /health before the first request pays for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import redis
import yaml

from tests.conftest import (
    ADMIN,
    AUTH,
    KEY_ENV,
    ROOT,
    bench_in_redis,
    config_dict,
    free_port,
    healthy_config,
    served_by,
    wait_for,
)
from tests.fakes import FakeUpstream, Reply, error


def doctor_serving(config: dict, tmp_path) -> int:
    """How many providers `gateway doctor` says can serve, for the same config and keys."""
    path = tmp_path / "doctor.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "doctor", "--config", str(path)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip
    return int(re.search(r"(\d+) of \d+ providers can serve", result.stdout).group(1))


def test_an_unreachable_provider_is_out_before_any_request_and_health_agrees_with_doctor(
    fakes, start_gateway, tmp_path
):
    config = healthy_config(fakes)  # every mapped model is in the fakes' lists, which the doctor checks too
    dead = f"http://127.0.0.1:{free_port()}"
    config["providers"][4]["base_url"] = dead + "/v1"
    gateway = start_gateway(config)  # returns once the start-up checks are done
    health = gateway.health()
    assert health["checks"] == "done"
    ollama = gateway.provider("ollama")
    assert (ollama["state"], ollama["reason"]) == ("cooldown", "unreachable")
    assert "cannot connect" in ollama["detail"]
    assert "ollama" not in health["serving"]
    assert sum(fake.calls() for fake in fakes.values()) == 0  # no request has been sent, no token spent
    assert len(health["serving"]) == doctor_serving(config, tmp_path)


def test_a_rejected_key_is_known_before_the_first_request(fakes, start_gateway):
    fakes["openai"].script(error("openai-401-invalid-api-key"), path="/models")
    gateway = start_gateway(config_dict(fakes))
    entry = gateway.provider("openai")
    assert (entry["state"], entry["reason"]) == ("misconfigured", "auth")
    assert served_by(gateway.client()) == "groq"
    assert fakes["openai"].calls() == 0  # the first user request did not pay for it


def test_a_failing_or_unreadable_model_list_proves_nothing(fakes, start_gateway):
    fakes["openai"].script(Reply(status=500, body=b'{"error": {"message": "oops"}}'), path="/models")
    forbidden = b'{"error": {"message": "You have insufficient permissions for this operation.", "code": null}}'
    fakes["deepseek"].script(Reply(status=403, body=forbidden), path="/models")  # a key that may not list
    # OpenAI says the same of a restricted key with a 401 and the scope it lacks: still not a rejected key.
    scope = b'{"error": {"message": "You have insufficient permissions for this operation. Missing scopes: '
    scope += b'api.model.read.", "type": "invalid_request_error", "code": "missing_scope"}}'
    fakes["ollama"].script(Reply(status=401, body=scope), path="/models")
    fakes["groq"].script(Reply(body=b"<html>not a list</html>"), path="/models")
    fakes["gemini"].script(Reply(status=429, body=b'{"error": {"message": "slow down"}}'), path="/models")
    gateway = start_gateway(config_dict(fakes))
    assert gateway.health()["status"] == "ok"  # nothing benched, nothing shown as out
    assert served_by(gateway.client()) == "openai"


def test_a_last_resort_that_cannot_be_reached_is_shown_but_never_benched(fakes, start_gateway):
    config = config_dict(fakes, order=("openai", "ollama"))
    config["providers"][1].update(base_url=f"http://127.0.0.1:{free_port()}/v1", last_resort=True)
    gateway = start_gateway(config)
    entry = gateway.provider("ollama")
    assert (entry["state"], entry["reason"], entry["cooldown_remaining_s"]) == ("unreachable", "unreachable", None)
    assert gateway.health()["serving"] == ["openai"]
    assert gateway.app.store.get("ollama", 0) is None  # no bench at all


def test_a_reload_checks_the_new_configuration(fakes, start_gateway, tmp_path):
    path = tmp_path / "providers.yaml"
    config = config_dict(fakes)
    path.write_text(yaml.safe_dump(config))
    gateway = start_gateway(config, admin_key=ADMIN, config_path=path)
    assert gateway.provider("deepseek")["state"] == "available"
    config["providers"][3]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    path.write_text(yaml.safe_dump(config))
    assert httpx.post(f"{gateway.url}/admin/reload", headers=AUTH).status_code == 200
    wait_for(lambda: gateway.provider("deepseek")["reason"] == "unreachable", what="the reload's checks")


def test_a_gateway_without_keys_says_once_who_can_serve_and_how_to_fix_it(fakes, spawn_gateway, monkeypatch):
    for env in KEY_ENV.values():
        monkeypatch.delenv(env)
    gateway = spawn_gateway(config_dict(fakes))
    block = wait_for(lambda: "".join(gateway.output) if "providers can serve" in "".join(gateway.output) else None)
    assert "1 of 5 providers can serve" in block  # Ollama takes no key
    for env in KEY_ENV.values():
        assert f"no API key: set {env}" in block
    assert "gateway doctor" in block and "reload" in block
    assert block.count("start-up checks") == 1


def test_a_last_resort_that_comes_back_is_seen_without_any_request(fakes, start_gateway):
    port = free_port()
    config = config_dict(fakes, order=("openai", "ollama"), cooldowns={"transient_s": 0.2})
    config["providers"][1].update(base_url=f"http://127.0.0.1:{port}/v1", last_resort=True)
    gateway = start_gateway(config)
    assert gateway.provider("ollama")["state"] == "unreachable"
    revived = FakeUpstream("ollama", port)  # Ollama starts, and no request is sent to anything
    try:
        wait_for(lambda: gateway.provider("ollama")["state"] == "available", what="the check to see it back")
    finally:
        revived.close()
    assert revived.calls() == 0


def test_what_a_check_disproves_is_cleared(fakes, start_gateway, redis_server):
    client = redis.Redis.from_url(redis_server.url)
    bench_in_redis(client, "openai", reason="unreachable")  # another replica could not reach it, once
    bench_in_redis(client, "groq", reason="auth")  # and found groq's key rejected, before it was fixed
    bench_in_redis(client, "gemini", reason="quota_exhausted")  # a check cannot see credits: this stays
    gateway = start_gateway(config_dict(fakes), redis_server.url)
    wait_for(lambda: gateway.provider("openai")["state"] == "available", what="the unreachable bench to go")
    wait_for(lambda: gateway.provider("groq")["state"] == "available", what="the key bench to go")
    assert gateway.provider("gemini")["state"] == "cooldown"
