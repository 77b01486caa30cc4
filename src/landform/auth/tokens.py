"""Short-lived access tokens: HS256 JWTs, checked without a database read."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import jwt

from landform.auth.errors import AuthErrorCode, NotAuthenticated

_ALGORITHM = "HS256"


class AccessTokens:
    def __init__(self, secret: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: uuid.UUID, now: datetime) -> str:
        claims = {
            "sub": str(user_id),
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_seconds)).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def user_id(self, token: str, now: datetime) -> uuid.UUID:
        """The token's user. Expiry is checked against our clock, not the
        library's, so the one clock rules every expiry."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub"], "verify_exp": False},
            )
            if claims.get("typ") != "access":
                raise jwt.InvalidTokenError("not an access token")
            if int(claims["exp"]) <= now.timestamp():
                raise jwt.ExpiredSignatureError("expired")
            return uuid.UUID(claims["sub"])
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated(
                "access token expired; refresh it", code=AuthErrorCode.INVALID_ACCESS_TOKEN
            ) from exc
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotAuthenticated(
                "access token is not valid", code=AuthErrorCode.INVALID_ACCESS_TOKEN
            ) from exc
