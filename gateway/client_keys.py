"""Gateway keys: who may use the gateway, checked before anything else happens to a request.

The config lists SHA-256 digests (`sha256:<hex>`), never keys, so the file can be shared and
committed. The check hashes whatever bytes the client sent (a non-ASCII or huge header is just a
wrong key, never an error) and compares against every listed digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gateway.settings import Budget, ClientKeyConfig, RateLimits, bare_key_name

_MAX_KEY_BYTES = 512


def digest(key: str | bytes) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def new_key() -> str:
    return "sk-gw-" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True, eq=False)
class ClientKey:
    """One listed gateway key: who the caller is, whose spend it is, and its limits."""

    name: str
    digest: str
    project: str = "default"
    budget: Budget | None = None
    rate_limits: RateLimits | None = None

    @classmethod
    def from_config(cls, entry: str | ClientKeyConfig) -> ClientKey:
        if isinstance(entry, ClientKeyConfig):
            return cls(entry.name, entry.key, entry.project, entry.budget, entry.rate_limits)
        return cls(bare_key_name(entry), entry)


class ClientKeys:
    def __init__(self, entries: list[str | ClientKeyConfig]) -> None:
        keys = [ClientKey.from_config(entry) for entry in entries]
        self._entries = [(key.digest.encode(), key) for key in keys]
        self.by_name = {key.name: key for key in keys}

    def identify(self, authorization: bytes | None) -> ClientKey | None:
        """The listed key an `Authorization` header value carries; None when it carries none."""
        if not authorization or len(authorization) > _MAX_KEY_BYTES + 7:
            return None
        scheme, _, key = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not key:
            return None
        candidate = digest(key.strip()).encode()
        found = None
        for known, entry in self._entries:  # no early exit: the time taken says nothing about the list
            if hmac.compare_digest(candidate, known):
                found = entry
        return found
