"""Thin HTTP and WebSocket handlers for analytics reads. (The tracking
endpoints are a lean ASGI layer of their own: ``tracking``.)"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Body,
    Depends,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)
from pydantic import BeforeValidator

from landform.analytics.classify import country_code
from landform.analytics.errors import TooManyLiveStreams
from landform.analytics.events import EVENT, VIEW
from landform.analytics.instants import parse_instant
from landform.analytics.live import Subscription
from landform.analytics.schemas import EventIn, ViewIn
from landform.analytics.service import AnalyticsService
from landform.analytics.tracker import Tracker
from landform.auth.deps import PrincipalDep
from landform.core.errors import DomainError, paths_renamed
from landform.core.http import BEACON_CORS, bearer_credential, client_ip, error_response

router = APIRouter(tags=["analytics"])


async def analytics_service(request: Request) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


ServiceDep = Annotated[AnalyticsService, Depends(analytics_service)]


def _instant_or_default(value: Any) -> datetime | None:
    """An empty ``from=`` or ``to=`` (an HTML form's field left blank) is
    the default, as a missing one is."""
    return None if value == "" else parse_instant(value)


def _interval_or_default(value: Any) -> Any:
    return None if value == "" else value


From = Annotated[
    datetime | None,
    BeforeValidator(_instant_or_default),
    Query(alias="from", description="Start, ISO 8601 date or datetime (UTC); inclusive"),
]
To = Annotated[
    datetime | None,
    BeforeValidator(_instant_or_default),
    Query(
        alias="to",
        description="End, ISO 8601 (UTC); exclusive; default the end of the current hour",
    ),
]


# The two tracking endpoints are answered by the lean layer in front of the
# API (``tracking.Tracking``); these routes document them, and serve them the
# same way should the API app ever be mounted without that layer.


def _beacon_body(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        }
    }


# What the beacon's own layer (analytics/tracking.py) answers besides the
# API's common errors; every one CORS-open.
BEACON_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "`page_not_found`: no published page has that id or slug"},
    405: {"description": "`method_not_allowed`: only POST (and the OPTIONS preflight)"},
    408: {"description": "`request_timeout`: the body did not arrive in time"},
    415: {"description": "`unsupported_media_type`: send JSON or text/plain"},
    503: {"description": "`service_unavailable`: the event could not be recorded; retry"},
    507: {"description": "`insufficient_storage`: the server is out of space; not recorded"},
}


async def _track(request: Request, kind: str) -> Response:
    tracker: Tracker = request.app.state.tracker
    header = request.app.state.settings.analytics_country_header
    country = country_code(request.headers.get(header, "")) if header else ""
    address = client_ip(request)
    user_agent = request.headers.get("user-agent", "")
    await tracker.track(kind, await request.body(), address, user_agent, country)
    return Response(status_code=202, headers=BEACON_CORS)


@router.post(
    "/analytics/track-view",
    status_code=202,
    response_class=Response,
    summary="Track a page view (public; the page beacon's)",
    openapi_extra=_beacon_body(ViewIn),
    responses=BEACON_ERRORS,
)
async def track_view(request: Request) -> Response:
    """Public and CORS-open. JSON or ``text/plain``; 202 with no body. Give
    ``page_id`` or ``slug`` of a published page. See docs/analytics.md."""
    return await _track(request, VIEW)


@router.post(
    "/analytics/track-event",
    status_code=202,
    response_class=Response,
    summary="Track a conversion (public; the page beacon's)",
    openapi_extra=_beacon_body(EventIn),
    responses=BEACON_ERRORS,
)
async def track_event(request: Request) -> Response:
    """A call-to-action click, form submission or any named goal; counted as
    a conversion. Public and CORS-open; 202 with no body."""
    return await _track(request, EVENT)


@router.get("/analytics/pages/{page_id}", summary="A page's analytics")
async def page_analytics(
    page_id: uuid.UUID,
    principal: PrincipalDep,
    service: ServiceDep,
    start: From = None,
    end: To = None,
    interval: Annotated[
        Literal["hour", "day"] | None, BeforeValidator(_interval_or_default), Query()
    ] = None,
) -> dict[str, Any]:
    """Totals (views, unique visitors, conversions, conversion rate), a time
    series, and the top referrers, UTM parameters, devices, browsers,
    operating systems and countries. Default range: the last 7 days."""
    with paths_renamed(_RANGE_IN_QUERY):
        return await service.page_report(principal.user_id, page_id, start, end, interval)


@router.get("/analytics/dashboard", summary="Analytics across all your pages")
async def dashboard(
    principal: PrincipalDep, service: ServiceDep, start: From = None, end: To = None
) -> dict[str, Any]:
    """Totals with the change against the previous period of the same
    length, top pages, and visitors in the last 5 minutes. Default range:
    the last 30 days."""
    with paths_renamed(_RANGE_IN_QUERY):
        return await service.dashboard(principal.user_id, start, end)


# The service names a bad range by its bound (``from``) or interval; here
# they are query parameters, named as every other query error names them.
_RANGE_IN_QUERY = {name: f"query.{name}" for name in ("from", "to", "interval")}


@router.post(
    "/analytics/custom-query",
    summary="Run a custom analytics query",
    responses={
        404: {"description": "`page_not_found`: a `page` filter names a page that is not yours"}
    },
)
async def custom_query(
    principal: PrincipalDep,
    service: ServiceDep,
    query: Annotated[dict[str, Any], Body(description="See docs/custom-queries.md")],
) -> dict[str, Any]:
    """A JSON query language (metrics, dimensions, filters, range, order,
    limit) over your pages' analytics; never SQL."""
    return await service.custom_query(principal.user_id, query)


@router.get("/ws/analytics", include_in_schema=False)
async def live_analytics_over_http() -> Response:
    """The live view is a WebSocket: a plain GET is told to upgrade (426),
    rather than that nothing is here (404)."""
    return error_response(
        426,
        "upgrade_required",
        "the live view is a WebSocket: connect with ws:// or wss:// (see docs/analytics.md)",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )


@router.websocket("/ws/analytics")
async def live_analytics(
    websocket: WebSocket,
    access_token: Annotated[str | None, Query()] = None,
    page_id: Annotated[uuid.UUID | None, Query()] = None,
) -> None:
    """Live counts, one message a second: ``{"type": "views", "at",
    "views_per_second": {page id: n}, "total_views_per_second",
    "current_visitors"}``. Authenticate with ``?access_token=`` (an access
    token or API key), an ``Authorization: Bearer`` header or, for an API
    key, ``X-API-Key`` (as on every other route). The server
    sends ``{"type": "ping"}`` every heartbeat; a client that sends nothing
    for three heartbeats is disconnected, and one whose credential stops
    being valid (revoked, expired, its account closed) within seconds (4401)."""
    service: AnalyticsService = websocket.app.state.analytics
    credential = (
        access_token
        or bearer_credential(websocket.headers.get("authorization", ""))
        or websocket.headers.get("x-api-key", "")
    )
    if not credential:
        await websocket.close(code=4401, reason="authentication required")
        return
    try:
        subscription = await service.watch(credential, page_id)
    except TooManyLiveStreams as exc:
        # Accepted to be closed: a refused handshake (403) could not say why.
        await websocket.accept()
        await websocket.close(code=4429, reason=exc.message[:120])
        return
    except DomainError as exc:
        await websocket.close(code=4404 if exc.status == 404 else 4401, reason=exc.message[:120])
        return
    try:
        await websocket.accept()
        await websocket.send_json(
            {"type": "hello", "heartbeat": service.settings.analytics_ws_heartbeat}
        )
        closing = await _stream(websocket, service, subscription)
        if closing is not None:
            await websocket.close(*closing)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        service.unwatch(subscription)


async def _stream(
    websocket: WebSocket, service: AnalyticsService, subscription: Subscription
) -> tuple[int, str] | None:
    """Send the hub's messages, and a ping every heartbeat, until the
    stream has to end: how to close the socket (code, reason), or None
    when the client went away. The pings keep their own clock: the
    hub's message every second must not hide a client gone silent."""
    loop = asyncio.get_running_loop()
    heartbeat = service.settings.analytics_ws_heartbeat
    heard = loop.time()

    async def listen() -> tuple[int, str]:
        # Any text message counts as heard (the answer to a ping).
        nonlocal heard
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("text") is None:
                return 1003, "send text (a JSON message), not binary"
            heard = loop.time()

    listener = asyncio.create_task(listen())
    getter: asyncio.Task[dict[str, Any]] | None = None
    next_ping = loop.time() + heartbeat
    try:
        while True:
            now = loop.time()
            if now - heard >= 3 * heartbeat:
                return 1001, "no heartbeat"
            if now >= next_ping:
                await websocket.send_json({"type": "ping"})
                next_ping = now + heartbeat
            getter = getter or asyncio.ensure_future(subscription.queue.get())
            await asyncio.wait(
                {getter, listener},
                timeout=min(next_ping, heard + 3 * heartbeat) - now,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if listener.done():
                return listener.result()
            if not getter.done():
                continue
            message, getter = getter.result(), None
            if subscription.too_slow:
                return 1008, "too slow: messages were dropped"
            if subscription.ended:
                return 1001, "server restarting: reconnect"
            try:
                await service.check_credential(subscription)
            except DomainError as exc:
                return 4401, exc.message[:120]
            await websocket.send_json(message)
    finally:
        for task in (listener, getter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                    await task
