"""``GET /metrics``: the Prometheus text format, for every worker of this
replica at once (the workers' snapshots merged, so any worker answers for
all of them). Histograms have buckets around the spec's thresholds;
counters count since the replica first started (a worker that is gone
leaves its counts: ``departed.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from landform.ops.recorder import COMPONENTS, cumulative_counts_and_mean

# Seconds: around the spec's p99 thresholds (5 ms cache … 10 s uploads),
# and past the highest: histogram_quantile answers no more than the largest
# finite bound, so "p99 > 10 s" on buckets that ended at 10 s never held.
BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75,
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip


OUTCOME = {"hits": "hit", "misses": "miss"}


_BOUNDS_US = tuple(round(bound * 1_000_000) for bound in BUCKETS)


def _buckets_and_sum(histogram: HdrHistogram) -> tuple[list[tuple[str, float]], float]:
    """Cumulative counts at each bound (µs in the histogram), and the sum in
    seconds (the mean times the count)."""
    counts, mean = cumulative_counts_and_mean(histogram, _BOUNDS_US)
    total = histogram.get_total_count()
    buckets = [
        *((str(bound), float(n)) for bound, n in zip(BUCKETS, counts, strict=True)),
        ("+Inf", float(total)),
    ]
    return buckets, mean * total / 1_000_000


class SnapshotCollector:
    def __init__(self, snapshots: list[dict[str, Any]]) -> None:
        self.snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, HdrHistogram] = {}
        for snapshot in self.snapshots:
            for key, payload in snapshot["windows"].get("cumulative", {}).items():
                decoded = HdrHistogram.decode(payload.encode())
                if key in merged:
                    merged[key].add(decoded)
                else:
                    merged[key] = decoded
        routes = HistogramMetricFamily(
            "landform_request_duration_seconds",
            "Time to answer a request, by route",
            labels=["route"],
        )
        components = HistogramMetricFamily(
            "landform_component_duration_seconds",
            "p99 targets per spec component: api_gateway, graphql, database, cache, "
            "file_upload, page_generation, websocket_connect",
            labels=["component"],
        )
        for key, histogram in sorted(merged.items()):
            if key.startswith("route:"):
                routes.add_metric([key.removeprefix("route:")], *_buckets_and_sum(histogram))
            elif key in COMPONENTS:
                components.add_metric([key], *_buckets_and_sum(histogram))
        yield routes
        yield components

        totals: dict[str, float] = {}
        for snapshot in self.snapshots:
            for key, count in snapshot.get("totals", {}).items():
                totals[key] = totals.get(key, 0) + count
        requests = CounterMetricFamily(
            "landform_requests", "Requests answered, by route", labels=["route"]
        )
        failures = CounterMetricFamily(
            "landform_request_failures", "Requests answered with a 5xx, by route", labels=["route"]
        )
        for key, count in sorted(totals.items()):
            if key.startswith("route:") and key.endswith(":failed"):
                failures.add_metric([key.removeprefix("route:").removesuffix(":failed")], count)
            elif key.startswith("route:"):
                requests.add_metric([key.removeprefix("route:")], count)
        yield requests
        yield failures
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, value=value)

        resources = [s["resources"] for s in self.snapshots]
        database = [s.get("database", {}) for s in self.snapshots]
        working = sum(1 for s in self.snapshots if not s.get("departed"))
        yield gauge("landform_workers", "Workers reporting", working)
        yield gauge(
            "landform_cpu_percent",
            "CPU used by the workers (100 = one core)",
            sum(r["cpu_percent"] for r in resources),
        )
        yield gauge(
            "landform_memory_bytes",
            "Resident memory of the workers",
            sum(r["memory_bytes"] for r in resources),
        )
        yield gauge(
            "landform_open_connections",
            "TCP connections the workers hold",
            sum(r["open_connections"] for r in resources),
        )
        yield gauge(
            "landform_db_pool_utilization_percent",
            "Database connections checked out over pool capacity (the busiest worker)",
            max((d.get("pool_utilization", 0.0) for d in database), default=0.0),
        )
        yield CounterMetricFamily(
            "landform_db_slow_queries",
            "Statements slower than LANDFORM_OPS_SLOW_QUERY_MS",
            value=sum(d.get("slow_queries", 0) for d in database),
        )
        yield CounterMetricFamily(
            "landform_db_deadlocks",
            "Deadlocks the database reported",
            value=sum(d.get("deadlocks", 0) for d in database),
        )
        yield gauge(
            "landform_db_replication_lag_seconds",
            "How far the most lagging read replica is behind",
            max((d.get("replication_lag", 0.0) for d in database), default=0.0),
        )
        yield gauge(
            "landform_db_replicas_out_of_rotation",
            "Read replicas a worker sends no reads to (lagging or unreachable)",
            len(
                {r["name"] for d in database for r in d.get("replicas", ()) if not r["inRotation"]}
            ),
        )
        yield gauge(
            "landform_redis_memory_fragmentation_ratio",
            "Redis mem_fragmentation_ratio (0 without Redis)",
            max((s.get("redis_fragmentation", 0.0) for s in self.snapshots), default=0.0),
        )
        deliveries = CounterMetricFamily(
            "landform_webhook_deliveries",
            "Webhook messages (cdn purge, sla alert) delivered, or failed: refused or given up on",
            labels=["webhook", "outcome"],
        )
        delivered: dict[tuple[str, str], float] = {}
        for snapshot in self.snapshots:
            for name, counts in snapshot.get("webhooks", {}).items():
                for outcome in ("sent", "failed"):
                    key = (name, outcome)
                    delivered[key] = delivered.get(key, 0) + counts.get(outcome, 0)
        for labels, value in sorted(delivered.items()):
            deliveries.add_metric(list(labels), value)
        yield deliveries
        lookups = CounterMetricFamily(
            "landform_cache_lookups",
            "Cache lookups by tier, kind and outcome",
            labels=["tier", "kind", "outcome"],
        )
        evictions = CounterMetricFamily(
            "landform_cache_evictions", "Cache evictions by tier and kind", labels=["tier", "kind"]
        )
        stored = CounterMetricFamily(
            "landform_cache_sets", "Values stored, by tier and kind", labels=["tier", "kind"]
        )
        held = GaugeMetricFamily(
            "landform_cache_bytes", "Bytes held in L1 by kind", labels=["kind"]
        )
        sums: dict[tuple[str, str, str], float] = {}
        for snapshot in self.snapshots:
            for tier, kinds in snapshot.get("cache", {}).items():
                for kind, counts in kinds.items():
                    for what in ("hits", "misses", "sets", "evictions", "bytes"):
                        sums[tier, kind, what] = sums.get((tier, kind, what), 0) + counts.get(
                            what, 0
                        )
        for (tier, kind, what), value in sorted(sums.items()):
            if what in ("hits", "misses"):
                lookups.add_metric([tier, kind, OUTCOME[what]], value)
            elif what == "evictions":
                evictions.add_metric([tier, kind], value)
            elif what == "sets":
                stored.add_metric([tier, kind], value)
            elif tier == "l1":
                held.add_metric([kind], value)
        yield lookups
        yield stored
        yield evictions
        yield held


def exposition(snapshots: list[dict[str, Any]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshots))
    return generate_latest(registry)
