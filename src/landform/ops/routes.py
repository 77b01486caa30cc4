"""Health probes (liveness says the process answers; readiness says it can
reach its database and is not shutting down) and the operators' routes."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from landform.auth.deps import OperatorDep
from landform.core.db import Database
from landform.core.http import ErrorResponse, error_response

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str | int]:
    # The worker's pid tells an operator (and the multi-worker tests) which
    # process answered.
    return {"status": "ok", "worker": os.getpid()}


@router.get("/ops/cache", summary="This worker's cache counts (operators only)")
async def cache_counts(request: Request, _operator: OperatorDep) -> dict[str, Any]:
    """Hits, misses, sets, evictions, hit ratio and L1 bytes per tier and
    kind, for the worker that answers (``worker`` says which)."""
    return {"worker": os.getpid(), "tiers": request.app.state.cache_stats()}


@router.get("/readyz", response_model=None)
async def readyz(request: Request) -> ErrorResponse | dict[str, str]:
    db: Database = request.app.state.db
    try:
        async with db.primary.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return error_response(503, "not_ready", "the database cannot be reached")
    return {"status": "ready"}
