"""Gateway keys: without a listed key a request gets a 401 in OpenAI's shape and reaches no provider."""

from __future__ import annotations

import subprocess
import sys

import httpx
import openai
import pytest
import yaml

from gateway.client_keys import ClientKeys, digest
from gateway.settings import ConfigError, load_config
from tests.conftest import MESSAGES, ROOT, config_dict, wait_for

GOOD = "sk-gw-good-key-0123456789"


@pytest.fixture
def locked(fakes, start_gateway):
    return start_gateway(config_dict(fakes, client_keys=[digest("sk-gw-other"), digest(GOOD)]))


def test_a_listed_key_is_served(locked, fakes):
    client = openai.OpenAI(base_url=f"{locked.url}/v1", api_key=GOOD, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content
    assert client.models.list().data[0].id == "gpt-4o-mini"
    assert fakes["openai"].last().headers["authorization"] != f"Bearer {GOOD}"  # never forwarded


@pytest.mark.parametrize("key", ["sk-gw-wrong", GOOD + "x", GOOD.upper()])
def test_a_wrong_key_is_a_401_and_reaches_no_provider(locked, fakes, key):
    client = openai.OpenAI(base_url=f"{locked.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert sum(len(f.requests) for f in fakes.values()) == 0


@pytest.mark.parametrize(
    "header",
    [
        None,
        b"",
        b"Bearer",
        b"Basic " + GOOD.encode(),
        b"Bearer \xff\xfe\xc3\x28",
        b"Bearer " + b"k" * 20_000,
    ],
    ids=["missing", "empty", "no-key", "basic", "non-ascii", "long"],
)
def test_odd_authorization_headers_are_401_never_500(locked, fakes, header):
    headers = {} if header is None else {"authorization": header}
    response = httpx.post(
        f"{locked.url}/v1/chat/completions", headers=headers, json={"model": "gpt-4o-mini", "messages": MESSAGES}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert sum(len(f.requests) for f in fakes.values()) == 0


def test_a_huge_authorization_header_is_refused_before_any_check(locked, fakes):
    headers = {"authorization": b"Bearer " + b"k" * 100_000}  # past limits.max_head_bytes
    response = httpx.post(
        f"{locked.url}/v1/chat/completions", headers=headers, json={"model": "gpt-4o-mini", "messages": MESSAGES}
    )
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_head_too_large"
    assert sum(len(f.requests) for f in fakes.values()) == 0


def test_health_stays_open(locked):
    assert httpx.get(f"{locked.url}/health").status_code == 200


def test_malformed_entries_are_config_errors(fakes, tmp_path):
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, client_keys=["sk-plain-key-in-the-file"])))
    with pytest.raises(ConfigError, match=r"client_keys\[0\]"):
        load_config(path)


def test_a_named_key_cannot_take_a_bare_keys_name(fakes, tmp_path):
    """Else both would share one budget and rate limits, and each would read the other's usage."""
    bare = digest(b"sk-first-key")
    named = {"name": f"key-{bare.removeprefix('sha256:')[:8]}", "key": digest(b"sk-second-key")}
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(config_dict(fakes, client_keys=[bare, named])))
    with pytest.raises(ConfigError, match="two client keys are named 'key-"):
        load_config(path)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"  \r\n", b"\t"], ids=["lf", "crlf", "spaces", "tab"])
def test_keys_hash_cli_hashes_what_the_gateway_compares(locked, ending):
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "hash"],
        input=GOOD.encode() + ending,  # a key file as an editor on any system saves it
        capture_output=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0
    entry = result.stdout.decode().strip()
    assert entry == digest(GOOD)
    client = openai.OpenAI(base_url=f"{locked.url}/v1", api_key=GOOD, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices  # and that key works


def test_a_refused_request_is_logged_and_counted(locked, fakes):
    response = httpx.post(f"{locked.url}/v1/chat/completions", json={"model": "gpt-4o-mini"}, timeout=5)
    assert response.status_code == 401
    line = wait_for(locked.log_lines, what="the log line")[-1]
    assert (line["status"], line["outcome"], line["provider"]) == (401, "unauthorized", None)
    assert line["request_id"] == response.headers["x-request-id"]
    assert httpx.get(f"{locked.url}/v1/models", timeout=5).status_code == 401
    metrics = httpx.get(f"{locked.url}/metrics", timeout=5).text
    assert 'gateway_requests_total{endpoint="/chat/completions",outcome="unauthorized",provider="none"} 1.0' in metrics
    assert 'gateway_requests_total{endpoint="other",outcome="unauthorized",provider="none"} 1.0' in metrics


def test_the_check_says_which_listed_key_the_caller_holds():
    first, second = "sk-gw-first-key", "sk-gw-second-key"
    keys = ClientKeys([digest(first), digest(second)])
    caller = keys.identify(f"Bearer {second}".encode())
    assert caller is not None and caller.digest == digest(second)
    assert caller.name == f"key-{digest(second).removeprefix('sha256:')[:8]}"  # a bare digest's name
    assert keys.identify(b"Bearer sk-gw-someone-else") is None
    assert keys.identify(None) is None
