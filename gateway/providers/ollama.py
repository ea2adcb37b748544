"""Ollama: no keys; a full queue is a 503 that passes like a rate limit."""

from __future__ import annotations

from gateway.classify import UpstreamError
from gateway.providers.base import Capability, Flavor


class Ollama(Flavor):
    name = "ollama"
    requires_key = False  # any bearer token is accepted and ignored
    key_shape = None
    key_hint = ""
    litellm_prefix = "ollama/"
    local = True  # your own machine: free unless `prices:` says otherwise
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS, Capability.COMPLETIONS})

    def is_rate_limit(self, err: UpstreamError) -> bool:
        # "server busy, please try again.  maximum pending requests exceeded"
        return super().is_rate_limit(err) or (err.status == 503 and err.message.startswith("server busy"))


FLAVOR = Ollama()
