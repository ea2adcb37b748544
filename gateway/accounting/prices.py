"""The price list: what one provider model costs per token, and what a request's tokens cost.

A price is, in order: the provider's `prices:` entry for that model; else litellm's price file,
read as data from the installed package (`model_prices_and_context_window_backup.json`; never
`import litellm`, which costs seconds and about 170 MB), under the flavor's litellm prefix
(`groq/…`), then the bare model name (not for a local flavor: a model named like a cloud one runs
on your machine); else, for a local flavor (Ollama), 0. Anything else is
unpriced: counted with cost None and said so everywhere, never silently $0.

Costs are whole nano-dollars (1e-9 USD), so sums across requests, replicas and stores are exact.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from gateway.providers import Provider

log = logging.getLogger("gateway.accounting")
NANO_PER_USD = 1_000_000_000
_FILE = "model_prices_and_context_window_backup.json"
_price_file: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    """Nano-dollars per token (per character of input, for speech models priced so)."""

    input: float
    output: float
    cached_input: float
    per_character: bool = False

    def for_characters(self) -> Rate:
        """A per-token rate applied to characters of text: about four characters a token."""
        if self.per_character:
            return self
        per_char = self.input / CHARACTERS_PER_TOKEN
        return Rate(per_char, 0.0, per_char, per_character=True)

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> tuple[int, int]:
        """(input cost, output cost) in nano-dollars; cached input tokens are part of the input tokens."""
        cached = min(cached_tokens, input_tokens)
        cost_in = (input_tokens - cached) * self.input + cached * self.cached_input
        return round(cost_in), round(output_tokens * self.output)


FREE = Rate(0.0, 0.0, 0.0)
CHARACTERS_PER_TOKEN = 4


def price_file() -> dict[str, Any]:
    """litellm's price file, read once; empty (every model unpriced) when it cannot be found."""
    global _price_file
    if _price_file is None:
        _price_file = {}
        spec = importlib.util.find_spec("litellm")  # finds the package without running it
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in folders:
            path = Path(folder) / _FILE
            if path.is_file():
                _price_file = orjson.loads(path.read_bytes())
                break
        else:
            log.warning(
                "litellm's price file (%s) was not found: models are unpriced unless `prices:` gives them", _FILE
            )
    return _price_file


def _from_file(entry: Any) -> Rate | None:
    if not isinstance(entry, dict):
        return None
    per_token = entry.get("input_cost_per_token")
    if not isinstance(per_token, int | float):
        per_char = entry.get("input_cost_per_character")  # tts-1, Groq's orpheus: billed by the character
        if not isinstance(per_char, int | float):
            return None
        return Rate(per_char * NANO_PER_USD, 0.0, per_char * NANO_PER_USD, per_character=True)
    output = entry.get("output_cost_per_token")
    cached = entry.get("cache_read_input_token_cost")
    output = output if isinstance(output, int | float) else 0.0
    cached = cached if isinstance(cached, int | float) else per_token
    return Rate(per_token * NANO_PER_USD, output * NANO_PER_USD, cached * NANO_PER_USD)


class PriceList:
    """Rates by (provider, provider model), looked up once each and kept."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], Rate | None] = {}

    def rate(self, provider: Provider, model: str) -> Rate | None:
        found = self._rates.get((provider.name, model), self)
        if found is self:
            found = self._rates[(provider.name, model)] = self._look_up(provider, model)
        return found  # type: ignore[return-value]

    @staticmethod
    def _look_up(provider: Provider, model: str) -> Rate | None:
        override = provider.config.prices.get(model)
        if override is not None:
            per_m = NANO_PER_USD / 1_000_000
            cached = override.cached_input_per_mtok
            cached = override.input_per_mtok if cached is None else cached
            return Rate(override.input_per_mtok * per_m, override.output_per_mtok * per_m, cached * per_m)
        prices = price_file()
        rate = _from_file(prices.get(provider.flavor.price_name(model)))
        if provider.flavor.local:  # never a cloud price for a model that only shares its name
            return rate or FREE
        return rate or _from_file(prices.get(model))
