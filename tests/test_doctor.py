"""`gateway doctor`, run as users run it, against the fake upstreams and a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tests import payloads
from tests.conftest import FLAVORS, KEY_ENV, KEYS, LISTED, ROOT, bench_in_redis, config_dict, free_port, healthy_config
from tests.fakes import FakeUpstream, Reply, error


def balance(fakes: dict[str, FakeUpstream], body: bytes = payloads.DEEPSEEK_BALANCE_OK) -> None:
    fakes["deepseek"].script(Reply(body=body), path="/user/balance")


def doctor(
    fakes: dict[str, FakeUpstream], config: dict[str, Any], tmp_path: Path, *unset: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `gateway doctor` with the canary keys (minus `unset`, plus `env`), and check what it leaked and sent."""
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config))
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "GATEWAY_CONFIG")}
    environ.update({KEY_ENV[f]: key for f, key in KEYS.items()}, **env)
    for name in unset:
        environ.pop(name)
    result = run_cli(["doctor", "--config", str(path)], environ)
    output = result.stdout + result.stderr
    for key in KEYS.values():
        assert key not in output
    secret = "0123456789abcdef"  # what the canary keys share after their flavor
    assert "canary" not in output  # not even a piece of a key
    assert not [secret[i : i + 6] for i in range(len(secret) - 5) if secret[i : i + 6] in output]
    for fake in fakes.values():  # only free reads: never a token spent
        assert all(r.method == "GET" for r in fake.requests), fake.requests
    return result


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )


def table(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of the table, by provider, sliced at the header's column starts."""
    lines = stdout.splitlines()
    header = lines[0]
    names = header.split()
    starts = [header.index(name) for name in names]
    rows = {}
    for line in lines[1:]:
        if line.startswith(("redis:", " ")) or " providers can serve" in line:
            continue
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def test_all_healthy_uses_only_free_reads_with_each_key(fakes, tmp_path):
    balance(fakes)
    result = doctor(fakes, healthy_config(fakes), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert list(rows) == list(FLAVORS)
    for name, row in rows.items():
        assert row["VERDICT"] in ("ok", "warn"), row
        assert row["CONNECTION"] == "ok"
        mapped = len(LISTED[name])
        assert row["MODELS"] == f"{mapped}/{mapped} listed", row  # models/<name> and <name>:latest matched
    assert rows["openai"]["VERDICT"] == "ok" and rows["openai"]["KEY"] == "ok"  # its canary has the sk- shape
    assert rows["ollama"]["KEY"] == "not needed" and rows["ollama"]["VERDICT"] == "ok"
    assert rows["deepseek"]["QUOTA"] == "CNY 110.00"
    for flavor, fake in fakes.items():
        listing = [r for r in fake.requests if r.path == "/v1/models"]
        assert len(listing) == 1, fake.requests
        if flavor in KEYS:
            assert listing[0].headers["authorization"] == f"Bearer {KEYS[flavor]}"
    assert [r.path for r in fakes["deepseek"].requests] == ["/v1/models", "/user/balance"]
    assert "redis: not configured (REDIS_URL unset)" in result.stdout and "gateway status" in result.stdout
    assert result.stdout.rstrip().endswith("5 of 5 providers can serve")


def test_an_unusual_key_shape_warns_and_is_still_checked(fakes, tmp_path):
    balance(fakes)
    result = doctor(fakes, healthy_config(fakes), tmp_path)
    rows = table(result.stdout)
    for flavor in ("groq", "gemini", "deepseek"):  # sk-canary-... is no gsk_, AIza or sk-<hex> key
        assert (rows[flavor]["KEY"], rows[flavor]["VERDICT"]) == ("odd shape", "warn"), rows[flavor]
        assert f"{KEY_ENV[flavor]} does not look like a {flavor} key" in rows[flavor]["NOTES"]
        assert fakes[flavor].calls("/models") == 1


def test_each_way_out_is_named_and_none_serving_exits_1(fakes, tmp_path):
    config = config_dict(fakes)  # groq's mapped models are not in its list
    config["providers"][4]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # ollama: nothing listens
    fakes["openai"].script(error("openai-401-invalid-api-key"), path="/models")
    fakes["gemini"].script(error("gemini-400-api-key-invalid-list"), path="/models")  # Gemini's bad key is a 400
    balance(fakes, payloads.DEEPSEEK_BALANCE_EMPTY)
    result = doctor(fakes, config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = table(result.stdout)
    assert {row["VERDICT"] for row in rows.values()} == {"out"}
    assert rows["openai"]["MODELS"] == "key rejected" and "check TEST_OPENAI_KEY" in rows["openai"]["NOTES"]
    assert rows["gemini"]["MODELS"] == "key rejected" and "check TEST_GEMINI_KEY" in rows["gemini"]["NOTES"]
    assert rows["groq"]["MODELS"] == "0/2 listed"
    assert "none of its models is listed: llama-3.1-8b-instant, groq-embed" in rows["groq"]["NOTES"]
    assert rows["deepseek"]["QUOTA"] == "empty (CNY 0.00)" and "top it up" in rows["deepseek"]["NOTES"]
    assert rows["ollama"]["CONNECTION"] == "failed" and "cannot connect" in rows["ollama"]["NOTES"]
    assert result.stdout.rstrip().endswith("0 of 5 providers can serve")


def test_a_missing_mapped_model_is_a_warning(fakes, tmp_path):
    result = doctor(fakes, config_dict(fakes, ("openai",)), tmp_path)
    assert result.returncode == 0
    row = table(result.stdout)["openai"]
    assert (row["MODELS"], row["VERDICT"]) == ("1/2 listed", "warn")
    assert "not listed: openai-embed" in row["NOTES"]


def test_quota_exhausted_on_the_model_list_is_out(fakes, tmp_path):
    balance(fakes)
    fakes["openai"].script(error("openai-429-insufficient-quota"), path="/models")
    result = doctor(fakes, healthy_config(fakes), tmp_path)
    row = table(result.stdout)["openai"]
    assert (row["QUOTA"], row["VERDICT"]) == ("exhausted", "out") and "quota exhausted" in row["NOTES"]


def test_a_key_the_provider_quotes_back_is_not_shown(fakes, tmp_path):
    key = "plain-secret-value-42"  # no known key prefix, so the generic redaction cannot spot it
    body = b'{"error":{"message":"upstream failed for key plain-secret-value-42","type":"server_error"}}'
    fakes["groq"].script(Reply(status=500, body=body), path="/models")
    result = doctor(fakes, healthy_config(fakes), tmp_path, **{KEY_ENV["groq"]: key})
    row = table(result.stdout)["groq"]
    assert row["VERDICT"] == "out" and "failing now: HTTP 500: upstream failed for key [redacted]" in row["NOTES"]
    assert key not in result.stdout + result.stderr


def test_an_unset_key_names_its_variable_and_a_pasted_one_is_flagged(fakes, tmp_path):
    balance(fakes)
    env = {KEY_ENV["openai"]: KEYS["openai"] + " ", KEY_ENV["deepseek"]: KEYS["deepseek"] + "\n"}
    result = doctor(fakes, healthy_config(fakes), tmp_path, KEY_ENV["groq"], **env)
    rows = table(result.stdout)
    assert (rows["groq"]["KEY"], rows["groq"]["VERDICT"]) == ("missing", "out")
    assert "no API key: set TEST_GROQ_KEY" in rows["groq"]["NOTES"]
    assert (rows["groq"]["CONNECTION"], rows["groq"]["MODELS"]) == ("ok", "-")  # connection proven; models need a key
    assert "authorization" not in fakes["groq"].last().headers
    # Pasted whitespace is flagged, and stripped: the key still reaches the provider intact.
    assert (rows["openai"]["KEY"], rows["openai"]["VERDICT"]) == ("whitespace", "warn")
    assert "TEST_OPENAI_KEY has whitespace or a newline around the key" in rows["openai"]["NOTES"]
    assert (rows["deepseek"]["KEY"], rows["deepseek"]["VERDICT"]) == ("whitespace", "warn")
    assert fakes["deepseek"].last().headers["authorization"] == f"Bearer {KEYS['deepseek']}"


def test_a_quota_bench_in_redis_puts_the_provider_out(fakes, tmp_path, redis_server):
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_URL"} | {"REDIS_URL": redis_server.url}
    for name, reason in (("openai", "quota_exhausted"), ("groq", "rate_limited"), ("gemini/gpt-4o-mini", "manual")):
        bench = run_cli(["cooldown", "set", name, "--seconds", "600", "--reason", reason], env)
        assert bench.returncode == 0, bench.stderr
    # A model bench a gateway stored before the config stopped mapping that model.
    bench_in_redis(redis.Redis.from_url(redis_server.url), "deepseek/retired-model", reason="model_not_found")
    balance(fakes)
    result = doctor(fakes, healthy_config(fakes), tmp_path, REDIS_URL=redis_server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = table(result.stdout)
    assert (rows["openai"]["QUOTA"], rows["openai"]["VERDICT"]) == ("quota_exhausted", "out")
    assert "benched for quota_exhausted until 20" in rows["openai"]["NOTES"] and " UTC" in rows["openai"]["NOTES"]
    assert (rows["groq"]["QUOTA"], rows["groq"]["VERDICT"]) == ("rate_limited", "warn")  # passes by itself
    assert "model gpt-4o-mini benched for manual" in rows["gemini"]["NOTES"]
    assert "model retired-model benched for model_not_found" in rows["deepseek"]["NOTES"]
    assert rows["ollama"]["QUOTA"] == "not benched"
    assert f"redis: ok ({redis_server.url})" in result.stdout


def test_an_unreachable_redis_is_reported_and_the_check_finishes(fakes, tmp_path):
    balance(fakes)
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    result = doctor(fakes, healthy_config(fakes), tmp_path, REDIS_URL=url)
    assert result.returncode == 0, result.stdout + result.stderr
    store = next(line for line in result.stdout.splitlines() if line.startswith("redis:"))
    assert store.startswith(f"redis: unreachable ({url.replace(':hunter2-secret@', '')}")
    assert "hunter2" not in result.stdout + result.stderr
    assert result.stderr == ""  # said once, in the store line
    assert table(result.stdout)["openai"]["QUOTA"] == "-"


@pytest.mark.parametrize("broken", ["providers: []\n", "providers:\n  - name: x\n    flavr: openai\n", None])
def test_a_bad_config_exits_2_naming_the_file(tmp_path, broken):
    path = tmp_path / "broken.yaml"
    if broken is not None:
        path.write_text(broken)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"GATEWAY_CONFIG": str(path)}
    result = run_cli(["doctor"], env)  # the file comes from GATEWAY_CONFIG, as for serve
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and str(path) in result.stderr
    assert result.stdout == ""


def test_a_key_no_header_can_carry_is_flagged_without_showing_it(fakes, tmp_path):
    balance(fakes)
    result = doctor(fakes, healthy_config(fakes), tmp_path, **{KEY_ENV["openai"]: "sk-abcdef\tsk-ghijkl"})
    row = table(result.stdout)["openai"]
    assert (row["KEY"], row["VERDICT"]) == ("unusable", "out")
    assert "TEST_OPENAI_KEY holds a tab at character 10 of 19" in row["NOTES"]
    assert "ghijkl" not in result.stdout


def test_a_model_without_a_price_is_a_warning_naming_the_fix(fakes, tmp_path):
    config = healthy_config(fakes)  # gemini-2.0-flash is not in litellm's price file; gpt-4o-mini is
    balance(fakes)
    output = doctor(fakes, config, tmp_path).stdout
    assert "gemini-2.0-flash has no price (not in litellm's price file)" in output
    assert "set prices: {gemini-2.0-flash: {input_per_mtok: ..., output_per_mtok: ...}} under gemini" in output
    assert "gpt-4o-mini has no price" not in output


def test_a_speech_model_mapped_on_a_flavor_without_speech_is_a_warning(fakes, tmp_path):
    config = healthy_config(fakes)
    by_name = {entry["name"]: entry for entry in config["providers"]}
    by_name["openai"]["models"]["tts-1"] = "tts-1"
    by_name["gemini"]["models"]["tts-1"] = "gemini-2.5-flash-preview-tts"  # the client's name, mapped by openai
    by_name["ollama"]["models"]["voice"] = "tts-1-hd"  # the price file lists it as speech
    result = doctor(fakes, config, tmp_path)
    for name, model in (("gemini", "tts-1"), ("ollama", "voice")):
        assert f"models: {model} is a speech model, but flavor {name} has no /audio/speech" in result.stdout
    assert "models: tts-1 is a speech model, but flavor openai" not in result.stdout
