"""Every worker's measurements, where the others can read them.

Every two seconds each worker folds what it recorded and publishes a
snapshot: its histograms (encoded, so they merge exactly), its counters and
its gauges (resources, database, cache). Snapshots go to files under
``run_dir/ops`` (the workers of this machine: one replica) and, with Redis,
to keys every replica reads (``scope=cluster``). A snapshot older than
``STALE_SECONDS``, or one a worker left as it stopped, belongs to a worker
that is gone: its counts stay in (``departed.py``), its gauges do not."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from landform.core.tasks import cancel_and_wait
from landform.ops.departed import RETIRED_FILE, counters_only, fold_into_retired, retired
from landform.ops.performance import cache_counts
from landform.ops.recorder import WINDOWS, Recorder

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

PUBLISH_EVERY = 2.0
CONNECTIONS_EVERY = 5  # samples
STALE_SECONDS = 15.0
# A departed worker's slots can fall in a window this long after it left.
DEPARTED_KEPT_SECONDS = max(seconds for _, seconds in WINDOWS.values())
REDIS_PREFIX = "landform:ops:worker:"


class Resources:
    """This process's CPU, memory, disk and network I/O and connections
    (psutil). Rates are per second since the previous sample."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the count
        self._last: tuple[float, int, int] | None = None
        self._samples = 0
        self._connections = 0

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        disk = _disk_bytes(self.process)
        network = _network_bytes()
        rates = {"disk_bytes_per_second": 0.0, "network_bytes_per_second": 0.0}
        if self._last is not None:
            then, last_disk, last_network = self._last
            elapsed = max(now - then, 1e-6)
            rates = {
                "disk_bytes_per_second": max(0, disk - last_disk) / elapsed,
                "network_bytes_per_second": max(0, network - last_network) / elapsed,
            }
        self._last = (now, disk, network)
        # Reading the connection table parses /proc/net/tcp: with thousands
        # of clients that is milliseconds, so it is refreshed every fifth sample.
        if self._samples % CONNECTIONS_EVERY == 0:
            try:
                self._connections = len(self.process.net_connections(kind="tcp"))
            except (psutil.Error, OSError):
                self._connections = 0
        self._samples += 1
        return {
            "cpu_percent": self.process.cpu_percent(None),
            "memory_bytes": float(self.process.memory_info().rss),
            "memory_percent": self.process.memory_percent(),
            "cpu_count": float(psutil.cpu_count() or 1),
            "open_connections": float(self._connections),
            **rates,
        }


def _disk_bytes(process: psutil.Process) -> int:
    try:
        counters = process.io_counters()
    except (psutil.Error, AttributeError, OSError):
        return 0
    return int(counters.read_bytes + counters.write_bytes)


def _network_bytes() -> int:
    counters = psutil.net_io_counters()
    return int(counters.bytes_sent + counters.bytes_recv) if counters else 0


class Fleet:
    def __init__(
        self,
        recorder: Recorder,
        run_dir: Path,
        gauges: Callable[[], dict[str, Any]],
        redis: Redis | None = None,
    ) -> None:
        self.recorder = recorder
        self.directory = run_dir / "ops"
        self.gauges = gauges
        self.redis = redis
        self.worker = f"{socket.gethostname()}-{os.getpid()}"
        self.resources = Resources()
        self._cache_seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._redis_failing = False

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._publish_forever(), name="ops-fleet")

    async def stop(self) -> None:
        """Leave this worker's last counts for the others (``departed.py``)."""
        await cancel_and_wait(self._task)
        final = {**self.snapshot(), "departed": True}
        data = json.dumps(final, separators=(",", ":"))
        with contextlib.suppress(OSError):
            self._write(data)
        if self.redis is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.redis.set(
                        REDIS_PREFIX + self.worker, data, ex=int(DEPARTED_KEPT_SECONDS)
                    )

    def snapshot(self) -> dict[str, Any]:
        """This worker, now."""
        gauges = self.gauges()
        self._count_cache(gauges.get("cache", {}))
        self.recorder.fold()
        return {
            "worker": self.worker,
            "at": time.time(),
            "started": self.recorder.started,
            "windows": self.recorder.snapshot(),
            "totals": dict(self.recorder.totals),
            "resources": self.resources.sample(),
            **gauges,
        }

    def _count_cache(self, tiers: dict[str, Any]) -> None:
        """The cache's lookups since the last snapshot, into the windows, so
        a window's hit ratio is that window's (the counters run since start)."""
        now = cache_counts(tiers)
        for key, value in now.items():
            self.recorder.count(key, int(value - self._cache_seen.get(key, 0.0)))
        self._cache_seen = now

    async def replica(self) -> list[dict[str, Any]]:
        """The snapshots of this machine's workers (this one's fresh), and
        the counts of those gone."""
        own = self.snapshot()
        # Written first: a reader of this file next (another worker) then
        # sees at least what this answer counts, so counters never go back
        # between two answers.
        self._write(json.dumps(own, separators=(",", ":")))
        found = [own]
        now = time.time()
        for path in self.directory.glob("*.json"):
            if path.stem == self.worker or path.name == RETIRED_FILE:
                continue
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced, or gone
            if not isinstance(other, dict) or "windows" not in other:
                continue  # not a worker's snapshot (the alerts' state, say)
            age = now - other.get("at", 0)
            if age <= STALE_SECONDS and not other.get("departed"):
                found.append(other)
            elif age <= DEPARTED_KEPT_SECONDS:
                found.append(counters_only(other))
            else:
                await asyncio.to_thread(fold_into_retired, self.directory, path)
        long_gone = retired(self.directory)
        if long_gone is not None:
            found.append(long_gone)
        return found

    async def cluster(self) -> list[dict[str, Any]]:
        """Every replica's workers, through Redis; this machine's without."""
        if self.redis is None:
            return await self.replica()
        own = self.snapshot()
        found = [own]
        keys = [key async for key in self.redis.scan_iter(match=REDIS_PREFIX + "*", count=500)]
        mine = (REDIS_PREFIX + self.worker).encode()
        values = await self.redis.mget([k for k in keys if k != mine]) if keys else []
        now = time.time()
        for value in values:
            if value:
                other = json.loads(value)
                if now - other.get("at", 0) <= STALE_SECONDS and not other.get("departed"):
                    found.append(other)
                else:  # kept by Redis while a window may hold its slots
                    found.append(counters_only(other))
        return found

    async def _publish_forever(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ops: could not publish this worker's measurements")

    def _write(self, data: str) -> None:
        path = self.directory / f"{self.worker}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(data)
        temporary.replace(path)

    async def publish(self) -> None:
        data = json.dumps(self.snapshot(), separators=(",", ":"))
        self._write(data)
        if self.redis is not None:
            try:
                async with asyncio.timeout(1.0):
                    await self.redis.set(
                        REDIS_PREFIX + self.worker, data, ex=int(DEPARTED_KEPT_SECONDS)
                    )
            except Exception as exc:  # noqa: BLE001 - the cluster view waits for Redis
                if not self._redis_failing:
                    log.warning("ops: cannot share measurements through Redis (%s)", exc)
                self._redis_failing = True
            else:
                self._redis_failing = False
