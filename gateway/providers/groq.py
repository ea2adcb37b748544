"""Groq: no quota code; the daily budget shows up as a rate limit with a long wait."""

from __future__ import annotations

import re

from gateway.classify import UpstreamError
from gateway.providers.base import Capability, Flavor


class Groq(Flavor):
    name = "groq"
    # No /embeddings; speech (canopylabs/orpheus-*) answers WAV only, any other format a 400.
    capabilities = frozenset({Capability.CHAT, Capability.SPEECH})
    speech_formats = frozenset({"wav"})
    key_shape = re.compile(r"gsk_[A-Za-z0-9]+")
    key_hint = "gsk_..."
    litellm_prefix = "groq/"

    def is_quota(self, err: UpstreamError) -> bool:
        # A restricted organisation serves nothing until support acts (a 400, not a caller fault).
        return super().is_quota(err) or err.code == "organization_restricted"

    def is_daily_limit(self, err: UpstreamError) -> bool:
        # Free-tier daily budgets (RPD/TPD) are sent as 429 rate_limit_exceeded; the window's reset is
        # real and known, and Groq sends it as retry-after (the base hint).
        return err.status == 429 and " per day " in err.message

    def is_rate_limit(self, err: UpstreamError) -> bool:
        # Groq answers 413 when one request exceeds the tier's tokens-per-minute budget.
        return err.status == 429 or (err.status == 413 and "Request too large" in err.message)

    def is_transient(self, err: UpstreamError) -> bool:
        # 498: flex tier capacity exceeded, passes like a 503.
        return super().is_transient(err) or err.status == 498


FLAVOR = Groq()
