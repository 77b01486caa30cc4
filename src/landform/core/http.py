"""HTTP plumbing shared by every domain's routes: the one error shape, the
error handlers that map every error to it, the body size limit, and the
client address."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landform.core.api_paths import visitors_path
from landform.core.body_deadlines import BodyDeadlines, BodyReadTimeout
from landform.core.db_failures import missing_from_schema
from landform.core.errors import DomainError, error_body, validation_details
from landform.core.storage_full import InsufficientStorage, storage_full

log = logging.getLogger(__name__)

# The tracking beacon is CORS-open: any origin may send one (no credentials
# go with it), and every answer to it, refusals included, is readable there.
BEACON_CORS = {"Access-Control-Allow-Origin": "*"}


class ErrorResponse(JSONResponse):
    """A JSON response serialized with orjson (errors carry arbitrary details)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> ErrorResponse:
    return ErrorResponse(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> ErrorResponse:
        return error_response(exc.status, str(exc.code), exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ErrorResponse:
        errors = list(exc.errors())
        path_error = any((e.get("loc") or ("",))[0] == "path" for e in errors)
        if path_error and _matching_methods(request, literal=True):
            # DELETE /files/usage met /files/{file_id}: "usage" is no id, it
            # is a path of its own, which answers other methods.
            return _method_not_allowed(request)
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(422, "malformed_json", "request body is not valid JSON")
        kind = _unread_media_type(request, errors)
        if kind:
            return error_response(
                415,
                "unsupported_media_type",
                f"send JSON (Content-Type: application/json), not {kind}",
            )
        if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
            return error_response(
                422,
                "validation_failed",
                "send a JSON body",
                [{"path": "", "message": "a JSON body is required"}],
            )
        details = validation_details(errors)
        first = details[0] if details else {"path": "", "message": "invalid"}
        where = f"{first['path']}: " if first["path"] else ""
        return error_response(422, "validation_failed", f"{where}{first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.__cause__, ClientDisconnect):  # FastAPI's, reading a JSON body
            return incomplete_body()
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's, decoding a JSON body
            return error_response(422, "malformed_json", "request body is not JSON in UTF-8")
        if isinstance(exc.__cause__, RecursionError):
            # FastAPI's answer to JSON nested past what the parser follows.
            return error_response(
                422, "malformed_json", "request body is not usable JSON: it nests too deeply"
            )
        if isinstance(exc.__cause__, ValueError):
            # Valid JSON Python will not read: an integer past its digit
            # limit (int_max_str_digits, 4,300 by default).
            return error_response(
                422,
                "malformed_json",
                "request body is not usable JSON: a number in it has more than 4,300 digits",
            )
        if isinstance(exc, BodyTooLarge):
            return error_response(413, exc.code, exc.detail, exc.details)
        if exc.status_code == 405:
            return _method_not_allowed(request)
        if exc.status_code == 404 and _visitor_lost(request):
            page: Response = request.app.state.not_found_page()
            return page
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> ErrorResponse:
        log.info("the client went away mid-request: %s %s", request.method, request.url.path)
        return incomplete_body()

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> ErrorResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "something went wrong on our side")

    # The errors a full disk raises (core/storage_full.py); any other of
    # these is still the 500 above.
    @app.exception_handler(OSError)
    @app.exception_handler(DBAPIError)
    async def _maybe_full(request: Request, exc: Exception) -> ErrorResponse:
        if isinstance(exc, DBAPIError) and missing_from_schema(exc):
            problem = await _schema_problem(request)
            if problem is not None:
                # Not migrated yet (a deploy whose `landform db upgrade` has
                # not run): said as /readyz says it, not as our failure.
                log.error("%s %s: %s", request.method, request.url.path, problem)
                return error_response(503, "not_ready", problem, headers={"Retry-After": "5"})
        if not storage_full(exc):
            return await _unexpected(request, exc)
        log.error("out of storage space: %s %s: %s", request.method, request.url.path, exc)
        full = InsufficientStorage(
            "the server has run out of storage space, and nothing of this request was kept; "
            "try again once there is room"
        )
        return await _domain(request, full)


def _visitor_lost(request: Request) -> bool:
    """A browser sent to an address no route answers that is no API path
    (a mistyped page: ``/spring_sale``, ``/spring/sale``): the visitors'
    404 page, not the API's JSON, when the app has one."""
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and visitors_path(request.url.path)
        and getattr(request.app.state, "not_found_page", None) is not None
    )


async def _schema_problem(request: Request) -> str | None:
    """What the schema check says of the database (None when it is fine or
    cannot be asked: the error is then the 500 it was)."""
    schema = getattr(request.app.state, "schema", None)
    if schema is None:
        return None
    try:
        problem: str | None = await schema.problem()
    except Exception:
        return None
    return problem


# The methods HTTP defines (RFC 9110 9.3, and PATCH).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def method_label(method: str) -> str:
    """A request's method as a measurement names it: any other token is
    ``OTHER`` (a client may send anything, each would be a series)."""
    return method if method in KNOWN_METHODS else "OTHER"


def incomplete_body() -> ErrorResponse:
    """The answer to a body that stopped short of its length: the client's
    doing, not a server error. It reaches a client that only stopped sending."""
    return error_response(400, "incomplete_body", "the request body ended before it was whole")


def _unread_media_type(request: Request, errors: list[Any]) -> str:
    """The Content-Type of a body FastAPI did not read as JSON because it
    was declared as something else (text/plain, a form), when the whole
    body is what failed; empty otherwise. Said as a 415, not as a 422 about
    a field the client never got to send."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return ""
    whole_body = any(
        tuple(error.get("loc", ())) == ("body",) and error.get("type") != "missing"
        for error in errors
    )
    if not whole_body:
        return ""
    return kind or "a body with no Content-Type"


@dataclass(frozen=True, slots=True)
class BodyCap:
    """A path's own limit on request bodies, and how passing it is said
    (by default as ``payload_too_large``)."""

    max_bytes: int
    code: str = "payload_too_large"
    message: str = ""
    details: object = None


def _method_not_allowed(request: Request) -> ErrorResponse:
    """405 naming every method the path answers (RFC 9110 15.5.6). Each
    route lists its own methods, and a path's GET and DELETE are two routes:
    Starlette's answer named only the first route's."""
    # A path of its own (/files/usage) answers its own methods, not those
    # of a route with a parameter its name also fits (/files/{file_id}).
    methods = _matching_methods(request, literal=True) or _matching_methods(request, literal=False)
    if "GET" in methods:
        methods.add("HEAD")  # answered as GET is (core/head_requests.py)
    allow = ", ".join(sorted(methods))
    return error_response(
        405, "method_not_allowed", f"use {allow or 'another method'}", headers={"Allow": allow}
    )


def _matching_methods(request: Request, *, literal: bool) -> set[str]:
    """The methods of the routes whose path matches the request's (only
    those without parameters when ``literal``)."""
    methods: set[str] = set()
    path = request.scope["path"]
    # FastAPI keeps included routers' routes inside them: this walks them all.
    for route in iter_route_contexts(request.app.router.routes):
        if not route.path or not route.methods or (literal and "{" in route.path):
            continue
        if compile_path(route.path)[0].match(path):
            methods |= route.methods
    return methods


class BodyTooLarge(StarletteHTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it
    # reads the body into a generic 400.
    def __init__(self, cap: BodyCap) -> None:
        super().__init__(413, cap.message or f"request body is larger than {cap.max_bytes} bytes")
        self.code = cap.code
        self.details = cap.details


class BodyTimedOut(StarletteHTTPException):
    # An HTTPException for the same reason as BodyTooLarge. The connection
    # is closed: the rest of the body may still be on its way.
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {seconds:.0f} seconds",
            headers={"Connection": "close"},
        )


def body_timed_out(seconds: float, headers: dict[str, str] | None = None) -> ErrorResponse:
    """The 408 for a layer that answers by itself (the beacon's)."""
    return error_response(
        408,
        "request_timeout",
        BodyTimedOut(seconds).detail,
        headers={"Connection": "close", **(headers or {})},
    )


class BodyLimit:
    """Refuse request bodies over a byte limit with 413 in the one error
    shape: at once when the declared Content-Length is too big, and as soon
    as a streamed (chunked) body passes the limit otherwise. A body that
    does not arrive in time (``core/body_deadlines.py``) is answered 408.

    (FastAPI's own ``max_body_size`` answers in plain text instead.)"""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        deadlines: BodyDeadlines,
        per_path: dict[str, BodyCap] | None = None,
    ) -> None:
        self.app = app
        self.default = BodyCap(max_bytes)
        self.deadlines = deadlines
        # Paths that take bigger bodies (uploads), with their own limit.
        self.per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.per_path.get(scope["path"], self.default)
        limit = cap.max_bytes
        declared = -1
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await send_error(
                        send, error_response(400, "bad_request", "Content-Length is not a number")
                    )
                    return
                declared = int(value)
                if declared > limit:
                    too_large = BodyTooLarge(cap)
                    await send_error(
                        send,
                        error_response(413, too_large.code, too_large.detail, too_large.details),
                    )
                    return
                break
        seen = 0
        given_up = False  # over the limit, or too slow: nothing more is read
        deadlines = self.deadlines
        # Set when the app first asks for the body, not before: the time the
        # route takes before it reads (authentication) is not the client's.
        started = deadline = 0.0
        whole = False

        async def limited_receive() -> Message:
            nonlocal seen, started, deadline, whole, given_up
            if whole:  # a wait for the client to go away, not for its body
                return await receive()
            if not deadline:
                started = time.monotonic()
                deadline = deadlines.deadline(max(declared, 0), started)
            try:
                message = await deadlines.within(receive(), deadline)
            except BodyReadTimeout:
                given_up = True
                raise BodyTimedOut(deadline - started) from None
            if message["type"] != "http.request":
                whole = True
                return message
            seen += len(message.get("body", b""))
            if seen > limit:
                given_up = True
                raise BodyTooLarge(cap)
            if not message.get("more_body", False):
                whole = True
            elif declared < 0 and seen > deadlines.bytes_per_timeout:
                # A chunked upload: more time for each byte that came, at
                # the same pace as a declared one.
                deadline = deadlines.deadline(seen, started)
            return message

        unsent = declared > 0 or (declared < 0 and _has_header(scope, b"transfer-encoding"))

        async def send_when_read(message: Message) -> None:
            # An answer before the body was read (an upload refused for its
            # credentials, or for its first bytes) waits until the rest is
            # read and dropped: granian ends the exchange once the answer is
            # sent, and a connection closed with bytes unread is reset by
            # the kernel, so a client still sending may never see the
            # answer (tens of concurrent refused uploads: most clients saw
            # a reset, not the 401). Bounded as any body is: by the route's
            # limit and the body deadline. A client waiting to be told to
            # send (Expect: 100-continue) and not told yet has sent nothing.
            if (
                unsent
                and not whole
                and not given_up
                and message["type"] == "http.response.start"
                and (seen or not _has_header(scope, b"expect"))
            ):
                with contextlib.suppress(BodyTooLarge, BodyTimedOut):
                    while not whole:
                        await limited_receive()
            await send(message)

        await self.app(scope, limited_receive, send_when_read)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(each == name for each, _ in scope["headers"])


async def send_error(send: Send, response: ErrorResponse) -> None:
    """Answer with an error response from a plain ASGI layer."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def bearer_credential(header: str) -> str:
    """The credential of an ``Authorization: Bearer …`` header, or ""."""
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def client_ip(request: Request) -> str:
    """The client's address, through trusted proxies when configured."""
    resolver = getattr(request.app.state, "client_address", None)
    if resolver is not None:
        address: str = resolver.of(request.scope)
        return address
    return request.client.host if request.client else "unknown"
