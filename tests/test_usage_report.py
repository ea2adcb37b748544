"""OpenAI's usage and costs API over hand-made usage rows, and the routes that serve it.

Pages are checked against the official openai SDK's own response models where it has them, so a
tool written for OpenAI's API reads what the gateway answers.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from gateway.accounting.report import WIDTHS, QueryError, usage_page
from gateway.client_keys import ClientKeys, digest
from gateway.settings import ClientKeyConfig
from gateway.web.usage_api import add_usage_routes
from tests.usage_rows import DAY, EMBED, HOUR, NOW, T0, page, query, results, row

ADMIN = "admin-key-for-usage-tests"
CRM_KEY = "sk-gw-crm-tool-key"


def pick(answer: dict[str, Any], *fields: str) -> list[tuple[Any, ...]]:
    """Those fields of every result; "value" is the amount's value (None without an amount)."""
    return [tuple(r.get("amount", {}).get("value") if f == "value" else r[f] for f in fields) for r in results(answer)]


def sdk(name: str) -> Any:
    module = pytest.importorskip("openai.types.admin.organization")  # openai>=2.x has the admin API's models
    return getattr(module, name)


# -- report.py: buckets, groups, pages --------------------------------------------------------


def test_buckets_are_aligned_and_every_one_is_there():
    q = query(start_time=T0 + 7 * HOUR, end_time=T0 + 2 * DAY + 1)  # mid-day start: its day is the first bucket
    assert q.window() == ("1d", T0, T0 + 2 * DAY + 1)
    answer = usage_page(q, [row(T0 + DAY, requests=2, input=300, cached=50, output=40, estimated=1)])
    sdk("UsageCompletionsResponse").model_validate(answer)
    spans = [(b["start_time"], b["end_time"] - b["start_time"]) for b in answer["data"]]
    assert spans == [(T0, DAY), (T0 + DAY, DAY), (T0 + 2 * DAY, DAY)]
    assert [len(b["results"]) for b in answer["data"]] == [0, 1, 0]
    assert (answer["object"], answer["has_more"], answer["next_page"]) == ("page", False, None)
    (r,) = results(answer)
    assert r["object"] == "organization.usage.completions.result" and r["input_audio_tokens"] == 0
    tokens = ("input_tokens", "output_tokens", "input_cached_tokens", "num_model_requests")
    assert [r[name] for name in tokens] == [300, 40, 50, 2]
    assert (r["cost_usd"], r["unpriced_requests"], r["estimated_requests"]) == (21e-6, 0, 1)
    nulls = {"project_id", "user_id", "api_key_id", "model", "provider", "provider_model", "batch", "service_tier"}
    assert {name for name, value in r.items() if value is None} == nulls  # grouped-out fields are null
    assert query(start_time=T0, bucket_width="1h").window() == ("1h", T0, T0 + 24 * HOUR)  # OpenAI's default counts
    assert query(start_time=T0 + 61, bucket_width="1m").window() == ("1m", T0 + 60, T0 + 60 + 60 * 60)
    assert query(start_time=NOW - 90, bucket_width="1m").window()[2] == NOW + 1  # up to now: the current bucket too


def test_group_by_in_every_form():
    llama = "llama-3.1-8b-instant"  # gpt-4o-mini, served by groq
    rows = [row(T0), row(T0 + 10, provider="groq", provider_model=llama), row(T0 + HOUR, key="bob")]
    rows.append(row(T0 + 20, provider="groq", provider_model=llama, key="bob", user="u1"))
    fields, both = ("provider", "model", "num_model_requests", "provider_model", "api_key_id"), ["model", "provider"]
    want = [("groq", "gpt-4o-mini", 2, [f"groq/{llama}"], None)]
    want.append(("openai", "gpt-4o-mini", 2, ["openai/gpt-4o-mini"], None))
    for given in ({"group_by": both}, {"group_by[]": both}, {"group_by": "model,provider"}):
        assert pick(page(rows=rows, **given), *fields) == want
    answer = page(rows=rows, group_by=["api_key_id", "user_id", "model"])
    want = [("alice", None, 2), ("bob", None, 1), ("bob", "u1", 1)]
    assert pick(answer, "api_key_id", "user_id", "num_model_requests") == want
    assert pick(answer, "provider_model", "provider")[0] == ([f"groq/{llama}", "openai/gpt-4o-mini"], None)
    batch = page(rows=rows, group_by=["batch", "project_id"])
    assert pick(batch, "batch", "project_id", "num_model_requests") == [(False, "crm", 4)]


def test_completions_and_embeddings_each_read_their_own_endpoint():
    emb = "text-embedding-3-small"
    rows = [row(T0, requests=3), row(T0, endpoint=EMBED, model=emb, input=70, output=0, cost_out=0)]
    assert pick(page(rows=rows), "num_model_requests") == [(3,)]
    answer = page("embeddings", rows, group_by="model")
    sdk("UsageEmbeddingsResponse").model_validate(answer)
    assert pick(answer, "input_tokens", "num_model_requests", "model") == [(70, 1, emb)]
    assert results(answer)[0]["object"] == "organization.usage.embeddings.result"
    assert "output_tokens" not in results(answer)[0]


def test_pages_follow_next_page_to_the_end_and_count_everything_once():
    rows = [row(T0 + h * HOUR + 5, input=h) for h in range(30)]  # one request an hour for 30 hours
    params = {"start_time": T0, "end_time": T0 + 30 * HOUR, "bucket_width": "1h"}
    first = query(**params)
    answer = usage_page(first, [r for r in rows if first.window()[1] <= r[0] < first.window()[2]])
    assert len(answer["data"]) == 24 and answer["has_more"] is True and answer["next_page"].startswith("page_")
    second = query(**params, page=answer["next_page"])
    assert second.window() == ("1h", T0 + 24 * HOUR, T0 + 30 * HOUR)
    rest = usage_page(second, rows)  # rows outside the page's window are not counted, whatever the store gave
    assert len(rest["data"]) == 6 and rest["has_more"] is False and rest["next_page"] is None
    assert sorted(r["input_tokens"] for r in results(answer) + results(rest)) == list(range(30))
    limited = query(**params, limit=5)
    assert limited.window()[2] == T0 + 5 * HOUR and usage_page(limited, rows)["has_more"] is True
    assert query(start_time=T0, bucket_width="1m", limit=1440).limit == 1440


@pytest.mark.parametrize(
    ("kind", "params", "param"),
    [
        ("completions", {}, "start_time"),
        ("completions", {"start_time": "yesterday"}, "start_time"),
        ("completions", {"start_time": -5}, "start_time"),
        ("completions", {"start_time": T0, "end_time": T0}, "end_time"),
        ("completions", {"start_time": NOW + DAY}, "start_time"),
        ("completions", {"start_time": T0, "bucket_width": "1w"}, "bucket_width"),
        ("costs", {"start_time": T0, "bucket_width": "1h"}, "bucket_width"),
        ("completions", {"start_time": T0, "group_by": "line_item"}, "group_by"),
        ("embeddings", {"start_time": T0, "group_by": "batch"}, "group_by"),
        ("costs", {"start_time": T0, "group_by": "model"}, "group_by"),
        ("completions", {"start_time": T0, "page": "page_garbage"}, "page"),
        ("completions", {"start_time": T0, "page": "not-a-cursor!"}, "page"),
        ("completions", {"start_time": T0, "limit": 32}, "limit"),  # OpenAI's most for 1d
        ("completions", {"start_time": T0, "bucket_width": "1h", "limit": 169}, "limit"),
        ("completions", {"start_time": T0, "bucket_width": "1m", "limit": 1441}, "limit"),
        ("completions", {"start_time": T0, "limit": 0}, "limit"),
        ("costs", {"start_time": T0, "limit": 181}, "limit"),
        ("completions", {"start_time": 2**63}, "start_time"),  # past any date: a 400, not a store error
        ("costs", {"start_time": T0, "end_time": 253_402_300_800}, "end_time"),
    ],
)
def test_bad_parameters_name_themselves(kind, params, param):
    with pytest.raises(QueryError) as raised:
        query(kind, **params)
    assert raised.value.param == param and raised.value.message


def test_a_cursor_belongs_to_its_query():
    cursor = usage_page(query(start_time=T0, bucket_width="1h", limit=2), [])["next_page"]
    assert query(start_time=T0, bucket_width="1h", page=cursor).page == T0 + 2 * HOUR
    for other in ({"bucket_width": "1m"}, {"end_time": T0 + HOUR}, {"start_time": T0 + 3 * HOUR}):
        with pytest.raises(QueryError):
            query(**({"start_time": T0, "bucket_width": "1h", "page": cursor} | other))


def test_filters_keep_only_what_they_name():
    rows = [row(T0, user="u1"), row(T0, key="bob", project="ops", model="gpt-4o", provider="groq", user="u2")]

    def count(**params: Any) -> int:
        return sum(n for (n,) in pick(page(rows=rows, **params), "num_model_requests"))

    assert count() == 2
    assert count(api_key_ids="bob") == count(project_ids="ops") == count(models="gpt-4o") == count(user_ids="u2") == 1
    assert count(providers="groq") == count(**{"api_key_ids[]": ["bob", "carol"]}) == 1
    assert count(project_ids="crm", api_key_ids="bob") == 0
    assert count(batch="true") == 0 and count(batch="false") == 2  # the gateway runs no batch jobs


# -- costs and unpriced usage -----------------------------------------------------------------


def test_unpriced_requests_never_read_as_zero_dollars():
    rows = [row(T0, provider="groq", model="llama-3.1-8b-instant", cost_in=0, cost_out=0, unpriced=1, output=20)]
    rows.append(row(T0 + 60, requests=3, cost_in=333_333_333, cost_out=0))
    by_provider = pick(page(rows=rows, group_by="provider"), "provider", "cost_usd", "unpriced_requests")
    assert by_provider == [("groq", None, 1), ("openai", 0.333333333, 0)]
    assert pick(page(rows=rows), "cost_usd", "unpriced_requests") == [(0.333333333, 1)]  # a lower bound, and it says so


def test_costs_page_priced_and_unpriced_results():
    rows = [
        row(T0, cost_in=250_000_000, cost_out=500_000_000, project="crm"),
        row(T0 + 5, cost_in=250_000_000, cost_out=0, project="ops", endpoint=EMBED, output=0),
        row(T0 + DAY, provider="groq", model="llama-3.1-8b-instant", cost_in=0, cost_out=0, unpriced=2, requests=2),
    ]
    answer = page("costs", rows, end_time=T0 + 2 * DAY)
    sdk("UsageCostsResponse").model_validate(answer)
    assert [len(bucket["results"]) for bucket in answer["data"]] == [1, 1]
    priced, unpriced = results(answer)
    assert priced["amount"] == {"value": 1.0, "currency": "usd"} and priced["line_item"] is None
    assert "amount" not in unpriced and (unpriced["unpriced"], unpriced["unpriced_requests"]) == (True, 2)
    assert (unpriced["quantity"], unpriced["quantity_unit"]) == (110, "tokens")
    assert unpriced["line_item"] == "groq/llama-3.1-8b-instant, unpriced: set prices: in providers.yaml"
    items = page("costs", rows, group_by=["line_item", "project_id"])
    assert pick(items, "line_item", "project_id", "value", "quantity") == [
        ("openai/gpt-4o-mini, input", "crm", 0.25, 100),
        ("openai/gpt-4o-mini, output", "crm", 0.5, 10),
        ("openai/gpt-4o-mini, input", "ops", 0.25, 100),  # embeddings: no output line item
    ]
    by_key = page("costs", rows, group_by=["api_key_id", "provider"])
    assert pick(by_key, "api_key_id", "provider", "value") == [("alice", "openai", 1.0)]
    rows = [row(T0 + n, cost_in=1, cost_out=2) for n in range(1000)] + [row(T0, cost_in=333_333_333, cost_out=0)]
    assert pick(page("costs", rows), "value") == [(0.333336333,)]  # added up in nano-dollars: exact


# -- the routes, read with the official SDK ---------------------------------------------------


class RowsStore:
    """A UsageStore's read side over minute rows, rolled up to the width asked for as the stores do."""

    def __init__(self, rows: list[tuple[int, tuple[Any, ...], list[int]]]) -> None:
        self.minute_rows, self.readable, self.asked = rows, True, []

    async def rows(self, width: str, start: int, end: int) -> list[Any] | None:
        self.asked.append((width, start, end))
        rolled = [(s - s % WIDTHS[width], d, c) for s, d, c in self.minute_rows]
        return [r for r in rolled if start <= r[0] < end] if self.readable else None

    def status(self) -> dict[str, Any]:
        return {"backend": "sqlite", "state": "ok" if self.readable else "unavailable"}


def served(store: RowsStore, admin_key: str | None = ADMIN) -> httpx.AsyncClient:
    keys = ClientKeys([ClientKeyConfig(name="crm-tool", key=digest(CRM_KEY), project="crm")])
    api = FastAPI()
    add_usage_routes(api, SimpleNamespace(usage_store=store, admin_key=admin_key, keys=keys))
    return httpx.AsyncClient(transport=httpx.ASGITransport(api), base_url="http://gw")


def test_the_openai_sdk_reads_the_gateway():
    sdk("UsageCompletionsResponse")
    now = T0 + DAY + 1
    store = RowsStore([row(now - 120, key="crm-tool"), row(now - 60, key="other", unpriced=1, cost_in=0, cost_out=0)])

    async def read() -> tuple[Any, Any, Any]:
        async with served(store) as http:
            client = openai.AsyncOpenAI(base_url="http://gw/v1", admin_api_key=ADMIN, http_client=http)
            usage = client.admin.organization.usage
            hours = {"start_time": T0, "end_time": T0 + 48 * HOUR, "bucket_width": "1h", "limit": 48}
            completions = await usage.completions(**hours, group_by=["api_key_id", "model"])
            costs = await usage.costs(start_time=T0, group_by=["api_key_id"])
            with pytest.raises(openai.BadRequestError) as bad:
                await usage.completions(start_time=T0, bucket_width="1m", limit=5000)
            return completions, costs, bad.value

    completions, costs, bad = asyncio.run(read())
    assert len(completions.data) == 48 and not completions.has_more and store.asked[0] == ("1h", T0, T0 + 48 * HOUR)
    got = [(r.api_key_id, r.model, r.num_model_requests) for r in completions.data[23].results]
    assert got == [("crm-tool", "gpt-4o-mini", 1), ("other", "gpt-4o-mini", 1)]
    got = [(r.api_key_id, r.amount and r.amount.value) for r in costs.data[0].results]
    assert got == [("crm-tool", 21e-6), ("other", None)]
    assert bad.status_code == 400 and bad.body["param"] == "limit"


def test_a_gateway_key_reads_its_own_usage_only_and_others_are_refused():
    store = RowsStore([row(T0, key="crm-tool", requests=2), row(T0, key="other", requests=5)])

    async def get(path: str, key: str | None, admin_key: str | None = ADMIN, **extra: str) -> httpx.Response:
        async with served(store, admin_key) as http:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return await http.get(path, params={"start_time": T0, "end_time": T0 + DAY, **extra}, headers=headers)

    async def main() -> None:
        for path in ("/v1/organization/usage/completions", "/organization/usage/completions"):
            assert pick((await get(path, CRM_KEY)).json(), "num_model_requests") == [(2,)]
        assert pick((await get("/v1/organization/costs", ADMIN)).json(), "value") == [(42_000 / 1e9,)]  # both rows
        for key, admin_key in ((None, ADMIN), ("sk-wrong", ADMIN), (ADMIN + "x", ADMIN), (ADMIN, None)):
            refused = await get("/v1/organization/usage/embeddings", key, admin_key)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
            assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
        bad = await get("/v1/organization/usage/completions", ADMIN, group_by="line_item")
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
        store.readable = False
        down = await get("/v1/organization/costs", ADMIN)
        assert down.status_code == 503 and down.json()["error"]["code"] == "usage_store_unavailable"
        assert "sqlite" in down.json()["error"]["message"]

    asyncio.run(main())
