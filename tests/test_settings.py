"""Config validation, the shipped files, and the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from gateway.settings import ConfigError, load_config
from tests.conftest import KEY_ENV, KEYS, ROOT, config_dict
from tests.fakes import error


def test_shipped_providers_yaml_is_the_contract():
    config = load_config(ROOT / "providers.yaml")
    assert [p.name for p in config.providers] == ["openai", "groq", "gemini", "deepseek", "ollama"]
    assert [p.flavor for p in config.providers] == ["openai", "groq", "gemini", "deepseek", "ollama"]
    urls = {p.name: p.base_url for p in config.providers}
    assert urls["openai"] == "https://api.openai.com/v1"
    assert urls["groq"] == "https://api.groq.com/openai/v1"
    assert urls["gemini"] == "https://generativelanguage.googleapis.com/v1beta/openai"
    assert urls["deepseek"] == "https://api.deepseek.com/v1"
    assert all("gpt-4o-mini" in p.models for p in config.providers)
    assert config.cooldowns.quota_s == 3600 and config.timeouts.total_s == 120
    assert config.limits.max_body_bytes == 33554432


def write(tmp_path, doc) -> str:
    path = tmp_path / "providers.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["providers"][1].update(colour="red"), "providers[1].colour: unknown key"),
        (lambda c: c.update(extra=1), "extra: unknown key"),
        (lambda c: c["providers"][0].update(flavor="anthropic"), "providers[0].flavor: Input should be 'deepseek', "),
        (lambda c: c["providers"][0].update(flavor=5), "providers[0].flavor: Input should be 'deepseek', "),
        (lambda c: c["providers"][0].pop("api_key_env"), "api_key_env is required for flavor 'openai'"),
        (lambda c: c["providers"][2].update(base_url="ftp://x"), "providers[2].base_url"),
        (lambda c: c["providers"][1].update(name="openai"), "duplicate provider name 'openai'"),
        (lambda c: c.update(cooldowns={"quota_s": -1}), "cooldowns.quota_s"),
        (lambda c: c.update(timeouts={"total": 3}), "timeouts.total: unknown key"),
    ],
)
def test_invalid_config_names_the_file_and_key(fakes, tmp_path, mutate, expected):
    config = config_dict(fakes)
    mutate(config)
    path = write(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(path)
    assert expected in str(caught.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "providers: [\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- 1\n"))


def test_base_url_takes_environment_references(fakes, tmp_path, monkeypatch):
    config = config_dict(fakes)
    config["providers"][4]["base_url"] = "${FAKE_OLLAMA_URL:-http://localhost:11434/v1}"
    path = write(tmp_path, config)
    assert load_config(path).providers[4].base_url == "http://localhost:11434/v1"
    monkeypatch.setenv("FAKE_OLLAMA_URL", "http://ollama:11434/v1")
    assert load_config(path).providers[4].base_url == "http://ollama:11434/v1"


def test_cli_rejects_a_bad_config_with_a_clear_message(tmp_path):
    path = write(tmp_path, {"providers": [{"name": "x", "flavor": "openai", "base_url": "http://x", "models": {}}]})
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert path in result.stderr and "providers[0]" in result.stderr


def test_cli_serves_with_config_from_the_environment(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes))
    completion = gateway.client().chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == "Hello from openai"
    assert gateway.health()["store"]["backend"] == "memory"


def test_status_cli_says_who_is_out_and_why(fakes, spawn_gateway):
    gateway = spawn_gateway(config_dict(fakes))
    fakes["openai"].script(error("openai-429-insufficient-quota"))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "status", "--url", gateway.url],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("openai"))
    assert "cooldown" in line and "quota_exhausted" in line and "You exceeded your current quota" in line
    assert "store: memory ok" in result.stdout
    down = subprocess.run(
        [sys.executable, "-m", "gateway", "status", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert down.returncode == 2 and "cannot read" in down.stderr


def test_docker_compose_runs_gateway_redis_and_ollama():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"gateway", "redis", "ollama"}
    gateway = services["gateway"]
    assert gateway["build"] in (".", {"context": "."})
    env = gateway["environment"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["OLLAMA_BASE_URL"] == "http://ollama:11434/v1"
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        assert name in env, f"{name} is not passed to the gateway"
    assert set(gateway["depends_on"]) >= {"redis", "ollama"}
    assert any(str(p).endswith(":8000") for p in gateway["ports"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "gateway" in dockerfile and "8000" in dockerfile
    # The default usage file (relative to the working directory) must be writable by the user it runs as.
    lines = dockerfile.splitlines()
    workdir = [line.split()[1] for line in lines if line.startswith("WORKDIR")][-1]
    user = [line.split()[1] for line in lines if line.startswith("USER")][-1]
    assert any(line.startswith("RUN") and f"chown {user}" in line and workdir in line for line in lines)
    assert os.path.exists(ROOT / ".dockerignore")


def test_a_pasted_key_with_a_newline_is_sent_trimmed(fakes, start_gateway, monkeypatch):
    monkeypatch.setenv(KEY_ENV["openai"], f" {KEYS['openai']}\r\n")
    gateway = start_gateway(config_dict(fakes))
    gateway.client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert fakes["openai"].last().headers["authorization"] == f"Bearer {KEYS['openai']}"
