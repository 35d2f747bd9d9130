"""Argon2id at OWASP's minimum parameters (19 MiB, t=2, p=1): about 50 ms here, against 350-450 ms for the
library's defaults (docs/decisions.md: tokens)."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
# Verified against when the account does not exist, so a login takes as long either way.
_DUMMY = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The hash was made with other parameters than today's: rehash it at the next successful login."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
