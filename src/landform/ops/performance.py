"""The spec's ``PerformanceMetrics``, from the snapshots of one replica's
workers or of the whole fleet, over one window. Field names are the spec's;
times are in milliseconds, rates and ratios in percent (as the spec's SLA
checks compare them: p99 < 500, success rate >= 99.9, hit ratio >= 90)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

from landform.ops.recorder import (
    COMPONENTS,
    Merged,
    merge_window,
    percentiles_and_mean,
    window_span,
)


def _ms(micros: float) -> float:
    return round(micros / 1000, 3)


def latency(histogram: HdrHistogram | None) -> dict[str, float]:
    if histogram is None or histogram.get_total_count() == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0, "average": 0.0, "median": 0.0}
    values, mean = percentiles_and_mean(histogram, (50, 95, 99, 99.9))
    return {
        "p50": _ms(values[50]),
        "p95": _ms(values[95]),
        "p99": _ms(values[99]),
        "p999": _ms(values[99.9]),
        "average": _ms(mean),
        "median": _ms(values[50]),
    }


def performance_metrics(
    snapshots: list[dict[str, Any]],
    window: str,
    scope: str,
    now: float | None = None,
    routes: bool = True,
    since: float | None = None,
) -> dict[str, Any]:
    """The metrics; per-route latencies only when ``routes`` (they are most
    of the work, and the SLA and the load tests' sampling need none); over
    ``window``, or from ``since`` on (a load test's own run)."""
    now = time.time() if now is None else now
    merged = merge_window((s["windows"] for s in snapshots), window, now, routes, since)
    # A window longer than the fleet has been up is measured over its uptime.
    oldest = min((s.get("started", now) for s in snapshots), default=now)
    seconds = max(1.0, min(window_span(window, now, since)[1], now - oldest))
    requests, failures = merged.outcomes.get("api_gateway", [0, 0])
    success = 100.0 * (requests - failures) / requests if requests else 100.0
    resources = [s["resources"] for s in snapshots]
    database = [s.get("database", {}) for s in snapshots]
    cache = _cache(snapshots, merged, seconds)
    components = {
        name: {
            **latency(merged.histograms.get(name)),
            "count": merged.histograms[name].get_total_count() if name in merged.histograms else 0,
        }
        for name in COMPONENTS
    }
    per_route = {
        key.removeprefix("route:"): {
            "requests": counts[0],
            "errors": counts[1],
            **latency(merged.histograms.get(key)),
        }
        for key, counts in sorted(merged.outcomes.items())
        if routes and key.startswith("route:")
    }
    return {
        "responseTime": latency(merged.histograms.get("api_gateway")),
        "throughput": {
            "requestsPerSecond": round(requests / seconds, 2),
            "totalRequests": requests,
            "successRate": round(success, 4),
            "errorRate": round(100.0 - success, 4),
        },
        "resources": {
            "cpuUsage": round(sum(r["cpu_percent"] for r in resources), 2),
            "memoryUsage": round(sum(r["memory_bytes"] for r in resources) / 2**20, 1),
            "diskIO": round(sum(r["disk_bytes_per_second"] for r in resources), 1),
            "networkIO": round(
                max((r["network_bytes_per_second"] for r in resources), default=0), 1
            ),
            "openConnections": int(sum(r["open_connections"] for r in resources)),
            # Beyond the spec's shape: the workers' share of the machine, as
            # the load tests' failure criteria (cpu_usage, memory_usage) read it.
            "cpuPercent": round(
                sum(r["cpu_percent"] for r in resources)
                / max((r.get("cpu_count", 1.0) for r in resources), default=1.0),
                2,
            ),
            "memoryPercent": round(sum(r.get("memory_percent", 0.0) for r in resources), 2),
        },
        "database": {
            "queryTime": components["database"]["p99"],
            "connectionPoolUtilization": max(
                (d.get("pool_utilization", 0.0) for d in database), default=0.0
            ),
            "slowQueryCount": int(sum(d.get("slow_queries", 0) for d in database)),
            "deadlockCount": int(sum(d.get("deadlocks", 0) for d in database)),
            "replicationLag": max((d.get("replication_lag", 0.0) for d in database), default=0.0),
            # Beyond the spec's shape: each read replica, and whether it
            # gets reads (docs/operations.md, "Database failover").
            "replicas": _replicas(database),
        },
        "cache": cache,
        # Beyond the spec's shape: what it was measured on, per component
        # (the SLA table's rows) and per route.
        "window": window,
        "scope": scope,
        "workers": sum(1 for s in snapshots if not s.get("departed")),
        "measuredSeconds": round(seconds, 1),
        "components": components,
        "routes": per_route,
    }


def _replicas(database: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each replica as the workers see it (each checks for itself): in
    rotation only where every worker has it in, the worst lag any saw."""
    merged: dict[str, dict[str, Any]] = {}
    for gauges in database:
        for seen in gauges.get("replicas", []):
            known = merged.setdefault(seen["name"], dict(seen))
            known["inRotation"] = known["inRotation"] and seen["inRotation"]
            known["reachable"] = known["reachable"] and seen["reachable"]
            lags = [lag for lag in (known["lagSeconds"], seen["lagSeconds"]) if lag is not None]
            known["lagSeconds"] = max(lags) if lags else None  # None: unreachable
            known["reason"] = known["reason"] or seen["reason"]
            known["checkedAt"] = max(known["checkedAt"], seen["checkedAt"])
    return list(merged.values())


def cache_counts(tiers: dict[str, Any]) -> dict[str, float]:
    """One worker's cache counters since start (``Components.cache_stats``),
    as hits, lookups and evictions: a lookup answered by L1 or L2 is a hit."""
    hits = misses = evictions = 0.0
    l1, l2 = tiers.get("l1", {}), tiers.get("l2", {})
    for kind, counts in l1.items():
        answered_by_l2 = l2.get(kind, {}).get("hits", 0)
        hits += counts.get("hits", 0) + answered_by_l2
        misses += counts.get("misses", 0) - answered_by_l2
        evictions += counts.get("evictions", 0)
    return {"cache:hits": hits, "cache:lookups": hits + misses, "cache:evictions": evictions}


def _cache(snapshots: list[dict[str, Any]], merged: Merged, seconds: float) -> dict[str, float]:
    """Hit and miss ratios over the window's lookups of every tier and kind
    (a lookup answered by L1 or L2 is a hit), evictions per second in it."""
    since_start: Counter[str] = Counter()
    for snapshot in snapshots:
        since_start.update(cache_counts(snapshot.get("cache", {})))
    hits = merged.outcomes.get("cache:hits", [0, 0])[0]
    looked = merged.outcomes.get("cache:lookups", [0, 0])[0]
    evictions = merged.outcomes.get("cache:evictions", [0, 0])[0]
    return {
        "hitRatio": round(100.0 * hits / looked, 3) if looked else 100.0,
        "missRatio": round(100.0 * (looked - hits) / looked, 3) if looked else 0.0,
        "evictionRate": round(evictions / seconds, 3),
        # Beyond the spec's shape: the window's lookups, and the counts since
        # start, so that a client sampling twice gets the hit ratio between
        # its samples.
        "windowLookups": looked,
        "hits": since_start["cache:hits"],
        "lookups": since_start["cache:lookups"],
        "memoryFragmentation": max(
            (s.get("redis_fragmentation", 0.0) for s in snapshots), default=0.0
        ),
    }
