"""The tracking endpoints as a lean ASGI layer in front of the API, like the
public pages: ``POST /analytics/track-view`` and ``POST
/analytics/track-event``, CORS-open (any origin, no credentials), with the
beacon's ``text/plain`` bodies as well as JSON. Answers 202 with no body."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from landform.analytics.classify import country_code
from landform.analytics.events import EVENT, VIEW
from landform.analytics.tracker import Tracker
from landform.core.body_deadlines import BodyDeadlines, BodyReadTimeout
from landform.core.errors import DomainError
from landform.core.http import (
    BEACON_CORS,
    ErrorResponse,
    body_timed_out,
    error_response,
    incomplete_body,
    send_error,
)
from landform.core.proxies import ClientAddress
from landform.core.rate_limits import Observe
from landform.core.rsgi import Fallback, read_body, text_headers
from landform.core.rsgi import send_error as send_rsgi_error
from landform.core.storage_full import storage_full

log = logging.getLogger(__name__)

PATHS = {"/analytics/track-view": VIEW, "/analytics/track-event": EVENT}
# How they are named in the latency measurements.
ROUTES = {("POST", path): f"route:POST {path}" for path in PATHS}

_CORS = [(name.lower().encode(), value.encode()) for name, value in BEACON_CORS.items()]
_ACCEPTED = [*_CORS, (b"content-length", b"0"), (b"cache-control", b"no-store")]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]
_CONTENT_TYPES = (b"application/json", b"text/plain", b"")
# The same, for the native (RSGI) handler: headers there are text.
_ACCEPTED_TEXT = text_headers(_ACCEPTED)
_CONTENT_TYPES_TEXT = tuple(kind.decode() for kind in _CONTENT_TYPES)


class Tracking:
    def __init__(
        self,
        app: ASGIApp,
        tracker: Tracker,
        client_address: ClientAddress,
        max_body_bytes: int,
        deadlines: BodyDeadlines,
        country_header: str = "",
        observe: Observe | None = None,
    ) -> None:
        self.app = app
        self.tracker = tracker
        self.client_address = client_address
        self.max_body_bytes = max_body_bytes
        self.deadlines = deadlines
        self.country_header = country_header.lower().encode()
        # Told each beacon's route, time (µs) and whether it failed (ops/):
        # timed here, like page views, as a wrapping layer would cost more.
        self.observe = observe or (lambda _route, _micros, _failed: None)
        # For the native handler (set by the app): takes a client address's
        # tracking token without I/O (True), or says it cannot (False or
        # None: the ASGI layers then decide). Unset, all goes through them.
        self.admit: Callable[[str], bool | None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        status = await self._handle(kind, scope, receive, send)
        route = ROUTES.get((scope["method"], scope["path"]))
        if route is not None:
            self.observe(route, (time.perf_counter_ns() - started) // 1000, status >= 500)

    async def _handle(self, kind: str, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer one tracking request; its status."""
        method = scope["method"]
        if method == "OPTIONS":
            await _respond(send, 204, _PREFLIGHT, b"")
            return 204
        if method != "POST":
            await _error(send, 405, "method_not_allowed", "use POST", {"Allow": "POST, OPTIONS"})
            return 405
        user_agent = ""
        country = ""
        content_type = b""
        declared = -1
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif self.country_header and name == self.country_header:
                country = country_code(value.decode("latin-1"))
        if content_type not in _CONTENT_TYPES:
            await _error(send, 415, "unsupported_media_type", "send JSON or text/plain")
            return 415
        if declared > self.max_body_bytes:
            await _error(send, 413, "payload_too_large", self._too_large)
            return 413
        body = b""
        more = True
        # No timer: a wait for the body is only registered with the worker's
        # sweeper (core/body_deadlines.py), ~1 us. Once every declared byte
        # is in, what is left to receive (granian's empty end of the body)
        # is already there and is not registered at all.
        deadline = self.deadlines.deadline()
        while more:
            try:
                if declared < 0 or len(body) < declared:
                    message = await self.deadlines.within(receive(), deadline)
                else:
                    message = await receive()
            except BodyReadTimeout:
                await send_error(send, body_timed_out(self.deadlines.timeout, BEACON_CORS))
                return 408
            if message["type"] == "http.disconnect":
                await send_error(send, incomplete_body())
                return 400
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _error(send, 413, "payload_too_large", self._too_large)
                return 413
        address = self.client_address.of(scope)
        try:
            await self.tracker.track(kind, body, address, user_agent, country)
        except DomainError as exc:
            await _error(send, exc.status, str(exc.code), exc.message, exc.headers, exc.details)
            return exc.status
        except Exception as exc:
            refusal = _not_recorded(exc)
            await send_error(send, refusal)
            return refusal.status_code
        await _respond(send, 202, _ACCEPTED, b"")
        return 202

    async def rsgi(self, scope: Any, protocol: Any, fallback: Fallback) -> None:
        """The beacon over granian's RSGI interface (``core/rsgi.py``): the
        common case — a POST the rate limit admits and the tracker accepts —
        answered here; anything else handed to ``fallback`` (the ASGI
        layers, this class's ``__call__`` among them), with the body when it
        was read, to be answered as always."""
        started = time.perf_counter_ns()
        kind = PATHS[scope.path]
        headers = scope.headers
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        declared = headers.get("content-length", "")
        if (
            scope.method != "POST"
            or content_type not in _CONTENT_TYPES_TEXT
            or not declared.isdigit()
            or int(declared) > self.max_body_bytes
            or self.admit is None
        ):
            await fallback(scope, protocol)
            return
        address = self.client_address.of_rsgi(scope)
        if not self.admit(address):
            await fallback(scope, protocol)  # refused, or it takes I/O to tell
            return
        try:
            body = await read_body(protocol, self.deadlines)
        except BodyReadTimeout:
            send_rsgi_error(protocol, body_timed_out(self.deadlines.timeout, BEACON_CORS))
            return
        if body is None:
            send_rsgi_error(protocol, incomplete_body())
            return
        country = ""
        if self.country_header:
            country = country_code(headers.get(self.country_header.decode(), ""))
        if len(body) > self.max_body_bytes:  # more than it declared
            await fallback(scope, protocol, body=body, admitted=True)
            return
        route = ROUTES[("POST", scope.path)]
        try:
            await self.tracker.track(kind, body, address, headers.get("user-agent", ""), country)
        except DomainError:
            # A refusal: the ASGI path explains it, seeing the same request
            # (its rate-limit token already taken). Nothing was stored.
            await fallback(scope, protocol, body=body, admitted=True)
            return
        except Exception as exc:
            send_rsgi_error(protocol, _not_recorded(exc))
            self.observe(route, (time.perf_counter_ns() - started) // 1000, True)
            return
        protocol.response_empty(202, _ACCEPTED_TEXT)
        self.observe(route, (time.perf_counter_ns() - started) // 1000, False)

    @property
    def _too_large(self) -> str:
        return f"tracking payloads are limited to {self.max_body_bytes} bytes"


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _not_recorded(exc: Exception) -> ErrorResponse:
    """The answer to an event the tracker failed to take (nothing of it was
    kept). A full disk (the spool's) is said as the API says it, 507
    ``insufficient_storage`` (core/storage_full.py): the cause is the
    operator's to fix, not a passing outage; anything else is a 503."""
    if storage_full(exc):
        log.error("analytics: out of storage space, an event was refused: %s", exc)
        return error_response(
            507,
            "insufficient_storage",
            "the server has run out of storage space and did not record the event; "
            "retry once there is room",
            headers=BEACON_CORS,
        )
    log.error("analytics: could not accept an event", exc_info=exc)
    return error_response(
        503, "service_unavailable", "could not record the event; retry", headers=BEACON_CORS
    )


async def _error(
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: dict[str, str] | None = None,
    details: object = None,
) -> None:
    headers = {**BEACON_CORS, **(extra or {})}
    await send_error(send, error_response(status, code, message, details, headers))
