"""Database measurements: each statement's time (into the recorder's
``database`` histogram), slow statements logged with their SQL, deadlocks
counted, and pool utilization. (How far read replicas lag is measured by
``core.replica_health``.)"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from landform.core.db_failures import sqlstate_of
from landform.core.housekeeping import is_housekeeping
from landform.ops.recorder import Recorder

log = logging.getLogger("landform.slow_query")

DEADLOCK = "40P01"


class DatabaseMetrics:
    def __init__(self, recorder: Recorder, slow_ms: float) -> None:
        self.recorder = recorder
        self.slow_ms = slow_ms
        self.slow_queries = 0
        self.deadlocks = 0

    def watch(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync, "handle_error", self._error)

    def _before(self, _conn: Any, _cursor: Any, _statement: str, *_: Any) -> None:
        _conn.info.setdefault("landform_started", []).append(time.perf_counter_ns())

    def _after(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.get("landform_started")
        if not started:
            return
        micros = (time.perf_counter_ns() - started.pop()) // 1000
        if not is_housekeeping():
            self.recorder.observe("database", micros)
        if micros >= self.slow_ms * 1000:
            text = " ".join(statement.split())[:2000]
            if text[:5].upper() == "BEGIN":
                # SQLite's BEGIN IMMEDIATE waits for the one writer's turn:
                # contention, not a slow statement, and said as such.
                log.warning(
                    "waited %.1f ms for the database's write turn (SQLite: one writer at a time)",
                    micros / 1000,
                    extra={"duration_ms": round(micros / 1000, 1)},
                )
                return
            self.slow_queries += 1
            log.warning(
                "slow query: %.1f ms: %s",
                micros / 1000,
                text,
                extra={"duration_ms": round(micros / 1000, 1)},
            )

    def _error(self, context: Any) -> None:
        started = context.connection.info.get("landform_started") if context.connection else None
        if started:
            started.pop()
        error = context.original_exception
        if sqlstate_of(error) == DEADLOCK or "deadlock detected" in str(error):
            self.deadlocks += 1


def pool_utilization(engines: list[AsyncEngine]) -> float:
    """Connections checked out over the pools' capacity, in percent."""
    used = capacity = 0
    for engine in engines:
        pool: Any = engine.sync_engine.pool
        size = getattr(pool, "size", None)
        checked_out = getattr(pool, "checkedout", None)
        if callable(size) and callable(checked_out):
            used += checked_out()
            capacity += size() + max(0, getattr(pool, "_max_overflow", 0))
    return round(100.0 * used / capacity, 2) if capacity else 0.0
