"""What a GraphQL operation runs with: the services, the caller (found
lazily, once per request, or per operation on a WebSocket), and the
request's DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from landform.auth.errors import NotAuthenticated
from landform.auth.service import AuthService, Principal
from landform.core.http import bearer_credential
from landform.graphql.loaders import Loaders

if TYPE_CHECKING:
    from landform.analytics.service import AnalyticsService
    from landform.core.proxies import ClientAddress
    from landform.files.service import FileService
    from landform.pages.service import PageService
    from landform.settings import Settings
    from landform.templates.service import TemplateCatalogue


@dataclass(frozen=True, slots=True)
class Services:
    """The services GraphQL resolvers call (the same the REST API uses)."""

    settings: Settings
    auth: AuthService
    pages: PageService
    templates: TemplateCatalogue
    files: FileService
    analytics: AnalyticsService
    client_address: ClientAddress
    # Takes a token of the ``auth`` rate-limit group for a client address
    # (sign-in through GraphQL spends what POST /auth/login does), or 429s.
    spend_auth_allowance: Callable[[str], Awaitable[None]]
    # Takes a token of the ``api`` group for a caller (``auth.caller_key``,
    # or ``ip:<address>``): an operation over a WebSocket spends what one
    # over HTTP does, or 429s.
    spend_api_allowance: Callable[[str], Awaitable[None]]


def request_credential(connection: HTTPConnection) -> str | None:
    """As REST takes it: ``Authorization: Bearer …`` or ``X-API-Key``; on a
    WebSocket also ``?access_token=`` (browsers cannot set headers there)."""
    return (
        bearer_credential(connection.headers.get("authorization", ""))
        or connection.headers.get("x-api-key")
        or connection.query_params.get("access_token")
    )


def init_credential(payload: Any) -> str | None:
    """From a ``connection_init`` payload: ``{"access_token": …}`` or
    ``{"Authorization": "Bearer …"}``."""
    if not isinstance(payload, dict):
        return None
    token = payload.get("access_token")
    if isinstance(token, str) and token:
        return token
    header = payload.get("Authorization") or payload.get("authorization")
    if isinstance(header, str):
        return bearer_credential(header) or None
    return None


@dataclass(eq=False)
class Context:
    services: Services
    connection: HTTPConnection
    response: Any
    credential: str | None
    connection_params: Any = None
    _principal: Principal | None = field(default=None, repr=False)
    # Whether the answer may be kept (graphql.answers): set as it runs.
    ran_as_query: bool = False
    answered_cleanly: bool = False
    # What a batch's operations have cost so far (None outside a batch): they
    # share one allowance, or aliases times operations would multiply it.
    batch_cost: int | None = None

    @property
    def client_ip(self) -> str:
        return self.services.client_address.of(self.connection.scope)

    async def principal(self) -> Principal:
        """The caller; NotAuthenticated when the request carries no valid
        credential."""
        if self._principal is None:
            if not self.credential:
                raise NotAuthenticated(
                    "sign in: send Authorization: Bearer <access token or API key>"
                )
            self._principal = await self.services.auth.authenticate(self.credential)
        return self._principal

    async def owner(self) -> uuid.UUID:
        return (await self.principal()).user_id

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(self.services, self.principal)


class SignInPerOperation(SchemaExtension):
    """A WebSocket carries many operations over hours, with one context:
    each operation signs in again (so a revoked API key or an expired token
    stops at the next one, not when the socket closes) and loads afresh
    (nothing an earlier operation read is served from the loaders)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and isinstance(context.connection, WebSocket):
            context._principal = None
            context.__dict__.pop("loaders", None)  # the cached_property
        yield
