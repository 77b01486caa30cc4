from __future__ import annotations

from enum import StrEnum

from landform.core.errors import (
    DomainError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)


class AuthErrorCode(StrEnum):
    WEAK_PASSWORD = "weak_password"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_ALREADY_USED = "token_already_used"
    INVALID_CREDENTIALS = "invalid_credentials"
    LOGIN_THROTTLED = "login_throttled"
    INVALID_REFRESH_TOKEN = "invalid_refresh_token"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    REFRESH_TOKEN_JUST_USED = "refresh_token_just_used"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_ACCESS_TOKEN = "invalid_access_token"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    API_KEY_NOT_FOUND = "api_key_not_found"
    ALREADY_VERIFIED = "already_verified"
    OPERATOR_ONLY = "operator_only"
    USER_NOT_FOUND = "user_not_found"
    ACCOUNT_CLOSED = "account_closed"
    SIGN_IN_REQUIRED = "sign_in_required"


class WeakPassword(ValidationFailed):
    code = AuthErrorCode.WEAK_PASSWORD


class BadEmailToken(DomainError):
    status = 400


class InvalidCredentials(Unauthorized):
    code = AuthErrorCode.INVALID_CREDENTIALS


class LoginThrottled(TooManyRequests):
    code = AuthErrorCode.LOGIN_THROTTLED


class BadRefreshToken(Unauthorized):
    code = AuthErrorCode.INVALID_REFRESH_TOKEN


class NotAuthenticated(Unauthorized):
    code = AuthErrorCode.NOT_AUTHENTICATED


class AccountClosed(Unauthorized):
    """A credential issued before its account was closed (an access token
    lives on for its lifetime): nothing may be written for it."""

    code = AuthErrorCode.ACCOUNT_CLOSED

    def __init__(self) -> None:
        super().__init__("this account no longer exists (it was closed)")


class EmailNotVerified(Forbidden):
    code = AuthErrorCode.EMAIL_NOT_VERIFIED


class ApiKeyNotFound(NotFound):
    code = AuthErrorCode.API_KEY_NOT_FOUND


class SignInRequired(Forbidden):
    """What only the account's owner, signed in, may do: not an API key."""

    code = AuthErrorCode.SIGN_IN_REQUIRED


class OperatorOnly(Forbidden):
    code = AuthErrorCode.OPERATOR_ONLY


class UserNotFound(NotFound):
    code = AuthErrorCode.USER_NOT_FOUND
