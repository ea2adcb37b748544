"""`gateway doctor`: can each configured provider serve right now? Found out without spending a token.

The free checks of every provider (gateway.checks), and with `REDIS_URL` the cooldowns the
gateways last stored there. The result is one table and an exit code: 0 when at least one provider
can serve, 1 when none can.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from gateway.accounting.prices import PriceList, price_file
from gateway.checks import Report, Row, check_all
from gateway.errors import FailureClass
from gateway.providers import Capability, Provider
from gateway.settings import Config
from gateway.status import ProviderStatus
from gateway.store import Cooldown

# Benches that mean "cannot serve until someone acts" (pay, fix the key); others pass by themselves.
_OUT_REASONS = (FailureClass.QUOTA.value, FailureClass.DAILY_LIMIT.value, FailureClass.AUTH.value)


async def run(config: Config, redis_url: str | None) -> Report:
    checked, (store_line, active) = await asyncio.gather(check_all(config), _read_store(redis_url))
    if active is not None:
        now = time.time()
        for provider, row in checked:
            _benches(row, ProviderStatus.of(provider, active, now))
    prices = PriceList()
    _speech_warnings(checked)
    for provider, row in checked:
        for model in dict.fromkeys(provider.config.models.values()):
            if prices.rate(provider, model) is None:
                row.warnings.append(
                    f"{model} has no price (not in litellm's price file): its usage is counted with cost null; "
                    f"set prices: {{{model}: {{input_per_mtok: ..., output_per_mtok: ...}}}} under {provider.name}"
                )
    return Report([row for _, row in checked], store_line)


def _speech_warnings(checked: list[tuple[Provider, Row]]) -> None:
    """A speech model mapped on a flavor without speech is never sent a speech request: say so.

    A speech model is one litellm's price file lists as such, by the client's name or the provider's
    (e.g. `tts-1`, `canopylabs/orpheus-v1-english`), or a name a provider with speech maps to one.
    """
    listed = price_file()

    def speech(provider: Provider, model: str, upstream: str) -> bool:
        names = (model, upstream, provider.flavor.litellm_prefix + upstream)
        return any(isinstance(e := listed.get(name), dict) and e.get("mode") == "audio_speech" for name in names)

    speaking = {
        model
        for provider, _ in checked
        if provider.supports(Capability.SPEECH)
        for model, upstream in provider.config.models.items()
        if speech(provider, model, upstream)
    }
    for provider, row in checked:
        if provider.supports(Capability.SPEECH):
            continue
        for model, upstream in provider.config.models.items():
            if model in speaking or speech(provider, model, upstream):
                row.warnings.append(
                    f"models: {model} is a speech model, but flavor {provider.config.flavor} has no /audio/speech:"
                    f" {provider.name} is never sent speech requests"
                )


async def _read_store(redis_url: str | None) -> tuple[str, dict[str, Cooldown] | None]:
    """The store line, and every active cooldown (None: not known here)."""
    if not redis_url:
        return (
            "redis: not configured (REDIS_URL unset); the last known cooldowns live only in a running gateway:"
            " see `gateway status`",
            None,
        )
    from gateway.store.cooldowns import RedisCooldowns
    from gateway.store.redis import safe_url

    logging.getLogger("gateway.store").setLevel(logging.ERROR)  # the store line says it, once
    where = safe_url(redis_url)  # never the password
    try:
        store = RedisCooldowns(redis_url, timeout_s=2.0)  # a person can wait longer than a request
    except ValueError as exc:  # not a Redis URL of any form: the message names them
        return f"redis: unusable REDIS_URL ({exc})", None
    try:
        store.connect()  # no sync loop: the doctor only reads
        if not await store.load():
            return f"redis: unreachable ({where}: {store.status().get('last_error', 'no answer')})", None
        return f"redis: ok ({where})", store.active(time.time())
    except ValueError as exc:  # one redis-py refuses (e.g. redis://host:port with no number)
        return f"redis: unusable REDIS_URL ({exc})", None
    finally:
        await store.close()


def _benches(row: Row, status: ProviderStatus) -> None:
    """What the gateways last learned, from the shared store: a quota or key bench is a fact here too."""
    own = status.cooldown
    if own is None:
        row.quota = "not benched" if row.quota == "-" else row.quota
    elif status.recovering:
        row.quota = f"recovering ({own.reason})" if row.quota == "-" else row.quota
        row.warnings.append(f"its {own.reason} cooldown is over; the next request to reach it is the probe")
    else:
        row.quota = own.reason if row.quota == "-" else f"{row.quota}, {own.reason}"
        note = f"benched for {own.reason} until {_utc(own.until)}"
        (row.problems if own.reason in _OUT_REASONS else row.warnings).append(note)
    for model, cooldown in sorted(status.model_benches.items()):
        row.warnings.append(f"model {model} benched for {cooldown.reason} until {_utc(cooldown.until)}")


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
