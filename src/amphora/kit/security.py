"""Password hashing (argon2) and opaque random tokens that are stored only as hashes."""

from __future__ import annotations

import functools
import hashlib
import secrets

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not reveal which
    emails exist. Made on first use: an argon2 hash at import would slow every start-up."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow: keep it off the event loop.
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    def _verify() -> bool:
        return (
            _hasher.verify(password, password_hash or _dummy_hash()) and password_hash is not None
        )

    return await anyio.to_thread.run_sync(_verify)


def new_token(prefix: str) -> str:
    """A URL-safe secret with a readable prefix (e.g. ``amp_pat_…``) for secret scanners."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Tokens are 256-bit random values, so a plain SHA-256 is a safe lookup key."""
    return hashlib.sha256(token.encode()).hexdigest()
