"""The operators' view, assembled: performance metrics and SLA status for
this replica or the fleet, and the background loop that samples what is
slow to read (Redis memory) and fires SLA alerts. (Replica lag is measured
by the database's own check, ``core.replica_health``.)

Alerts are evaluated by one worker only (a leader: a Redis lease across
replicas, a file lock among one machine's workers), over the fleet's
measurements, so a breach fires once, not once per worker. The alerts'
state (what breaches since when, what was posted) is kept beside the lease,
so a new leader (the last one restarted) does not post a breach again."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import time
from typing import IO, TYPE_CHECKING, Any

from landform.core.tasks import cancel_and_wait
from landform.core.webhook import Webhook
from landform.ops.database import DatabaseMetrics
from landform.ops.fleet import Fleet
from landform.ops.performance import performance_metrics
from landform.ops.sla import Alerts, Sla

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

EVERY = 10.0
# How long the cluster view may wait on Redis before it shows this replica.
CLUSTER_SECONDS = 1.0
LEADER_KEY = "landform:ops:alert-leader"
ALERT_STATE_KEY = "landform:ops:alert-state"
ALERT_STATE_FILE = "alert-state.json"
ALERT_STATE_KEPT_SECONDS = 86_400


class Monitor:
    def __init__(
        self,
        fleet: Fleet,
        sla: Sla,
        database: DatabaseMetrics,
        redis: Redis | None,
        alert_hook: Webhook | None,
        alert_hold: float,
        alert_window: str = "5m",
    ) -> None:
        self.fleet = fleet
        self.sla = sla
        self.database = database
        self.redis = redis
        self.alert_hook = alert_hook
        self.alerts = Alerts(alert_hold)
        self.alert_window = alert_window
        self.redis_fragmentation = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lock_file: IO[str] | None = None
        self._cluster_unseen = False  # an outage of the cluster view, said once

    async def start(self) -> None:
        await self.fleet.start()
        if self.alert_hook is not None:
            await self.alert_hook.start()
        self._task = asyncio.create_task(self._run(), name="ops-monitor")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self.alert_hook is not None:
            await self.alert_hook.stop()
        await self.fleet.stop()
        if self._lock_file is not None:
            self._lock_file.close()

    async def snapshots(self, scope: str) -> list[dict[str, Any]]:
        return (await self._gathered(scope))[0]

    async def _gathered(self, scope: str) -> tuple[list[dict[str, Any]], str]:
        """The workers' snapshots, and the scope they cover: the cluster's
        when asked and Redis answers in time, else this replica's (an
        operator's view must not fail with the Redis it would show away)."""
        if scope == "cluster" and self.redis is not None:
            try:
                cluster = await asyncio.wait_for(self.fleet.cluster(), CLUSTER_SECONDS)
            except Exception as exc:
                # Once an outage: the /ops/ page asks every 2 s.
                if not self._cluster_unseen:
                    self._cluster_unseen = True
                    log.warning("ops: no cluster view (%s); showing this replica", exc)
            else:
                if self._cluster_unseen:
                    self._cluster_unseen = False
                    log.info("ops: the cluster view is back")
                return cluster, scope
        return await self.fleet.replica(), "replica"

    async def performance(
        self, scope: str, window: str, routes: bool = True, since: float | None = None
    ) -> dict[str, Any]:
        snapshots, covered = await self._gathered(scope)
        metrics = performance_metrics(snapshots, window, covered, routes=routes, since=since)
        if covered != scope:
            metrics["note"] = (
                "Redis cannot be reached: this replica's workers only"
                if self.redis is not None
                else "no Redis is configured (LANDFORM_REDIS_URL): replicas cannot see each "
                "other, so this is this replica's workers only"
            )
        return metrics

    async def sla_status(self, scope: str, window: str) -> dict[str, Any]:
        metrics = await self.performance(scope, window, routes=False)
        answer = {"scope": metrics["scope"], "window": window, **self.sla.evaluate(metrics)}
        if "note" in metrics:
            answer["note"] = metrics["note"]
        return answer

    # The loop

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(EVERY)
            try:
                await self.sample()
                if self.alert_hook is not None and await self._lead():
                    await self.check_alerts()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ops: monitoring round failed")

    async def sample(self) -> None:
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    info = await self.redis.info("memory")
                self.redis_fragmentation = float(info.get("mem_fragmentation_ratio", 0.0))

    async def check_alerts(self, now: float | None = None) -> list[dict[str, Any]]:
        scope = "cluster" if self.redis is not None else "replica"
        status = await self.sla_status(scope, self.alert_window)
        state = await self._shared_alert_state()
        if state is not None:
            self.alerts.resume(state)
        fired = self.alerts.update(status, time.time() if now is None else now)
        await self._share_alert_state(json.dumps(self.alerts.state()))
        for alert in fired:
            log.warning("sla alert: %s %s (%s)", alert["event"], alert["name"], alert["status"])
            if self.alert_hook is not None:
                self.alert_hook.notify({"kind": "sla", **alert})
        return fired

    async def _shared_alert_state(self) -> dict[str, Any] | None:
        try:
            if self.redis is not None:
                async with asyncio.timeout(1.0):
                    raw = await self.redis.get(ALERT_STATE_KEY)
            else:
                raw = (self.fleet.directory / ALERT_STATE_FILE).read_bytes()
            return dict(json.loads(raw)) if raw else None
        except Exception:  # noqa: BLE001 - none kept yet, or unreadable: go on from memory
            return None

    async def _share_alert_state(self, data: str) -> None:
        try:
            if self.redis is not None:
                async with asyncio.timeout(1.0):
                    await self.redis.set(ALERT_STATE_KEY, data, ex=ALERT_STATE_KEPT_SECONDS)
            else:
                path = self.fleet.directory / ALERT_STATE_FILE
                path.with_suffix(".tmp").write_text(data)
                path.with_suffix(".tmp").replace(path)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("ops: could not keep the alerts' state (%s)", exc)

    async def _lead(self) -> bool:
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    me = self.fleet.worker
                    if await self.redis.set(LEADER_KEY, me, nx=True, ex=int(EVERY * 3)):
                        return True
                    holder = await self.redis.get(LEADER_KEY)
                    if holder in (me, me.encode()):
                        await self.redis.expire(LEADER_KEY, int(EVERY * 3))
                        return True
            return False
        if self._lock_file is None:
            # Once per process, a local file: not worth a thread.
            path = self.fleet.directory / "alerts.lock"
            self._lock_file = open(path, "w")  # noqa: SIM115, ASYNC230
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
