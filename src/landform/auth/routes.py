from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from landform.auth.deps import AuthServiceDep, PrincipalDep
from landform.auth.errors import AuthErrorCode
from landform.auth.models import User
from landform.auth.pages import CSP, EXPIRED_LINK, INCOMPLETE_LINK, confirm_page, result_page
from landform.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    CloseAccountIn,
    LoginIn,
    PasswordChangeIn,
    PasswordResetIn,
    PasswordResetRequestIn,
    RefreshIn,
    RegisterIn,
    ResendVerificationIn,
    TokenPair,
    UserPublic,
    VerifyEmailIn,
)
from landform.auth.service import Tokens
from landform.core.errors import DomainError
from landform.core.http import client_ip

# A mailed token is 43 characters; a link longer than this was mangled.
TOKEN_MAX = 512

router = APIRouter(tags=["auth"])


def _user(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        role=user.role,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


def _pair(tokens: Tokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post("/auth/register", status_code=201, response_model=UserPublic)
async def register(body: RegisterIn, service: AuthServiceDep) -> UserPublic:
    """Create an account and mail a verification link. Returns the account, never a token.

    An address that has an account already gets the same answer (an account
    as a new one looks, not stored), and its owner a mail saying someone
    tried: the answer does not tell who has an account."""
    return _user((await service.register(body.email, body.password)).account)


@router.post(
    "/auth/verify-email",
    response_model=UserPublic,
    responses={
        400: {"description": "`invalid_token` (unknown), `token_already_used` or `token_expired`"}
    },
)
async def verify_email(body: VerifyEmailIn, service: AuthServiceDep) -> UserPublic:
    return _user(await service.verify_email(body.token))


@router.get("/auth/verify-email", response_class=HTMLResponse, include_in_schema=False)
async def verify_email_page(token: str = "") -> HTMLResponse:
    """Where the mail's link lands: a page with a button that confirms."""
    headers = {"Content-Security-Policy": CSP}
    if not token.strip() or len(token) > TOKEN_MAX:  # a link cut short, or mangled
        return HTMLResponse(result_page(False, INCOMPLETE_LINK), status_code=400, headers=headers)
    return HTMLResponse(confirm_page(token), headers=headers)


@router.post("/auth/verify-email/confirm", response_class=HTMLResponse, include_in_schema=False)
async def verify_email_form(
    service: AuthServiceDep, token: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """The confirmation page's button. Every outcome is a page a person
    can act on, not the API's JSON."""
    headers = {"Content-Security-Policy": CSP}
    if not token.strip() or len(token) > TOKEN_MAX:
        return HTMLResponse(result_page(False, INCOMPLETE_LINK), status_code=400, headers=headers)
    try:
        await service.verify_email(token)
    except DomainError as exc:
        if exc.code == AuthErrorCode.TOKEN_ALREADY_USED:
            # Only confirming spends a confirmation link: this one did.
            already = "Your email address is confirmed already (this link was used before)."
            return HTMLResponse(result_page(True, already), headers=headers)
        message = EXPIRED_LINK if exc.code == AuthErrorCode.TOKEN_EXPIRED else exc.message
        return HTMLResponse(result_page(False, message), status_code=exc.status, headers=headers)
    return HTMLResponse(
        result_page(True, "Your email address is confirmed. You can publish your pages now."),
        headers=headers,
    )


@router.post(
    "/auth/resend-verification",
    status_code=202,
)
async def resend_verification(
    body: ResendVerificationIn, service: AuthServiceDep
) -> dict[str, str]:
    """Always 202, whether or not the address has an account."""
    await service.resend_verification(body.email)
    return {"status": "accepted"}


@router.post(
    "/auth/login",
    response_model=TokenPair,
    responses={
        401: {"description": "`invalid_credentials`"},
        429: {"description": "`login_throttled`: too many failed logins"},
    },
)
async def login(body: LoginIn, request: Request, service: AuthServiceDep) -> TokenPair:
    return _pair(await service.login(body.email, body.password, client_ip(request)))


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses={
        401: {
            "description": "`invalid_refresh_token`; `refresh_token_reused` (used before: "
            "this login is ended everywhere); `refresh_token_just_used` (used within 10 s: "
            "refused, nothing ended)"
        }
    },
)
async def refresh(body: RefreshIn, service: AuthServiceDep) -> TokenPair:
    return _pair(await service.refresh(body.refresh_token))


@router.post(
    "/auth/password",
    response_model=TokenPair,
    responses={
        401: {"description": "`invalid_credentials`: the current password is wrong"},
        403: {"description": "`sign_in_required`: not with an API key"},
        422: {"description": "`weak_password`"},
        429: {"description": "`login_throttled`: too many wrong passwords"},
    },
)
async def change_password(
    body: PasswordChangeIn, request: Request, principal: PrincipalDep, service: AuthServiceDep
) -> TokenPair:
    """Set a new password, given the current one. Every login of the
    account ends (a thief's too); the answer is a new one for this client."""
    return _pair(
        await service.change_password(
            principal, body.current_password, body.new_password, client_ip(request)
        )
    )


@router.post("/auth/forgot-password", status_code=202)
async def forgot_password(body: PasswordResetRequestIn, service: AuthServiceDep) -> dict[str, str]:
    """Mail a token to set a new password. Always 202, whether or not the
    address has an account (at most one mail a minute per address)."""
    await service.request_password_reset(body.email)
    return {"status": "accepted"}


@router.post(
    "/auth/reset-password",
    status_code=204,
    responses={
        400: {"description": "`invalid_token`, `token_already_used` or `token_expired`"},
        422: {"description": "`weak_password`"},
    },
)
async def reset_password(body: PasswordResetIn, service: AuthServiceDep) -> Response:
    """Set a new password with the mailed token. Every login of the account
    ends; sign in with the new password."""
    await service.reset_password(body.token, body.new_password)
    return Response(status_code=204)


@router.post("/auth/logout", status_code=204)
async def logout(body: RefreshIn, service: AuthServiceDep) -> Response:
    """Revoke the refresh token's whole family (this login on every device it reached)."""
    await service.logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/auth/me", response_model=UserPublic)
async def me(principal: PrincipalDep, service: AuthServiceDep) -> UserPublic:
    return _user(await service.me(principal))


@router.delete("/auth/me", status_code=204)
async def close_account(
    body: CloseAccountIn, request: Request, principal: PrincipalDep, service: AuthServiceDep
) -> Response:
    """Close the account: its pages (live ones go offline), files,
    analytics, API keys and sessions are deleted. Needs the password again
    (wrong ones count toward the login throttle: 429 `login_throttled`)."""
    await service.close_account(principal, body.password, client_ip(request))
    return Response(status_code=204)


@router.post(
    "/auth/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    responses={403: {"description": "`sign_in_required`: an API key cannot make API keys"}},
)
async def create_api_key(
    body: ApiKeyCreate, principal: PrincipalDep, service: AuthServiceDep
) -> ApiKeyCreated:
    """A new API key, shown once. Made signed in (an access token), not
    with another key: a leaked key revoked leaves no key it made behind."""
    key, secret = await service.create_api_key(principal, body.name)
    return ApiKeyCreated.model_validate(
        {**ApiKeyPublic.model_validate(key).model_dump(), "key": secret}
    )


@router.get("/auth/api-keys", response_model=list[ApiKeyPublic])
async def list_api_keys(principal: PrincipalDep, service: AuthServiceDep) -> list[ApiKeyPublic]:
    return [ApiKeyPublic.model_validate(k) for k in await service.list_api_keys(principal)]


@router.delete("/auth/api-keys/{key_id}", status_code=204)
async def revoke_api_key(
    key_id: uuid.UUID, principal: PrincipalDep, service: AuthServiceDep
) -> Response:
    await service.revoke_api_key(principal, key_id)
    return Response(status_code=204)
