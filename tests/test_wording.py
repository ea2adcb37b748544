"""Every reason a provider can be out for has its own words in the 503, with the time it comes back."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway.errors import FailureClass
from tests.conftest import ADMIN, AUTH, MESSAGES, config_dict

# The reason a bench carries -> what the client reads (the provider is openai, benched for 60 s).
WORDS = {
    "quota_exhausted": "openai: credits exhausted, retry in 60 s or add credits",
    "daily_limit": "openai: daily limit reached, retry at ",
    "rate_limited": "openai: rate limited, retry in 60 s",
    "auth": "openai: API key rejected, retry in 60 s; check TEST_OPENAI_KEY",
    "redirected": "openai: its base_url redirects elsewhere, retry in 60 s; fix base_url",
    "model_not_found": "openai: has no model 'gpt-4o-mini', retry in 60 s; fix its models map",
    "transient": "openai: failing repeatedly, retry in 60 s",
    "unreachable": "openai: not reachable at http://127.0.0.1:",
    "budget": "openai: its spend cap (budget) is reached, retry in 60 s; raise budget: in providers.yaml",
    "manual": "openai: benched by an operator, retry in 60 s",
    "maintenance window": "openai: benched by an operator (maintenance window), retry in 60 s",
}


def test_every_failure_class_that_benches_has_words():
    assert {c.value for c in FailureClass} - {FailureClass.CALLER.value} <= set(WORDS)


@pytest.mark.parametrize(("reason", "words"), WORDS.items(), ids=list(WORDS))
def test_each_bench_reason_is_worded(fakes, start_gateway, reason, words):
    gateway = start_gateway(config_dict(fakes, order=("openai",)), admin_key=ADMIN)
    bench = httpx.put(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH, json={"seconds": 60, "reason": reason})
    assert bench.status_code == 200
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert words in caught.value.message
    assert "no API key" not in caught.value.message


@pytest.mark.parametrize("reason", ["", "x" * 65, "line\nbreak", "<script>"])
def test_an_operator_reason_is_a_short_plain_phrase(fakes, start_gateway, reason):
    gateway = start_gateway(config_dict(fakes, order=("openai",)), admin_key=ADMIN)
    bench = httpx.put(f"{gateway.url}/admin/cooldowns/openai", headers=AUTH, json={"seconds": 60, "reason": reason})
    assert bench.status_code == 400
    assert gateway.provider("openai")["state"] == "available"
