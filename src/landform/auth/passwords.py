"""Password hashing (argon2id, m = 19 MiB, t = 2: OWASP's minimum) and the
password policy. Hashing takes tens of milliseconds, so it runs in a thread
to keep the event loop serving other requests."""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 128

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the account does not exist, so a wrong email and a
# wrong password take the same time.
_DUMMY_HASH = _hasher.hash("landform-dummy-password")

# The most common passwords of public breach corpora that are long enough to
# pass the length rule; a full list would belong in a data file.
_COMMON = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou123",
        "passw0rd123",
        "administrator",
        "letmein1234",
        "welcome123",
        "qwerty12345",
        "abc1234567",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "password!!",
        "changeme123",
        "football123",
        "baseball123",
        "superman123",
        "trustno1234",
        "monkey12345",
        "dragon12345",
        "sunshine123",
        "princess123",
    }
)


def password_problems(password: str, email: str) -> list[str]:
    """What is wrong with a password, in words a user can act on."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if len(set(password)) < 4:
        problems.append("must use at least 4 different characters")
    if password.lower() in _COMMON:
        problems.append("is one of the most common passwords")
    lowered = password.lower()
    local = email.split("@", 1)[0].lower()
    if email.lower() in lowered:
        problems.append("must not contain your email address")
    elif len(local) >= 4 and local in lowered:
        problems.append(f"must not contain the name in your email address ('{local}')")
    return problems


def _comparable(password: str) -> str:
    """The same password however it was typed: "é" is one code point on one
    keyboard and "e" with a combining accent on another, and a full-width
    "Ａ" is an "A" (NFKC, as NIST SP 800-63B advises)."""
    return unicodedata.normalize("NFKC", password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, _comparable(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _matches(candidate: str) -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, candidate) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    def _verify() -> bool:
        comparable = _comparable(password)
        # A hash made before passwords were normalized is of the text as
        # typed then.
        return _matches(comparable) or (comparable != password and _matches(password))

    return await asyncio.to_thread(_verify)
