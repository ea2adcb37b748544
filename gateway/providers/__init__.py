"""The flavor registry: one module per flavor in this package, found at import.

A module that defines `FLAVOR` (an instance of a `Flavor` subclass) adds that flavor: nothing else
needs editing for the config to accept it, the router to send it what its capabilities allow, and
`gateway doctor` to check its key shape and balance.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from gateway.providers.base import Balance, Capability, Flavor, Provider

if TYPE_CHECKING:
    from gateway.settings import Config
    from gateway.transport import Transports


def _discover() -> dict[str, Flavor]:
    found: dict[str, Flavor] = {}
    for module in pkgutil.iter_modules(__path__):
        flavor = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FLAVOR", None)
        if isinstance(flavor, Flavor):
            if flavor.name in found:
                raise RuntimeError(f"two provider modules define the flavor {flavor.name!r}")
            found[flavor.name] = flavor
    return found


FLAVORS: dict[str, Flavor] = _discover()


def configure(config: Config, transports: Transports) -> list[Provider]:
    """The config's providers in its order, each with its key (from the environment) and its transport."""
    providers = []
    for entry in config.providers:
        flavor = FLAVORS[entry.flavor]
        flavor.prepare()
        providers.append(Provider(entry, flavor, config.api_key(entry), transports.for_flavor(flavor)))
    return providers


__all__ = ["FLAVORS", "Balance", "Capability", "Flavor", "Provider", "configure"]
