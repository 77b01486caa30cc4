"""FastAPI dependencies: the auth service, and the calling principal from
``Authorization: Bearer <access token or API key>`` or ``X-API-Key``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from landform.auth.errors import NotAuthenticated
from landform.auth.service import AuthService, Principal
from landform.core.errors import DomainError

_bearer = HTTPBearer(auto_error=False, description="An access token or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


async def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


async def current_principal(
    service: Annotated[AuthService, Depends(auth_service)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    credential = bearer.credentials if bearer else api_key
    if not credential:
        raise NotAuthenticated(
            "sign in: send Authorization: Bearer <access token or API key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        return await service.authenticate(credential)
    except DomainError as exc:
        if exc.status == 401:
            # RFC 6750 3: a credential refused says so, as a missing one does.
            exc.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
        raise


AuthServiceDep = Annotated[AuthService, Depends(auth_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
