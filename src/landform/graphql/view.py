"""``/graphql`` over HTTP (GET and POST, batches of operations) and over
WebSocket (``graphql-transport-ws``, for the subscription)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, Message
from strawberry.types import ExecutionResult

from graphql import GraphQLError, GraphQLSyntaxError
from landform.core.errors import DomainError, error_body
from landform.graphql.answers import AnswerCache, Lookup
from landform.graphql.context import Context, Services, init_credential, request_credential
from landform.graphql.errors import domain_graphql_error, formatted
from landform.graphql.subscriptions import ServerLeaving, SubscriberTooSlow

# Transport failures (not GraphQL results) in the API's one error shape.
_HTTP_CODES = {400: "bad_graphql_request", 404: "not_found", 405: "method_not_allowed"}


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws``, with errors as the HTTP transport gives
    them (errors.formatted: every one with its code; unexpected ones masked)
    rather than as the engine formats them."""

    async def handle_message(self, message: Any) -> None:
        # Strawberry indexes a message, and a subscribe's payload, as
        # objects: ``null`` or a list raised a TypeError that ended the
        # socket with no close code. The protocol's answer is 4400.
        subscribe = isinstance(message, dict) and message.get("type") == "subscribe"
        if not isinstance(message, dict) or (
            subscribe
            and not (
                isinstance(message.get("payload"), dict) and isinstance(message.get("id"), str)
            )
        ):
            await self.handle_invalid_message("Failed to parse message")
            return
        if subscribe and self.connection_acknowledged and message["id"] not in self.operations:
            # Refused as an ``error`` of this operation; the socket and its
            # other operations (a live stream) stay.
            refusal = _bad_payload(message["payload"]) or await self._over_the_limit()
            if refusal is not None:
                error: ErrorMessage = {
                    "id": message["id"],
                    "type": "error",
                    "payload": [cast("Any", formatted(refusal))],
                }
                await self.send_message(error)
                return
        await super().handle_message(cast("Message", message))

    async def _over_the_limit(self) -> GraphQLError | None:
        """An operation over the socket spends the caller's ``api``
        allowance, as one over HTTP does: else one socket could send any
        number of them."""
        context = self.context
        caller = context.services.auth.caller_key(context.credential or "")
        try:
            await context.services.spend_api_allowance(caller or "ip:" + context.client_ip)
        except DomainError as exc:
            return domain_graphql_error(exc)
        return None

    async def _handle_pre_execution_error(self, operation: Any, result: Any) -> None:
        """Every refusal before the operation runs is that operation's
        ``error`` (Strawberry closes the whole socket, 4400, for a query
        that does not parse or an operation name the document lacks, and
        its live streams with it)."""
        await operation.send_initial_errors(_with_codes(result.errors))

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        async def coded() -> AsyncGenerator[Any, None]:
            try:
                async for result in result_source:
                    errors = getattr(result, "errors", None) or []
                    if any(isinstance(e.original_error, ServerLeaving) for e in errors):
                        # Not ``complete``: the client is to reconnect.
                        await self.websocket.close(code=1001, reason="server restarting: reconnect")
                        self.operations.pop(operation.id, None)
                        raise _OperationStreamClosed
                    too_slow: list[GraphQLError] = [
                        e for e in errors if isinstance(e, SubscriberTooSlow)
                    ]
                    if too_slow:
                        # ``error`` ends the operation as failed; the socket
                        # and its other operations stay.
                        await operation.send_initial_errors(_with_codes(too_slow))
                        return
                    _with_codes(errors)
                    yield result
            except GraphQLSyntaxError as error:
                # The engine raises this one (from the parser cache) instead
                # of answering it: answered here, as an operation's error.
                await operation.send_initial_errors(_with_codes([error]))

        await super()._send_result_stream(operation, coded())


# A subscribe payload's fields: the types each may have, and how to say so.
_PAYLOAD_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "query": ((str,), "a string"),
    "variables": ((dict, type(None)), "an object or null"),
    "operationName": ((str, type(None)), "a string or null"),
    "extensions": ((dict, type(None)), "an object or null"),
}


def _bad_payload(payload: dict[str, Any]) -> GraphQLError | None:
    """What the HTTP transport answers 400 for, as an operation's error:
    fields of the wrong type (Strawberry would fail on them as it runs,
    answer a bare ``complete`` and log a traceback)."""
    if "query" not in payload:
        message = "send the operation's query (persisted queries are for HTTP)"
        return GraphQLError(message, extensions={"code": "bad_graphql_request"})
    for name, (types, said) in _PAYLOAD_FIELDS.items():
        if not isinstance(payload.get(name), types):
            message = f"the operation's `{name}` must be {said}"
            return GraphQLError(message, extensions={"code": "bad_graphql_request"})
    return None


def _with_codes(errors: list[GraphQLError]) -> list[GraphQLError]:
    for error in errors:
        body = formatted(error)
        error.message, error.extensions = body["message"], body["extensions"]
    return errors


class TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages as text frames, as the protocol has
    them: the view encodes JSON to bytes (for HTTP), which strawberry would
    send as binary frames, and a browser hands those to graphql-ws as a Blob
    it cannot parse (it closes with 4400)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    websocket_adapter_class = TextFrames

    def __init__(self, schema: BaseSchema, services: Services, answers: AnswerCache) -> None:
        production = services.settings.env == "production"
        super().__init__(
            schema,
            graphql_ide=None if production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            # Browser apps on the origins allowed to call the API may
            # subscribe too (same-origin pages and non-browsers always may).
            allowed_origins=services.settings.cors_origins,
        )
        self.services = services
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope = _media_type_lowered(scope)
        try:
            response = await self._answer(Request(scope, receive))
        except HTTPException as exc:
            code = _HTTP_CODES.get(exc.status_code, "bad_graphql_request")
            response = _error_response(exc.status_code, code, exc.reason)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        """A kept answer when it is still current (graphql.answers);
        otherwise the operation runs, and its answer is kept if it may be."""
        lookup = await self._lookup(request)
        if lookup is not None and lookup.answer is not None:
            return Response(lookup.answer, media_type="application/json")
        request.state.answer_lookup = lookup
        response = await self.run(request)
        context: Context | None = getattr(request.state, "graphql_context", None)
        if (
            lookup is not None
            and context is not None
            and context.ran_as_query
            and context.answered_cleanly
            and response.status_code == 200
        ):
            self.answers.keep(lookup, bytes(response.body))
        return response

    async def _lookup(self, request: Request) -> Lookup | None:
        credential = request_credential(request)
        if not self.answers.enabled or not credential:
            return None
        json_post = request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/json"
        )
        if request.method != "GET" and not json_post:
            return None
        try:
            principal = await self.services.auth.authenticate(credential)
        except DomainError:
            return None  # the operation runs and answers why
        body = await request.body() if request.method == "POST" else b""
        return await self.answers.lookup(request, body, principal)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        """A batch runs its operations one after another, in order (as a
        mutation runs its fields): later ones see earlier writes, and each
        login attempt meets the throttle as counted so far."""
        if not isinstance(request_data, list):
            result = await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
            context.answered_cleanly = isinstance(result, ExecutionResult) and not result.errors
            return result
        context.batch_cost = 0
        return [
            await self.execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=data,
            )
            for data in request_data
        ]

    def should_render_graphql_ide(self, request: Any) -> bool:
        """GraphiQL for a browser opening /graphql; not for a GET that asks
        something (an operation by its persisted hash carries only
        ``extensions``), whatever its Accept says (curl's is ``*/*``)."""
        params = request.query_params
        asks = params.get("query") is not None or params.get("extensions") is not None
        return not asks and super().should_render_graphql_ide(request)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        lookup: Lookup | None = getattr(request.state, "answer_lookup", None)
        context = Context(
            services=self.services,
            connection=request,
            response=response,
            credential=request_credential(request),
            # Found already while looking for a kept answer.
            _principal=lookup.principal if lookup is not None else None,
        )
        request.state.graphql_context = context
        return context

    async def on_ws_connect(self, context: Context) -> None:
        """Refuse the connection (4403) without a valid credential, from the
        ``connection_init`` payload or the handshake."""
        context.credential = init_credential(context.connection_params) or context.credential
        try:
            await context.principal()
        except DomainError as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from exc

    async def process_result(
        self, request: Request | WebSocket, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {}
        # An operation refused before it ran (it does not parse, fails
        # validation or a limit) has no data entry at all; one that ran has
        # one, null when a failed field took all of it (GraphQL spec, 7.1).
        # Only a field's error has a path.
        if result.data is not None or not _refused_before_running(result.errors):
            response["data"] = result.data
        if result.errors:
            response["errors"] = [formatted(error) for error in result.errors]
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def decode_json(self, data: str | bytes) -> object:
        """orjson: faster, and its nesting limit turns a hostile body into
        a 400 (a JSONDecodeError) instead of a RecursionError. UTF-16 and
        UTF-32 bodies, and UTF-8 with a byte order mark, are read as the
        REST API reads them (Python's JSON reader tells them by their
        first bytes); orjson reads UTF-8 alone."""
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            if isinstance(data, str) or (encoding := json.detect_encoding(data)) == "utf-8":
                raise
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                raise orjson.JSONDecodeError("not valid " + encoding, "", 0) from None
            return orjson.loads(text)

    def parse_json(self, data: str | bytes) -> Any:
        """A body, or a GET's variables or extensions: an object, or (a
        batch) an array of objects."""
        try:
            parsed = super().parse_json(data)
        except HTTPException as exc:
            # The parser's reason says where ("unexpected end of data: line
            # 1 column 6"), and names a lone surrogate for what it is.
            reason = f" ({exc.__cause__})" if exc.__cause__ else ""
            raise HTTPException(
                400, f"not valid JSON{reason}: the body, or a GET's `variables` or `extensions`"
            ) from exc
        if not isinstance(parsed, dict) and not (
            isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed)
        ):
            raise HTTPException(
                400, "expected a JSON object (an operation), or a batch: an array of operations"
            )
        return parsed

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry checks the fields of one operation; those of a
        batch's operations are checked here, each field of its type."""
        parsed = await super().parse_http_body(request)
        if not isinstance(parsed, list):
            return parsed
        if not parsed:
            raise HTTPException(400, "a batch is a non-empty array of operations (objects)")
        for position, operation in enumerate(parsed):
            for name, value, kind in (
                ("query", operation.query, str),
                ("operationName", operation.operation_name, str),
                ("variables", operation.variables, dict),
                ("extensions", operation.extensions, dict),
            ):
                if value is not None and not isinstance(value, kind):
                    article = "a string" if kind is str else "an object"
                    raise HTTPException(
                        400, f"operation {position}: `{name}` must be {article} or null"
                    )
        return parsed

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def _media_type_lowered(scope: Scope) -> Scope:
    """The request with its Content-Type's media type in lower case: media
    types are case-insensitive (RFC 9110 8.3.1), and Strawberry compares
    them as written."""
    headers = scope["headers"]
    for index, (name, value) in enumerate(headers):
        if name == b"content-type":
            media_type, separator, parameters = value.partition(b";")
            lowered = media_type.lower()
            if lowered != media_type:
                headers = [*headers]
                headers[index] = (name, lowered + separator + parameters)
                return {**scope, "headers": headers}
            break
    return scope


def _error_response(status: int, code: str, message: str) -> Response:
    return Response(
        orjson.dumps(error_body(code, message)),
        status_code=status,
        media_type="application/json",
    )


def _refused_before_running(errors: list[GraphQLError] | None) -> bool:
    return bool(errors) and all(error.path is None for error in errors or ())
