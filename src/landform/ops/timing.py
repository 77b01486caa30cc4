"""Every request gets an id (the client's ``X-Request-ID`` when it is a sane
one, else a new one), returned in the ``X-Request-ID`` header and carried by
every log line made while serving it; and its latency and outcome go into
the recorder, by route (the recorder counts each under the API gateway, and
GraphQL and uploads under their spec components too). Each WebSocket's
connect time (from the upgrade request to the accept) is recorded too.
Sits inside the public-page and beacon layers, which time their own
requests (pages/public.py, analytics/tracking.py: the hottest paths, where
a wrapping layer would cost more than the timing; they need no id)."""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landform.core.http import method_label
from landform.core.logs import request_id, request_id_of
from landform.ops.recorder import Recorder

ASSETS = "/assets/"


class Timing:
    def __init__(self, app: ASGIApp, recorder: Recorder | None) -> None:
        self.app = app
        # None: ids only, no timing (LANDFORM_OPS_METRICS_ENABLED=false).
        self.recorder = recorder
        # route object or public path kind -> its key, built once
        self._keys: dict[Any, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        status = 500
        ident = request_id_of(scope)
        header = (b"x-request-id", ident.encode())

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = request_id.set(ident)
        try:
            await self.app(scope, receive, noting_status)
        finally:
            request_id.reset(token)
            if self.recorder is not None:
                micros = (time.perf_counter_ns() - started) // 1000
                self.recorder.observe(self._route_key(scope), micros, status >= 500)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter_ns()

        async def noting_accept(message: Message) -> None:
            if message["type"] == "websocket.accept" and self.recorder is not None:
                self.recorder.observe(
                    "websocket_connect", (time.perf_counter_ns() - started) // 1000
                )
            await send(message)

        await self.app(scope, receive, noting_accept)

    def _route_key(self, scope: Scope) -> str:
        """``route:<METHOD> <template>``: the API's route templates; assets
        by kind (an asset key is not a route of its own). A method HTTP
        does not define is ``OTHER``: a client may send any token there,
        and each would be a series of its own."""
        method = method_label(scope["method"])
        route = scope.get("route")
        if route is not None:
            # Routes live as long as the app; they do not hash, their ids do.
            ident: Any = (method, id(route))
        else:
            template = "/assets/{key}" if scope["path"].startswith(ASSETS) else "(no route)"
            ident = (method, template)
        key = self._keys.get(ident)
        if key is None:
            template = ident[1] if isinstance(ident[1], str) else getattr(route, "path", "?")
            key = self._keys[ident] = f"route:{method} {template}"
        return key


class NamedRoute(Route):
    """A plain Starlette route (GraphQL's) that says in the scope it was the
    one chosen, as the API's own routes do: FastAPI's router sets
    ``scope["route"]`` for those alone, and a request the timing layer
    cannot name is counted as "(no route)" and under no spec component."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope
