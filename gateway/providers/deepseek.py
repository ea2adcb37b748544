"""DeepSeek: 402 for an empty balance (base rule), an unknown model as a 400, and a free balance endpoint."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from gateway.classify import UpstreamError
from gateway.errors import ProviderFailed
from gateway.providers.base import Balance, Capability, Flavor, Provider

if TYPE_CHECKING:
    from gateway.transport import Transport


class DeepSeek(Flavor):
    name = "deepseek"
    capabilities = frozenset({Capability.CHAT})  # DeepSeek has no embeddings API
    key_shape = re.compile(r"sk-[0-9a-f]+")
    key_hint = "sk- + hex"
    litellm_prefix = "deepseek/"

    def is_model_not_found(self, err: UpstreamError) -> bool:
        # "Model Not Exist" comes as a 400 (most reports) or a 404: a gateway model-map error either way.
        return super().is_model_not_found(err) or err.message == "Model Not Exist"

    async def balance(self, provider: Provider, transport: Transport) -> Balance:
        """`GET /user/balance`, beside /v1 rather than under it, free.

        Answers {"is_available": true, "balance_infos": [{"currency": "CNY", "total_balance": "110.00",
        "granted_balance": "10.00", "topped_up_balance": "100.00"}]}; is_available says whether the
        balance can pay for API calls (https://api-docs.deepseek.com/zh-cn/api/get-user-balance.md).
        """
        url = provider.config.base_url.removesuffix("/v1") + "/user/balance"
        doc, why = None, ""
        try:
            status, body = await transport.get(provider, url)
            doc, why = (orjson.loads(body), "") if status == 200 else (None, f" (HTTP {status})")
        except ProviderFailed as exc:
            why = f": {exc.failure.detail}"
        except orjson.JSONDecodeError:
            pass
        if not isinstance(doc, dict) or not isinstance(doc.get("is_available"), bool):
            return Balance(None, why=why)
        infos = [i for i in doc.get("balance_infos") or [] if isinstance(i, dict)]
        summary = ", ".join(f"{i.get('currency', '?')} {i.get('total_balance', '?')}" for i in infos) or "-"
        return Balance(doc["is_available"], summary, problem="DeepSeek balance cannot pay for calls: top it up")


FLAVOR = DeepSeek()
