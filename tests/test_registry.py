"""The registries are complete: every flavor module registers, every endpoint is served and has providers."""

from __future__ import annotations

import pkgutil

import httpx
import pytest

from gateway import providers
from gateway.endpoints import ENDPOINTS
from gateway.providers import FLAVORS, Capability


def test_every_flavor_module_registers_its_flavor():
    modules = {m.name for m in pkgutil.iter_modules(providers.__path__)} - {"base"}
    assert modules == {type(flavor).__module__.rsplit(".", 1)[1] for flavor in FLAVORS.values()}
    assert sorted(FLAVORS) == ["deepseek", "gemini", "groq", "litellm", "ollama", "openai"]


def test_every_flavor_states_what_it_can_serve_and_how_its_keys_look():
    for name, flavor in FLAVORS.items():
        assert flavor.name == name
        assert Capability.CHAT in flavor.capabilities, name
        assert (flavor.key_shape is not None) == flavor.requires_key, name


def test_every_endpoint_has_a_flavor_that_serves_it():
    for endpoint in ENDPOINTS:
        assert any(endpoint.capability in f.capabilities for f in FLAVORS.values()), endpoint.path


@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS])
def test_every_endpoint_is_served_with_and_without_v1(gateway, path):
    for prefix in ("/v1", ""):
        response = httpx.get(f"{gateway.url}{prefix}{path}")
        assert (response.status_code, response.headers["allow"]) == (405, "POST")
        response = httpx.post(f"{gateway.url}{prefix}{path}", content=b"{}")
        assert response.status_code == 400  # the endpoint's own check, not a 404
        assert response.json()["error"]["param"] == "model"
