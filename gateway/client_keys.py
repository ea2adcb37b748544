"""Gateway keys: who may use the gateway, checked before anything else happens to a request.

The config lists SHA-256 digests (`sha256:<hex>`), never keys, so the file can be shared and
committed. The check hashes whatever bytes the client sent (a non-ASCII or huge header is just a
wrong key, never an error) and compares against every listed digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_MAX_KEY_BYTES = 512


def digest(key: str | bytes) -> str:
    raw = key.encode() if isinstance(key, str) else key
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def new_key() -> str:
    return "sk-gw-" + secrets.token_urlsafe(32)


class ClientKeys:
    def __init__(self, digests: list[str]) -> None:
        self._digests = [d.encode() for d in digests]

    def allows(self, authorization: bytes | None) -> bool:
        """Whether an `Authorization` header value carries a listed key."""
        if not authorization or len(authorization) > _MAX_KEY_BYTES + 7:
            return False
        scheme, _, key = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not key:
            return False
        candidate = digest(key.strip()).encode()
        allowed = False
        for known in self._digests:  # no early exit: the time taken says nothing about the list
            allowed |= hmac.compare_digest(candidate, known)
        return allowed
