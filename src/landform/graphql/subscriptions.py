"""The graph's subscription: the live analytics stream, over the
``graphql-transport-ws`` protocol, authenticated as the REST live view."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import strawberry
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.types.graphql import OperationType

from graphql import GraphQLError
from landform.auth.errors import NotAuthenticated
from landform.core.errors import DomainError
from landform.graphql.errors import domain_graphql_error
from landform.graphql.types import Info, LiveViews, parse_id


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription asked over plain HTTP is refused with a code that
    says where to ask (it would otherwise fail as an internal error)."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        connection = getattr(execution.context, "connection", None)
        if execution.operation_type is OperationType.SUBSCRIPTION and not isinstance(
            connection, WebSocket
        ):
            raise GraphQLError(
                "subscriptions run over a WebSocket to /graphql (graphql-transport-ws); "
                "see docs/graphql.md",
                extensions={"code": "subscription_needs_websocket"},
            )
        yield


class ServerLeaving(Exception):
    """The worker is draining: the transport closes the socket with 1001
    (going away), as the REST live view does, so the client reconnects to
    another worker; ``complete`` would tell it the stream is over."""


class SubscriberTooSlow(GraphQLError):
    """The client fell ``LANDFORM_ANALYTICS_WS_QUEUE`` messages behind: the
    operation ends with an ``error`` message carrying this code."""

    def __init__(self) -> None:
        super().__init__(
            "too slow: live counts were dropped; subscribe again",
            extensions={"code": "subscriber_too_slow"},
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Views per second and current visitors, once a second; one page's "
        "when `pageId` is given. Authenticate with `connection_init` "
        '`{"access_token": …}`, `?access_token=` or an Authorization header.'
    )
    async def live_views(
        self, info: Info, page_id: strawberry.ID | None = None
    ) -> AsyncGenerator[LiveViews, None]:
        context = info.context
        analytics = context.services.analytics
        try:
            if not context.credential:
                raise NotAuthenticated("sign in: send an access token or API key")
            watched = await analytics.watch(
                context.credential, parse_id(page_id) if page_id is not None else None
            )
        except DomainError as exc:
            raise domain_graphql_error(exc) from exc
        try:
            while True:
                message = await watched.queue.get()
                if watched.ended:
                    raise ServerLeaving
                if watched.too_slow:
                    raise SubscriberTooSlow
                if message["type"] != "views":
                    return
                try:
                    await analytics.check_credential(watched)
                except DomainError as exc:
                    raise domain_graphql_error(exc) from exc
                yield LiveViews(
                    at=message["at"],
                    views_per_second=JSON(message["views_per_second"]),
                    total_views_per_second=message["total_views_per_second"],
                    current_visitors=message["current_visitors"],
                    note=message.get("note"),
                )
        finally:
            analytics.unwatch(watched)
