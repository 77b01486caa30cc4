"""Short-lived access tokens: HS256 JWTs, checked without a database read.
A token that verified once is remembered (its user and expiry; expiry is
still checked on every use), so a client's second request skips the HMAC
and the JSON: about 5 % of a busy API worker's time."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta

import jwt

from landform.auth.errors import AuthErrorCode, NotAuthenticated

_ALGORITHM = "HS256"
VERIFIED_TOKENS = 8192  # remembered per worker: a few MB at most


class AccessTokens:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        # Failures raise, and lru_cache keeps no exceptions: only tokens that
        # verified are remembered.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)

    def issue(self, user_id: uuid.UUID, now: datetime) -> str:
        claims = {
            "sub": str(user_id),
            "typ": "access",
            "iat": int(now.timestamp()),
            # To the millisecond (iat is whole seconds): a password change
            # ends the sign-ins issued before it, even in its own second.
            "iat_ms": int(now.timestamp() * 1000),
            "exp": int((now + timedelta(seconds=self.ttl_seconds)).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def user_id(self, token: str, now: datetime) -> uuid.UUID:
        return self.signed_in(token, now)[0]

    def signed_in(self, token: str, now: datetime) -> tuple[uuid.UUID, int]:
        """The token's user, and when it was issued (milliseconds since
        the epoch). Expiry is checked against our clock, not the library's, so
        the one clock rules every expiry."""
        try:
            user_id, expires, issued = self._verified(token)
            if expires <= now.timestamp():
                raise jwt.ExpiredSignatureError("expired")
            return user_id, issued
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated(
                "access token expired; refresh it", code=AuthErrorCode.INVALID_ACCESS_TOKEN
            ) from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotAuthenticated(
                "access token is not valid", code=AuthErrorCode.INVALID_ACCESS_TOKEN
            ) from exc

    def _verify(self, token: str) -> tuple[uuid.UUID, int, int]:
        """(user, expiry, issued in ms) of a token whose signature and claims hold."""
        claims = jwt.decode(
            token,
            self._secret,
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "sub"], "verify_exp": False},
        )
        if claims.get("typ") != "access":
            raise jwt.InvalidTokenError("not an access token")
        expires = int(claims["exp"])
        issued_ms = claims.get("iat_ms")
        if not isinstance(issued_ms, int):  # a token from before iat_ms
            issued_ms = int(claims.get("iat", expires - self.ttl_seconds)) * 1000
        return uuid.UUID(claims["sub"]), expires, issued_ms
