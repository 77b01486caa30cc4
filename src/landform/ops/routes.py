"""Health probes (liveness says the process answers; readiness says it can
reach what it needs) and the operators' routes: performance metrics in the
spec's shape, SLA status, Prometheus metrics, cache counts."""

from __future__ import annotations

import asyncio
import functools
import math
import os
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import text

from landform.core.db import Database
from landform.core.errors import NotFound, ValidationFailed
from landform.core.housekeeping import housekeeping
from landform.core.http import ErrorResponse, error_response
from landform.core.mail import OutboxMailer
from landform.core.schema_check import SchemaCheck
from landform.ops.access import Operator, ProbeAccess
from landform.ops.monitor import Monitor
from landform.ops.prometheus import exposition

router = APIRouter(
    tags=["ops"],
    responses={
        401: {"description": "Operators only: the ops token or an admin's access token"},
        403: {"description": "`operator_only`: signed in, but not an admin"},
    },
)

REDIS_PING_SECONDS = 0.5
DASHBOARD = Path(__file__).with_name("dashboard")
# The page talks to this server only; nothing inline, nothing from elsewhere.
DASHBOARD_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
DASHBOARD_FILES = {
    "/ops/": ("index.html", "text/html; charset=utf-8"),
    "/ops/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/ops/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    # Its own icon: a browser asks for one, and a 404 in the console is noise.
    "/ops/icon.svg": ("icon.svg", "image/svg+xml"),
}

Scope = Annotated[
    Literal["replica", "cluster"],
    Query(description="this replica's workers, or every replica's (through Redis)"),
]
Window = Annotated[Literal["1m", "5m", "1h"], Query(description="sliding window")]


def monitor(request: Request) -> Monitor:
    found: Monitor = request.app.state.monitor
    return found


@router.get("/healthz")
async def healthz(_access: ProbeAccess) -> dict[str, str | int]:
    # The worker's pid tells an operator (and the multi-worker tests) which
    # process answered.
    return {"status": "ok", "worker": os.getpid()}


@router.get(
    "/readyz",
    response_model=None,
    responses={503: {"description": "`not_ready`: says what cannot be reached"}},
)
async def readyz(request: Request, _access: ProbeAccess) -> ErrorResponse | dict[str, str]:
    """Ready when the database and file storage answer and the worker is
    not shutting down. Redis is reported, not required: without it this
    replica still serves everything (docs/caching.md), and a readiness that
    needed it would take every replica out of rotation in a Redis outage."""
    if request.app.state.draining:
        return error_response(503, "not_ready", "shutting down")
    db: Database = request.app.state.db
    schema: SchemaCheck = request.app.state.schema
    try:
        # Probed every few seconds: not a statement anyone waits on.
        with housekeeping():
            async with db.primary.connect() as connection:
                await connection.execute(text("SELECT 1"))
            # Not yet migrated (a deploy whose migration has not run):
            # every request would be a 500, so no traffic yet.
            problem = await schema.problem()
    except Exception:
        return error_response(503, "not_ready", "the database cannot be reached")
    if problem is not None:
        return error_response(503, "not_ready", problem)
    answer = {"status": "ready"}
    redis = request.app.state.redis
    if redis is not None:
        try:
            # Bounded: a Redis that hangs must not outlast the probe's timeout.
            await asyncio.wait_for(redis.ping(), REDIS_PING_SECONDS)
        except Exception:
            answer["redis"] = "unreachable: shared caches, live views and the cluster view wait"
    try:
        await request.app.state.storage.check()
    except Exception:
        return error_response(503, "not_ready", "file storage cannot be reached")
    return answer


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(request: Request, _access: ProbeAccess) -> Response:
    """Every worker of this replica, in the Prometheus text format."""
    snapshots = await monitor(request).snapshots("replica")
    return Response(exposition(snapshots), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/ops/performance", summary="PerformanceMetrics (operators only)")
async def performance(
    request: Request,
    _operator: Operator,
    scope: Scope = "replica",
    window: Window = "5m",
    routes: Annotated[
        bool, Query(description="per-route latencies too (most of the work of this answer)")
    ] = True,
    since: Annotated[
        float | None,
        Query(
            ge=0,
            description="instead of the window: from this Unix time on (a load test's run), "
            "to 10 s (60 s past 5 minutes back), the last hour at most",
        ),
    ] = None,
) -> dict[str, Any]:
    """The spec's ``PerformanceMetrics``: response times (ms), throughput,
    resources, database, cache (ratios in percent), plus per-component and
    per-route latencies."""
    if since is not None and not (math.isfinite(since) and since <= time.time() + 1):
        raise ValidationFailed(
            "since: a Unix time that has come (not one still to come)",
            details=[{"path": "query.since", "message": "must not be in the future"}],
        )
    return await monitor(request).performance(scope, window, routes, since)


@router.get("/ops/sla", summary="SLA compliance (operators only)")
async def sla(
    request: Request, _operator: Operator, scope: Scope = "replica", window: Window = "5m"
) -> dict[str, Any]:
    """Each spec component's p99 against its Target / Acceptable / Critical
    thresholds, the spec's three checks, and the overall status."""
    return await monitor(request).sla_status(scope, window)


@router.get("/ops/cache", summary="This worker's cache counts (operators only)")
async def cache_counts(request: Request, _operator: Operator) -> dict[str, Any]:
    """Hits, misses, sets, evictions, hit ratio and L1 bytes per tier and
    kind, for the worker that answers (``worker`` says which)."""
    return {"worker": os.getpid(), "tiers": request.app.state.cache_stats()}


@router.get("/ops/", response_class=Response, include_in_schema=False)
@router.get("/ops/dashboard.js", response_class=Response, include_in_schema=False)
@router.get("/ops/dashboard.css", response_class=Response, include_in_schema=False)
@router.get("/ops/icon.svg", response_class=Response, include_in_schema=False)
async def dashboard(request: Request) -> Response:
    """The live operations page. It holds no data: it asks /ops/sla and
    /ops/performance with the token the operator types in."""
    name, media_type = DASHBOARD_FILES[request.url.path]
    return Response(_dashboard_file(name), media_type=media_type, headers=DASHBOARD_HEADERS)


@functools.cache
def _dashboard_file(name: str) -> bytes:
    return (DASHBOARD / name).read_bytes()


@router.get("/ops/outbox", summary="Mail kept in outbox mode (operators only)")
async def outbox(
    request: Request,
    _operator: Operator,
    to: Annotated[
        str | None,
        Query(max_length=320, pattern=r"^[^\x00]*$", description="only mail to this address"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """What the embedded default "sent", newest first, whole messages: what
    `landform mail outbox` prints, for scripts and load tests that need a
    verification link without a mail server."""
    mailer = request.app.state.mailer
    if not isinstance(mailer, OutboxMailer):
        raise NotFound("mail goes out over SMTP here; there is no outbox", code="outbox_disabled")
    messages = await mailer.list(limit=limit, recipient=to)
    return {
        "messages": [
            {"to": m.recipient, "created_at": m.created_at.isoformat(), "message": m.message}
            for m in messages
        ]
    }
