"""Bad client input gets a 4xx in OpenAI's shape and never reaches an upstream; the other endpoints."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from tests.conftest import config_dict


def post(url: str, content: bytes, path: str = "/v1/chat/completions", **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=content, headers={"content-type": "application/json", **headers})


def assert_openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "gpt-4o-mini"}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": []}', "messages"),
        (b'{"model": "gpt-4o-mini", "messages": ["hi"]}', "messages[0]"),
        (b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}], "stream": "yes"}', "stream"),
    ],
)
def test_bad_chat_input_is_a_400_and_reaches_no_upstream(gateway, fakes, body, param):
    error = assert_openai_error(post(gateway.url, body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert sum(len(f.requests) for f in fakes.values()) == 0
    assert all(p["state"] == "available" for p in gateway.health()["providers"])


@pytest.mark.parametrize("items", [[True], [[]], [[1, True]], [1, "a"], [[1], 2]])
def test_embeddings_input_that_is_no_text_and_no_tokens_is_a_400(gateway, fakes, items):
    body = orjson.dumps({"model": "text-embedding-3-small", "input": items})
    error = assert_openai_error(post(gateway.url, body, "/v1/embeddings"), 400)
    assert error["param"] == "input"
    assert sum(len(f.requests) for f in fakes.values()) == 0


def test_health_answers_head_as_load_balancers_ask(gateway):
    response = httpx.head(f"{gateway.url}/health")
    assert (response.status_code, response.content) == (200, b"")


def test_sdk_raises_bad_request_for_missing_messages(gateway):
    with pytest.raises(openai.BadRequestError):
        gateway.client().chat.completions.create(model="gpt-4o-mini", messages=[])


def test_oversized_body_is_413_before_any_upstream_call(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, limits={"max_body_bytes": 1000}))
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * 2000 + b'"}]}'
    error = assert_openai_error(post(gateway.url, big), 413)
    assert error["code"] == "request_too_large"

    def chunked():  # no content-length: the limit still holds while reading
        yield big[:500]
        yield big[500:]

    response = httpx.post(f"{gateway.url}/v1/chat/completions", content=chunked())
    assert_openai_error(response, 413)
    assert sum(len(f.requests) for f in fakes.values()) == 0


def test_unknown_route_and_wrong_method(gateway):
    assert_openai_error(httpx.get(f"{gateway.url}/v1/nope"), 404)
    error = assert_openai_error(httpx.get(f"{gateway.url}/v1/chat/completions"), 405)
    assert "POST" in error["message"]


def test_models_lists_client_facing_names_only(gateway):
    models = gateway.client().models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini", "text-embedding-3-small"]
    assert gateway.client().models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        gateway.client().models.retrieve("llama-3.1-8b-instant")  # a provider's name, not ours


def test_embeddings_skip_providers_without_them(fakes, start_gateway):
    gateway = start_gateway(config_dict(fakes, order=("groq", "deepseek", "gemini", "openai")))
    raw = gateway.client().embeddings.with_raw_response.create(model="text-embedding-3-small", input="hello")
    assert raw.headers["x-gateway-provider"] == "gemini"
    assert len(raw.parse().data[0].embedding) == 4
    assert fakes["gemini"].last().json == {"model": "gemini-embed", "input": "hello", "encoding_format": "base64"}
    assert fakes["groq"].requests == [] and fakes["deepseek"].requests == []


def test_embeddings_fail_over_and_validate(gateway, fakes):
    from tests.fakes import error as recorded

    fakes["openai"].script(recorded("openai-429-insufficient-quota"), path="/embeddings")
    raw = gateway.client().embeddings.with_raw_response.create(model="text-embedding-3-small", input=["a", "b"])
    assert raw.headers["x-gateway-provider"] == "gemini"
    error = assert_openai_error(post(gateway.url, b'{"model": "text-embedding-3-small"}', "/v1/embeddings"), 400)
    assert error["param"] == "input"


def test_health_reports_every_provider_and_the_store(gateway):
    response = httpx.get(f"{gateway.url}/health")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert [p["name"] for p in report["providers"]] == ["openai", "groq", "gemini", "deepseek", "ollama"]
    assert report["store"] == {"backend": "memory", "state": "ok"}
    assert all(set(p) >= {"state", "reason", "cooldown_remaining_s"} for p in report["providers"])


def test_health_is_503_when_nothing_can_serve(fakes, start_gateway, monkeypatch):
    monkeypatch.delenv("TEST_OPENAI_KEY")
    gateway = start_gateway(config_dict(fakes, order=("openai",)))
    response = httpx.get(f"{gateway.url}/health")
    assert response.status_code == 503
    assert response.json()["providers"][0]["state"] == "misconfigured"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/responses"), ("POST", "/v1/images/generations"), ("GET", "/v1/files")]
)
def test_an_endpoint_the_gateway_does_not_serve_says_so_and_lists_what_it_serves(gateway, method, path):
    error = assert_openai_error(httpx.request(method, f"{gateway.url}{path}", json={"model": "gpt-4o-mini"}), 404)
    assert error["code"] == "unsupported_endpoint"
    assert f"{method} {path}" in error["message"] and "does not serve" in error["message"]
    for served in ("POST /v1/chat/completions", "POST /v1/embeddings", "GET /v1/models", "GET /health"):
        assert served in error["message"]


def test_the_sdk_reads_an_unserved_endpoint_as_not_found_not_a_missing_model(gateway):
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().responses.create(model="gpt-4o-mini", input="hi")
    assert caught.value.code == "unsupported_endpoint"
    assert "/v1/responses" in caught.value.message
