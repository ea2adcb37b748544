"""What a flavor of provider is, and a configured provider ready to call.

A `Flavor` holds everything the gateway knows about one kind of provider: what its errors mean
(the facts `gateway.classify` asks for, in its order), what it can serve (capabilities are
attributes: the router never sends a provider a request of a kind it lacks), what its keys look
like, whether it needs one, how to read its balance for free, and which transport speaks to it.
The base class holds the facts of OpenAI's API, which every OpenAI-compatible provider starts
from; a flavor module overrides only what its provider does differently.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway import retry_after

if TYPE_CHECKING:
    from gateway.classify import UpstreamError
    from gateway.settings import ProviderConfig
    from gateway.transport import Transport


class Capability(enum.StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    SPEECH = "speech"
    COMPLETIONS = "completions"


# OpenAI's `type`/`code` values for "credits are gone" (older responses had code null).
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)


@dataclass(frozen=True, slots=True)
class Balance:
    """A provider's prepaid balance, read without spending a token (for `gateway doctor`)."""

    available: bool | None  # can it pay for calls; None: the answer was unreadable
    summary: str = "-"  # e.g. "CNY 110.00"
    why: str = ""  # when unreadable: what went wrong, in our words
    problem: str = ""  # when not available: what the operator must do


class Flavor:
    name = "openai"
    capabilities = frozenset({Capability.CHAT, Capability.EMBEDDINGS})
    requires_key = True
    # What a real key looks like. A mismatch is only a warning: formats change, and a proxy in
    # front of a provider may take keys of its own. None: no shape is known (or no key is taken).
    key_shape: re.Pattern[str] | None = re.compile(r"sk-[A-Za-z0-9_-]+")  # incl. sk-proj-, sk-svcacct-
    key_hint = "sk-..."
    # Where litellm's price file lists this flavor's models (`groq/llama-3.3-70b-versatile`); OpenAI's
    # are listed bare. A local flavor runs on your own machine: it costs nothing unless priced.
    litellm_prefix = ""
    local = False
    # The speech formats it can produce, when it has the speech capability; `response_formats:` narrows it.
    speech_formats = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
    requires_base_url = True  # False: its transport knows the provider's address (litellm)

    def transport_class(self) -> type[Transport]:
        """The transport that speaks to this flavor (one instance is shared by every provider using it)."""
        from gateway.transport.http import HttpTransport  # aiohttp is loaded only when a gateway runs

        return HttpTransport

    async def balance(self, provider: Provider, transport: Transport) -> Balance | None:
        """The prepaid balance, where the provider tells it for free; None where it does not."""
        return None

    async def list_models(self, provider: Provider, transport: Transport) -> tuple[int, bytes] | None:
        """The free model list its key can read (status, OpenAI-shaped body); None where there is none."""
        return await transport.get(provider, f"{provider.config.base_url}/models")

    def price_name(self, model: str) -> str:
        """The name litellm's price file lists a model of this flavor under first (then the bare name)."""
        return self.litellm_prefix + model

    # -- what its library needs (only a flavor that loads one in the background overrides these) --

    loads_in_background = False  # True: it is `starting` (and skipped) until `loading()` says done

    def prepare(self) -> None:
        """A provider of this flavor is configured: start what takes time (litellm's import), not waiting."""

    def loading(self) -> bool:
        """Still loading what it needs: shown `starting`, and skipped until it has."""
        return False

    def load_error(self) -> str | None:
        """Why what it needs could not be loaded (shown misconfigured, skipped); None when nothing failed."""
        return None

    # -- what its errors mean ------------------------------------------------------------------

    def is_auth(self, err: UpstreamError) -> bool:
        return err.status in (401, 403) or err.code == "invalid_api_key"

    def is_missing_permission(self, err: UpstreamError) -> bool:
        # A key that works but may not do this one thing: OpenAI's restricted keys answer 401 or 403
        # "You have insufficient permissions for this operation. Missing scopes: api.model.read". Only
        # the start-up checks ask: for a model list it proves nothing; for a request it is still auth.
        message = err.message.lower()
        return err.status == 403 or err.code == "missing_scope" or "insufficient permissions" in message

    def is_quota(self, err: UpstreamError) -> bool:
        # 402 Payment Required means an empty balance wherever it appears (DeepSeek, Gemini prepaid).
        return err.status == 402 or err.type in _QUOTA_CODES or err.code in _QUOTA_CODES

    def quota_hint(self, err: UpstreamError) -> float | None:
        # Credits come back when someone pays, not after a hinted delay: use the configured cooldown.
        return None

    def is_daily_limit(self, err: UpstreamError) -> bool:
        # OpenAI has no per-day quota of this kind: its limits are per minute, its credits until paid.
        return False

    def daily_limit_hint(self, err: UpstreamError) -> float | None:
        # When the day's budget comes back, where the provider says so (a retry-after, trusted).
        return retry_after.from_headers(err.headers)

    def is_rate_limit(self, err: UpstreamError) -> bool:
        return err.status == 429

    def rate_limit_hint(self, err: UpstreamError) -> float | None:
        hint = retry_after.from_headers(err.headers)
        return hint if hint is not None else retry_after.from_message(err.message)

    def is_request_too_large(self, err: UpstreamError) -> bool:
        # "Request too large ... on tokens per min (TPM)": this one request exceeds the per-minute
        # budget, so it fails over, but the provider still serves smaller requests.
        return err.message.startswith("Request too large")

    def is_model_not_found(self, err: UpstreamError) -> bool:
        return err.status == 404 or err.code == "model_not_found"

    def is_transient(self, err: UpstreamError) -> bool:
        return err.status >= 500 or err.status in (408, 409)


_CHARACTER_NAMES = {"\n": "a line break (\\n)", "\r": "a carriage return (\\r)", "\t": "a tab", " ": "a space"}


def key_problem(env: str | None, key: str) -> str | None:
    """Why a key cannot be sent in an HTTP header (a character that is not visible ASCII), saying which
    character and where, never the key; None when it can be."""
    for position, character in enumerate(key, 1):
        if "!" <= character <= "~":
            continue
        code = ord(character)
        kind = "a control character" if code < 32 or code == 127 else "a non-ASCII character"
        what = _CHARACTER_NAMES.get(character, f"{kind} (U+{code:04X})")
        return f"{env} holds {what} at character {position} of {len(key)}: a key is one line of visible ASCII"
    return None


class Provider:
    """A configured provider, ready to call through its flavor's transport."""

    __slots__ = ("config", "flavor", "headers", "key", "key_problem", "name", "speech_formats", "transport")

    def __init__(self, config: ProviderConfig, flavor: Flavor, key: str | None, transport: Transport) -> None:
        self.config = config
        self.flavor = flavor
        # A key no header can carry is as good as none: the provider is misconfigured, and says why.
        self.key_problem = key_problem(config.api_key_env, key) if key else None
        self.key = None if self.key_problem else key  # None: unset or unusable; misconfigured either way
        key = self.key
        self.name = config.name
        self.transport = transport
        formats = config.response_formats
        self.speech_formats = frozenset(formats) if formats is not None else flavor.speech_formats
        # Built once, for transports that speak HTTP: the provider's own key, never the client's token.
        self.headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if key:
            self.headers["authorization"] = f"Bearer {key}"

    def supports(self, capability: Capability) -> bool:
        return capability in self.flavor.capabilities
