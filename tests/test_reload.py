"""Hot reload of providers.yaml: a good file takes over at once, a bad one is refused and the old one serves."""

from __future__ import annotations

import signal

import httpx
import yaml

from tests.conftest import ADMIN, AUTH, config_dict, served_by, wait_for
from tests.fakes import error


def test_admin_reload_takes_a_new_order_and_refuses_a_broken_file(fakes, start_gateway, tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes)))
    gateway = start_gateway(config_dict(fakes), admin_key=ADMIN, config_path=path)
    assert served_by(gateway.client()) == "openai"

    path.write_text(yaml.safe_dump(config_dict(fakes, ("groq", "openai"))))
    response = httpx.post(f"{gateway.url}/admin/reload", headers=AUTH, timeout=5)
    assert response.status_code == 200 and response.json()["providers"] == ["groq", "openai"]
    assert served_by(gateway.client()) == "groq"
    assert [p["name"] for p in gateway.health()["providers"]] == ["groq", "openai"]

    broken = config_dict(fakes, ("openai",))
    broken["providers"][0]["flavour"] = "openai"  # a typo: unknown key
    path.write_text(yaml.safe_dump(broken))
    response = httpx.post(f"{gateway.url}/admin/reload", headers=AUTH, timeout=5)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert f"{path}: providers[0].flavour: unknown key" in error["message"]
    assert served_by(gateway.client()) == "groq"  # the running config keeps serving

    path.write_text("providers: [")
    assert httpx.post(f"{gateway.url}/admin/reload", headers=AUTH, timeout=5).status_code == 400
    assert served_by(gateway.client()) == "groq"


def test_reload_needs_the_admin_key(fakes, start_gateway, tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, ("groq",))))
    gateway = start_gateway(config_dict(fakes), admin_key=ADMIN, config_path=path)
    assert httpx.post(f"{gateway.url}/admin/reload", timeout=5).status_code == 401
    assert served_by(gateway.client()) == "openai"


def test_reload_keeps_the_cooldowns(fakes, start_gateway, tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes)))
    gateway = start_gateway(config_dict(fakes), admin_key=ADMIN, config_path=path)
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    assert served_by(gateway.client()) == "groq"
    assert httpx.post(f"{gateway.url}/admin/reload", headers=AUTH, timeout=5).status_code == 200
    assert gateway.provider("openai")["state"] == "cooldown"
    assert served_by(gateway.client()) == "groq"


def test_sighup_reloads_and_a_broken_file_is_logged_not_fatal(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes))
    path = gateway.config_path
    assert served_by(gateway.client()) == "openai"

    path.write_text("providers: [")
    gateway.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any("configuration not reloaded" in line for line in gateway.output), what="the refusal")
    assert any(f"{path}: not valid YAML" in line for line in gateway.output)
    assert served_by(gateway.client()) == "openai"

    path.write_text(yaml.safe_dump(config_dict(fakes, ("groq", "openai"))))
    gateway.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: any(f"reloaded {path}" in line for line in gateway.output), what="the reload")
    assert served_by(gateway.client()) == "groq"
    assert gateway.proc.poll() is None
