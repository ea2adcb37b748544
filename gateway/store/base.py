"""The cooldown store contract: which provider (or provider/model) is benched, why, and until when.

Two implementations keep it: `memory.MemoryStore` (one process) and `cooldowns.RedisCooldowns`
(shared by every replica, behind the same in-process view). The contract, tested against both
(tests/test_store_contract.py):

- `get` and `active` read the local view and never do I/O, so the hot path pays no round trip;
- `set`, `clear` and `replace` change the local view at once; a shared store writes them through
  in the background, and Redis trouble never fails or slows the call;
- a cooldown is benched while `until > now`, recovering while `until <= now < probe_until`, and
  gone after both;
- `claim_probe` lets one caller (one across all replicas, with a shared store) send the probe to
  a recovering provider, until it calls `release_probe` or `ttl_s` passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# An operator's reason for a bench is shown to clients and in /health: a short word or phrase.
OPERATOR_REASON = re.compile(r"[A-Za-z0-9 _.:/-]{1,64}")


@dataclass(frozen=True, slots=True)
class Cooldown:
    reason: str  # a FailureClass value, or an operator's word ("manual", "maintenance")
    detail: str  # short, redacted
    since: float  # epoch seconds
    until: float  # epoch seconds
    probe_until: float = 0.0  # after `until` and up to this, one probe request must succeed first

    def remaining(self, now: float) -> float:
        return max(0.0, self.until - now)

    @property
    def expires(self) -> float:
        return max(self.until, self.probe_until)


class CooldownStore(Protocol):
    backend: str
    on_cleared: Callable[[str], None]  # a cooldown this replica held was cleared elsewhere

    def get(self, key: str, now: float) -> Cooldown | None:
        """The key's cooldown, benched (`until > now`) or recovering; None when neither."""
        ...

    def active(self, now: float) -> dict[str, Cooldown]:
        """Every cooldown not yet expired, benched or recovering."""
        ...

    def set(self, key: str, cooldown: Cooldown) -> None:
        """A failure's bench. The caller never shortens a longer one; a shared store enforces that too."""
        ...

    def clear(self, key: str) -> None: ...

    def replace(self, key: str, cooldown: Cooldown) -> None:
        """An operator's word: this cooldown, shorter or longer than the one it replaces."""
        ...

    async def claim_probe(self, key: str, ttl_s: float) -> bool:
        """Win the right to send the one probe request to a recovering provider, for `ttl_s` at most."""
        ...

    def release_probe(self, key: str) -> None: ...

    def status(self) -> dict[str, Any]:
        """For /health: `backend`, `state`, and what else the store can say of itself."""
        ...

    async def start(self) -> None: ...

    async def synced(self, timeout_s: float) -> None:
        """Return once the view holds what the shared store held at start (at most `timeout_s`)."""
        ...

    async def close(self) -> None: ...
