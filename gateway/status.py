"""A provider's state, computed in one place: the read-model behind /health, /metrics, the doctor and the CLI.

available      it serves
recovering     its cooldown ran out; the next request to reach it is the probe (it serves)
starting       its library (litellm) is still loading in the background; skipped until it has
cooldown       benched until `until`, for `reason`
misconfigured  no key set, or its key was rejected (an auth bench): an operator must act
unreachable    a last-resort provider (never benched) that nothing answered for at its last try or
               check; still tried, and checked again, but not counted as serving
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.errors import AttemptKind, FailureClass

if TYPE_CHECKING:
    from gateway.providers import Provider
    from gateway.store import Cooldown


_NONE: Mapping[str, str] = {}


class State(enum.StrEnum):
    AVAILABLE = "available"
    RECOVERING = "recovering"
    STARTING = "starting"
    COOLDOWN = "cooldown"
    MISCONFIGURED = "misconfigured"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    provider: Provider
    state: State
    reason: str | None  # the bench's reason, `missing_key`, or None when available
    remaining_s: float | None  # seconds of bench left; 0 when recovering; None when not benched
    until: float | None  # when the bench ends, while benched
    detail: str | None
    cooldown: Cooldown | None  # the provider's own bench or recovery, whatever its state says
    recovering: bool  # its cooldown is over and waits for a probe (also when a missing key outranks it)
    models: dict[str, Cooldown | None]  # per mapped model, its own bench if any
    model_benches: dict[str, Cooldown]  # every model bench of this provider, mapped or not (one set by hand)

    @classmethod
    def of(
        cls, provider: Provider, active: Mapping[str, Cooldown], now: float, unreachable: Mapping[str, str] = _NONE
    ) -> ProviderStatus:
        """The status from a view of the active cooldowns (a store's `active(now)`), and of the providers
        that could not be reached at their last try (name -> why)."""
        cooldown = active.get(provider.name)
        models = {model: active.get(f"{provider.name}/{model}") for model in provider.config.models}
        prefix = f"{provider.name}/"
        benches = {key.removeprefix(prefix): cd for key, cd in active.items() if key.startswith(prefix)}
        until = None
        if provider.key_problem is not None:
            state, reason, remaining = State.MISCONFIGURED, AttemptKind.INVALID_KEY.value, None
            detail: str | None = provider.key_problem
        elif provider.key is None:
            state, reason, remaining = State.MISCONFIGURED, AttemptKind.MISSING_KEY.value, None
            detail = f"set {provider.config.api_key_env}"
        elif provider.flavor.loads_in_background and (provider.flavor.loading() or provider.flavor.load_error()):
            failed = provider.flavor.load_error()
            state = State.MISCONFIGURED if failed else State.STARTING
            reason = (AttemptKind.LOAD_FAILED if failed else AttemptKind.STARTING).value
            remaining, detail = None, failed or "loading litellm in the background"
        elif cooldown is not None and cooldown.until > now:
            misconfigured = cooldown.reason in (FailureClass.AUTH, FailureClass.REDIRECTED)
            state = State.MISCONFIGURED if misconfigured else State.COOLDOWN
            reason, remaining, until = cooldown.reason, round(cooldown.remaining(now), 1), cooldown.until
            detail = cooldown.detail
        elif cooldown is not None:
            state, reason, remaining = State.RECOVERING, cooldown.reason, 0.0
            detail = "cooldown over; the next request to reach it is the probe"
        elif provider.name in unreachable:
            state, reason, remaining = State.UNREACHABLE, FailureClass.UNREACHABLE.value, None
            detail = f"{unreachable[provider.name]}; still tried, and checked again every few seconds"
        else:
            state, reason, remaining, detail = State.AVAILABLE, None, None, None
        recovering = cooldown is not None and cooldown.until <= now
        return cls(provider, state, reason, remaining, until, detail, cooldown, recovering, models, benches)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def serving(self) -> bool:
        # A recovering provider serves: the next request to reach it is its probe.
        return self.state is State.AVAILABLE or self.state is State.RECOVERING

    def as_dict(self, now: float) -> dict[str, Any]:
        """The /health entry."""
        entry: dict[str, Any] = {"name": self.name, "flavor": self.provider.config.flavor}
        if self.provider.config.last_resort:
            entry["last_resort"] = True
        entry.update(state=self.state.value, reason=self.reason, cooldown_remaining_s=self.remaining_s)
        if self.until is not None:
            entry["until"] = _iso(self.until)
        if self.detail is not None:
            entry["detail"] = self.detail
        entry["models"] = {model: _model_state(cd, now) for model, cd in self.models.items()}
        return entry


def statuses(
    providers: list[Provider], active: Mapping[str, Cooldown], now: float, unreachable: Mapping[str, str] = _NONE
) -> list[ProviderStatus]:
    return [ProviderStatus.of(provider, active, now, unreachable) for provider in providers]


def _model_state(cooldown: Cooldown | None, now: float) -> dict[str, Any]:
    if cooldown is None:
        return {"state": "available"}
    return {"state": "cooldown", "reason": cooldown.reason, "cooldown_remaining_s": round(cooldown.remaining(now), 1)}


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
