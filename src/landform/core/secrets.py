"""Random tokens and their stored form. High-entropy tokens (≥ 256 bits) are
stored as SHA-256 digests: a leaked table gives no usable token, and lookup
by digest stays an index hit (a slow password hash is only for passwords)."""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,200}$")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    return bool(_TOKEN_SHAPE.match(token))
