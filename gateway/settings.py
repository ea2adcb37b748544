"""Typed configuration, validated once at start-up.

`providers.yaml` is parsed into frozen models; unknown keys are errors, and every error names the
file and the offending key. Secrets are never in the file: a provider names the environment
variable that holds its key, and a provider whose variable is unset is not a boot failure (it is
shown as `misconfigured` and skipped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.errors import ConfigError
from gateway.providers import FLAVORS

DEFAULT_CONFIG = "providers.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")  # ${NAME} or ${NAME:-default}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Budget(_Strict):
    """A spend cap in USD, per UTC day and/or calendar month (UTC)."""

    daily_usd: float | None = Field(None, gt=0)
    monthly_usd: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _some_period(self) -> Budget:
        if self.daily_usd is None and self.monthly_usd is None:
            raise ValueError("give daily_usd, monthly_usd or both")
        return self


class RateLimits(_Strict):
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)


class Price(_Strict):
    """USD per million tokens, for a model the price file lacks or that you pay otherwise."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(0, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)  # default: as input


_NAME = r"^[A-Za-z0-9_.-]+$"


class ClientKeyConfig(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=_NAME)  # shown in usage, logs, metrics, errors
    key: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    project: str = Field("default", min_length=1, max_length=64, pattern=_NAME)
    budget: Budget | None = None
    rate_limits: RateLimits | None = None


def bare_key_name(listed: str) -> str:
    """The name of a `client_keys` entry that is a bare digest: `key-<first 8 hex digits>`, so that
    logs, usage and errors can tell keys apart."""
    return f"key-{listed.removeprefix('sha256:')[:8]}"


class UsageSettings(_Strict):
    path: str = "gateway-usage.sqlite3"  # the usage store when REDIS_URL is unset
    retention_days: int = Field(400, ge=1)


class ProviderConfig(_Strict):
    name: str = Field(min_length=1, pattern=_NAME)
    flavor: str  # a name in the registry, gateway.providers.FLAVORS
    base_url: str | None = None  # required, except where the flavor knows its default (litellm)
    api_key_env: str | None = None
    models: dict[str, str] = Field(min_length=1)
    # Never benched, and tried after every other provider: the one that must always get a chance.
    last_resort: bool = False
    budget: Budget | None = None  # a spend cap: reached, the provider is skipped (reason `budget`)
    prices: dict[str, Price] = {}  # by this provider's model name; wins over the price file
    # Speech: the client's voice -> this provider's (`default` for any other); None: passed through.
    voices: dict[str, str] | None = None
    # Speech: the formats it can produce; None: what its flavor can (Groq: wav only; others: all six).
    response_formats: list[Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]] | None = Field(None, min_length=1)

    @field_validator("flavor", mode="before")
    @classmethod
    def _known_flavor(cls, value: object) -> object:
        if not isinstance(value, str) or value not in FLAVORS:
            *others, last = (repr(name) for name in sorted(FLAVORS))
            raise ValueError(f"Input should be {', '.join(others)} or {last}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _ENV_REF.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", value)
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _key_env_required(self) -> ProviderConfig:
        # A flavor that takes a key (all but Ollama) cannot serve without one: forgetting it is a config error.
        if self.api_key_env is None and FLAVORS[self.flavor].requires_key:
            raise ValueError(f"api_key_env is required for flavor {self.flavor!r}")
        if self.base_url is None and FLAVORS[self.flavor].requires_base_url:
            raise ValueError(f"base_url is required for flavor {self.flavor!r} (only flavor 'litellm' has a default)")
        return self


class Cooldowns(_Strict):
    quota_s: float = Field(3600, gt=0)
    rate_limit_s: float = Field(10, gt=0)
    auth_s: float = Field(3600, gt=0)
    transient_s: float = Field(30, gt=0)
    # How many transient failures in a row open the circuit breaker.
    transient_failures: int = Field(3, ge=1)


class Timeouts(_Strict):
    connect_s: float = Field(5, gt=0)
    total_s: float = Field(120, gt=0)


class Limits(_Strict):
    max_body_bytes: int = Field(32 * 1024 * 1024, gt=0)
    # A non-streamed answer larger than this is a failed attempt, and its connection is dropped.
    # 128 MiB holds any chat answer, and embeddings of 2048 inputs of 1536 floats as JSON text
    # (about 72 MB) or of 3072 as base64, the SDKs' default (about 34 MB).
    max_response_bytes: int = Field(128 * 1024 * 1024, gt=0)
    # What a client may hold (web.ingress; the README says why each default): a head of at most this
    # many bytes and headers, arriving within head_timeout_s, its body within body_timeout_s after.
    max_head_bytes: int = Field(32 * 1024, ge=1024)
    max_headers: int = Field(100, ge=10)
    head_timeout_s: float = Field(10, gt=0)
    body_timeout_s: float = Field(60, gt=0)
    # Open connections, and requests being answered (streams included); past them, a fast 503.
    max_connections: int = Field(2048, ge=1)
    max_in_flight: int = Field(1024, ge=1)


class Config(_Strict):
    providers: list[ProviderConfig] = Field(min_length=1)
    cooldowns: Cooldowns = Cooldowns()
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    # When present, every /v1 request needs `Authorization: Bearer <key>` whose SHA-256 is listed.
    # A bare digest is a key named `key-<first 8 hex digits>` in the project "default".
    client_keys: list[Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")] | ClientKeyConfig] | None = None
    usage: UsageSettings = UsageSettings()

    @field_validator("client_keys")
    @classmethod
    def _unique_keys(cls, keys: list[str | ClientKeyConfig] | None) -> list[str | ClientKeyConfig] | None:
        names: set[str] = set()
        digests: set[str] = set()
        for entry in keys or []:
            if isinstance(entry, ClientKeyConfig):
                name, listed = entry.name, entry.key
            else:  # a bare digest's name must not be taken by another key
                name, listed = bare_key_name(entry), entry
            if listed in digests:
                raise ValueError(f"the key {listed[:15]}… is listed twice")
            if name in names:
                raise ValueError(f"two client keys are named {name!r} (a bare digest is named key-<its first 8 hex>)")
            digests.add(listed)
            names.add(name)
        return keys

    @field_validator("providers")
    @classmethod
    def _unique_names(cls, providers: list[ProviderConfig]) -> list[ProviderConfig]:
        seen: set[str] = set()
        for provider in providers:
            if provider.name in seen:
                raise ValueError(f"duplicate provider name {provider.name!r}")
            seen.add(provider.name)
        return providers

    def api_key(self, provider: ProviderConfig) -> str | None:
        """The provider's key from the environment; None when it needs one and none is set.

        Surrounding whitespace is dropped: no key has any, and a pasted newline could not even be
        sent in a header.
        """
        if provider.api_key_env is None:
            return ""
        return (os.environ.get(provider.api_key_env) or "").strip() or None


def _where(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file; raise ConfigError naming the file and key on failure."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'providers' list at the top level")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key"
            lines.append(f"{file}: {_where(err['loc'])}: {message}")
        raise ConfigError("\n".join(lines)) from exc
