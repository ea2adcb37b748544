"""litellm: providers that do not speak OpenAI's wire format (Anthropic), reached through litellm.

Mapped models are litellm's names (`anthropic/claude-haiku-4-5`). The errors read here are the
upstream's own (status, headers and body, which the transport digs out of litellm's exceptions), so
the facts below are Anthropic's (docs.claude.com/en/api/errors): the base rules already read its
401/403 as auth, 404 as model not found, 429 as a rate limit with `retry-after`, and 5xx (529
`overloaded_error` too) as transient.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gateway.providers.base import Capability, Flavor
from gateway.transport import via_litellm
from gateway.transport.litellm_loader import LOADER

if TYPE_CHECKING:
    from gateway.classify import UpstreamError
    from gateway.providers.base import Provider
    from gateway.transport import Transport

# litellm's price file lists these providers' models bare (`claude-haiku-4-5`), all others under
# their litellm prefix (`groq/llama-3.3-70b-versatile`), which is the mapped name itself.
_PRICED_BARE = ("anthropic", "openai")


class Litellm(Flavor):
    name = "litellm"
    # Embeddings where litellm has them for the mapped model (Anthropic has none).
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    loads_in_background = True
    requires_base_url = False  # litellm knows each provider's address; base_url overrides it
    key_shape = re.compile(r"sk-ant-[A-Za-z0-9_-]+")  # Anthropic's; another provider's key is only a warning
    key_hint = "sk-ant-..."

    def transport_class(self) -> type[Transport]:
        return via_litellm.LitellmTransport

    def prepare(self) -> None:
        LOADER.want()

    def loading(self) -> bool:
        return LOADER.loading()

    def load_error(self) -> str | None:
        return LOADER.error

    async def list_models(self, provider: Provider, transport: Transport) -> tuple[int, bytes] | None:
        assert isinstance(transport, via_litellm.LitellmTransport)
        return await transport.list_models(provider)

    def price_name(self, model: str) -> str:
        prefix, _, bare = model.partition("/")
        return bare if prefix in _PRICED_BARE and bare else model

    def is_quota(self, err: UpstreamError) -> bool:
        # Anthropic says "out of credits" as a 400 invalid_request_error, not a 402 or a 429.
        if err.status == 400 and "credit balance is too low" in err.message:
            return True
        return super().is_quota(err) or err.type == "billing_error"

    def is_rate_limit(self, err: UpstreamError) -> bool:
        # A 413 is this request's own size: asked here so that it fails over benching nothing.
        return super().is_rate_limit(err) or self.is_request_too_large(err)

    def is_request_too_large(self, err: UpstreamError) -> bool:
        return err.status == 413 or err.type == "request_too_large"


FLAVOR = Litellm()
