"""FastAPI dependencies: the auth service, and the calling principal from
``Authorization: Bearer <access token or API key>`` or ``X-API-Key``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

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


def signed_in_only(routes: Sequence[BaseRoute]) -> Callable[[Scope], bool]:
    """Whether a request goes to one of ``routes`` (a router's, as declared:
    FastAPI keeps an included router's routes behind a wrapper) that needs
    a credential, one that depends on ``current_principal``: for layers
    that run before the route, and must not answer for it a request it
    refuses anyway."""
    known: dict[int, bool] = {}

    def needs_credential(scope: Scope) -> bool:
        for route in routes:
            if isinstance(route, APIRoute) and route.matches(scope)[0] is Match.FULL:
                if id(route) not in known:
                    known[id(route)] = _depends_on_principal(route.dependant)
                return known[id(route)]
        return False

    return needs_credential


def _depends_on_principal(dependant: Dependant) -> bool:
    return any(
        each.call is current_principal or _depends_on_principal(each)
        for each in dependant.dependencies
    )
