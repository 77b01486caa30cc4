"""From what a run measured to the spec's ``performanceResults``, the SLA
table and a verdict.

A run passes when no failure criterion was breached, every component of
the spec's response-time table is inside its Target column (the client's
own measurements for the API gateway, page generation and file upload; the
server's for the rest), the spec's compliance checks hold, the achieved
rate is within 5 % of the target, and no endurance monitor found a trend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from landform.loadtest.config import Criterion
from landform.loadtest.samples import OperationSample, Second, milliseconds, summary
from landform.loadtest.trends import fit
from landform.ops.sla import NO_DATA, OK, WARNING, Sla

if TYPE_CHECKING:
    from landform.loadtest.runner import RunData

WINDOW_SECONDS = 10  # failure criteria are judged over the last ten seconds
NOT_MEASURED = (
    "no ops token: the server's own figures are not measured (its CPU and memory, so the "
    "cpu_usage and memory_usage criteria; connection-pool use; the cache hit ratio; the "
    "GraphQL, Database, Cache and WebSocket rows of the SLA table; databasePerformance)"
)
RATE_TOLERANCE = 0.95  # achieved / target
PASSING = frozenset({OK, NO_DATA})
# The SLA rows the harness measures itself, and which operations feed them.
CLIENT_MEASURES = {"api_gateway", "page_generation", "file_upload"}


def component_of(operation: str) -> str:
    if operation == "GET /{slug}":
        return "page_generation"
    if operation == "POST /files/upload":
        return "file_upload"
    return "api_gateway"


def window_figures(
    seconds: list[Second], server: list[dict[str, float]]
) -> dict[str, float | None]:
    """The failure criteria's metrics over the last ``WINDOW_SECONDS``."""
    total = OperationSample()
    for second in seconds[-WINDOW_SECONDS:]:
        total.add(second.merged())
    latest = server[-1] if server else {}
    return {
        "error_rate": 100 * total.errors / total.requests if total.requests else None,
        "response_time_p99": milliseconds(total.latency, 99) if total.requests else None,
        "cpu_usage": latest.get("cpuPercent"),
        "memory_usage": latest.get("memoryPercent"),
        "requests_per_second": total.requests / max(1, min(WINDOW_SECONDS, len(seconds))),
    }


UNITS = {"error_rate": "%", "response_time_p99": " ms", "cpu_usage": "%", "memory_usage": "%"}


def breaches(
    criteria: tuple[Criterion, ...], figures: dict[str, float | None]
) -> list[dict[str, Any]]:
    found = []
    for criterion in criteria:
        value = figures.get(criterion.metric)
        if value is not None and criterion.breached_by(value):
            unit = UNITS[criterion.metric]
            found.append(
                {
                    "metric": criterion.metric,
                    "comparison": criterion.comparison,
                    "limit": criterion.limit,
                    "value": round(value, 3),
                    "text": f"{criterion.metric} {value:.1f}{unit} {criterion.comparison} "
                    f"{criterion.limit:g}{unit}",
                }
            )
    return found


def _human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} hours"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def _totals(seconds: list[Second]) -> tuple[OperationSample, dict[str, OperationSample]]:
    total = OperationSample()
    per_operation: dict[str, OperationSample] = {}
    for second in seconds:
        for name, sample in second.operations.items():
            per_operation.setdefault(name, OperationSample()).add(sample)
            total.add(sample)
    return total, per_operation


def evaluate(data: RunData, sla: Sla, scale: float = 1.0) -> dict[str, Any]:
    test = data.test
    seconds = data.seconds
    measured = max(1.0, float(len(seconds)))
    total, per_operation = _totals(seconds)
    overall = summary(total, measured)
    success = 100.0 * (total.requests - total.errors) / total.requests if total.requests else 0.0
    steady = [s for s in seconds if s.at >= test.ramp_up] or seconds
    steady_rate = sum(s.merged().requests for s in steady) / max(1, len(steady))

    # The SLA table: the client's rows from its own measurements, the
    # server's from /ops/performance at the end of the run.
    client: dict[str, OperationSample] = {measure: OperationSample() for measure in CLIENT_MEASURES}
    for name, sample in per_operation.items():
        # Every request passes the gateway (as the server counts it too).
        client["api_gateway"].add(sample)
        if component_of(name) != "api_gateway":
            client[component_of(name)].add(sample)
    server_components = (data.server_final or {}).get("components", {})
    components = {
        measure: {
            "p99": milliseconds(sample.latency, 99),
            "count": sample.latency.get_total_count(),
        }
        for measure, sample in client.items()
    }
    for measure, figures in server_components.items():
        components.setdefault(measure, {"p99": figures["p99"], "count": figures["count"]})
    hit_ratio = _cache_hit_ratio(data)
    sla_result = sla.evaluate(
        {
            "components": components,
            "responseTime": {"p99": overall["p99ResponseTime"]},
            "throughput": {"successRate": success},
            "cache": {"hitRatio": hit_ratio if hit_ratio is not None else 0.0},
        }
    )
    measures = {row.name: row.measure for row in sla.components}
    for row in sla_result["components"]:
        row["source"] = "client" if measures[row["name"]] in CLIENT_MEASURES else "server"
    for check in sla_result["checks"]:
        if check["name"] == "Cache Hit Ratio" and hit_ratio is None:
            check["status"], check["current"] = NO_DATA, None
    thresholds = {row.measure: row for row in sla.components}
    operations = []
    for name in sorted(per_operation, key=lambda n: (component_of(n), n)):
        row = summary(per_operation[name], measured)
        limits = thresholds.get(component_of(name))
        status = NO_DATA
        if limits is not None and row["requests"]:
            p99 = row["p99ResponseTime"]
            status = (
                "OK" if p99 < limits.target
                else "ACCEPTABLE" if p99 < limits.acceptable
                else "DEGRADED" if p99 < limits.critical
                else "CRITICAL"
            )  # fmt: skip
        operations.append(
            {
                "name": name,
                "component": limits.name if limits else None,
                "target": limits.target if limits else None,
                "acceptable": limits.acceptable if limits else None,
                "critical": limits.critical if limits else None,
                "status": status,
                **row,
            }
        )
    throughput: dict[str, Any] = {
        "target": round(test.requests_per_second, 2),
        "achieved": round(steady_rate, 2),
        "ratio": round(steady_rate / test.requests_per_second, 4),
        "status": (
            OK if steady_rate >= RATE_TOLERANCE * test.requests_per_second else "BELOW_TARGET"
        ),
    }
    criteria = _criteria(data)
    trends = _trends(data)
    reasons = [f"failure criterion: {b['text']}" for b in data.breaches]
    reasons += [
        f"{row['name']}: p99 {row['p99']:.1f} ms is {row['status']} (Target < {row['target']:g} ms)"
        for row in sla_result["components"]
        if row["status"] not in PASSING
    ]
    # The spec's checks say how bad a miss is: a BREACH fails the run, a
    # WARNING (the cache hit ratio) is reported beside the verdict.
    missed_checks = [c for c in sla_result["checks"] if c["status"] not in PASSING]
    reasons += [
        f"{check['name']}: {check['current']:.2f} is {check['status']}"
        for check in missed_checks
        if check["status"] != WARNING
    ]
    warnings = [
        f"{check['name']}: {check['current']:.2f} is {check['status']} (target {check['target']:g})"
        for check in missed_checks
        if check["status"] == WARNING
    ]
    if not data.server_watched:
        warnings.append(NOT_MEASURED)
    refused = total.statuses.get("429", 0)
    if refused:
        # One address sends what thousands of visitors would: the server's
        # per-address limits have to be raised for a load test.
        warnings.append(
            f"{refused} requests were refused with 429 by the server's rate limits: raise its "
            "per-address limits for load tests (LANDFORM_RATE_LIMIT_*, "
            "LANDFORM_ANALYTICS_RATE_*; see docs/loadtest.md)"
        )
    if throughput["status"] != OK:
        reasons.append(
            f"throughput: {throughput['achieved']:.1f} req/s after the ramp-up, "
            f"{throughput['ratio'] * 100:.1f} % of the target {throughput['target']:g}"
        )
    reasons += [f"{t['monitor']}: {t['finding']}" for t in trends if t["flagged"]]
    if data.stopped_early == "interrupted":
        reasons.append("the run was interrupted")

    results = {
        "averageResponseTime": overall["averageResponseTime"],
        "p50ResponseTime": overall["p50ResponseTime"],
        "p95ResponseTime": overall["p95ResponseTime"],
        "p99ResponseTime": overall["p99ResponseTime"],
        "successRate": round(success, 4),
        "errorsPerSecond": round(total.errors / measured, 3),
        "requestsPerSecond": round(total.requests / measured, 2),
    }
    performance: dict[str, Any] = {
        "loadTest": {
            "duration": _human(measured),
            "concurrentUsers": test.concurrent_users,
            "totalRequests": total.requests,
            "results": results,
        }
    }
    if test.failure_criteria:
        performance["stressTest"] = {
            "peakConcurrentUsers": max((s.users for s in seconds), default=0),
            "breakingPoint": _breaking_point(data) if data.breaches else None,
        }
    if data.server_final is not None or data.server:
        performance["databasePerformance"] = _database(data, hit_ratio)
    if data.server_final is None and data.server:
        warnings.append(
            "the server did not answer at the end of the run: databasePerformance comes from "
            f"its last sample during the run (at {data.server[-1]['at']:g} s), and the "
            "server's rows of the SLA table have no data"
        )
    performance["fileOperations"] = _files(per_operation, measured)
    return {
        "performanceResults": performance,
        "scenario": {
            "name": test.name,
            "description": test.description,
            "host": data.host,
            "startedAt": data.started_at,
            "scale": scale,
            "duration": test.duration,
            "rampUp": test.ramp_up,
            "concurrentUsers": test.concurrent_users,
            "requestsPerSecond": test.requests_per_second,
            "weights": {s.name: s.weight for s in test.scenarios},
        },
        "verdict": {"passed": not reasons, "reasons": reasons, "warnings": warnings},
        "stoppedEarly": data.stopped_early,
        "throughput": throughput,
        "failureCriteria": criteria,
        "components": sla_result["components"],
        "checks": sla_result["checks"],
        "operations": operations,
        "trends": trends,
        "timeline": [_timeline_row(s) for s in seconds],
        "server": data.server,
        "generator": {
            "processes": data.processes,
            "cpuPercentMedian": _median(data.generator_cpu),
        },
    }


def _timeline_row(second: Second) -> dict[str, Any]:
    merged = second.merged()
    return {
        "at": second.at,
        "users": second.users,
        "requests": merged.requests,
        "errors": merged.errors,
        "p50": milliseconds(merged.latency, 50),
        "p95": milliseconds(merged.latency, 95),
        "p99": milliseconds(merged.latency, 99),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 1) if ordered else 0.0


def _cache_hit_ratio(data: RunData) -> float | None:
    """Lookups answered by a cache tier after the ramp-up (a cold cache
    fills during it), in percent."""
    counted = [s for s in data.server if "cacheLookups" in s]
    steady = [s for s in counted if s["at"] >= data.test.ramp_up]
    samples = steady if len(steady) >= 2 else counted
    if len(samples) >= 2 and samples[-1]["cacheLookups"] > samples[0]["cacheLookups"]:
        first, last = samples[0], samples[-1]
        return round(
            100
            * (last["cacheHits"] - first["cacheHits"])
            / (last["cacheLookups"] - first["cacheLookups"]),
            3,
        )
    if data.server_final is not None:
        return float(data.server_final["cache"]["hitRatio"])
    return None


def _criteria(data: RunData) -> list[dict[str, Any]]:
    """Each failure criterion with the worst value seen over any window."""
    rows = []
    breached = {b["metric"]: b for b in data.breaches}
    # The value that stopped the run is the worst of its criterion's: the
    # run judged a window ending at any second (and a run's last window may
    # end between the ten-second steps summed up here).
    worst: dict[str, float] = {metric: b["value"] for metric, b in breached.items()}
    ends = {*range(WINDOW_SECONDS, len(data.seconds) + 1, WINDOW_SECONDS), len(data.seconds)}
    for end in sorted(ends - {0}):
        figures = window_figures(data.seconds[:end], [])
        for metric in ("error_rate", "response_time_p99"):
            value = figures[metric]
            if value is not None:
                worst[metric] = max(worst.get(metric, value), value)
    for metric, field in (("cpu_usage", "cpuPercent"), ("memory_usage", "memoryPercent")):
        values = [s[field] for s in data.server if field in s]
        if values:
            worst[metric] = max(values)
    for criterion in data.test.failure_criteria:
        rows.append(
            {
                "metric": criterion.metric,
                "comparison": criterion.comparison,
                "limit": criterion.limit,
                "worst": round(worst[criterion.metric], 3) if criterion.metric in worst else None,
                "breached": criterion.metric in breached,
            }
        )
    return rows


def _breaking_point(data: RunData) -> dict[str, Any]:
    figures = window_figures(data.seconds, data.server)
    return {
        "requestsPerSecond": round(figures["requests_per_second"] or 0.0, 2),
        "responseTimeP99": figures["response_time_p99"],
        "errorRate": round(figures["error_rate"] or 0.0, 3),
        "cpuUtilization": figures["cpu_usage"],
        "memoryUtilization": figures["memory_usage"],
    }


def _database(data: RunData, hit_ratio: float | None) -> dict[str, Any]:
    """From the server's figures over the run, or, when it did not answer
    at the end, from its last sample during the run (the last minute before
    it; None for what the samples do not hold)."""
    pool = [s["poolUtilization"] for s in data.server if "poolUtilization" in s]
    if data.server_final is not None:
        database = data.server_final.get("database", {})
        queries = data.server_final.get("components", {}).get("database", {})
        average, p99 = queries.get("average", 0.0), queries.get("p99", 0.0)
        count, slow = queries.get("count", 0), database.get("slowQueryCount", 0)
        lag = database.get("replicationLag", 0.0)
    else:
        last = next((s for s in reversed(data.server) if "dbQueries" in s), {})
        average, p99 = last.get("dbQueryAverage"), last.get("dbQueryP99")
        count, slow = last.get("dbQueries", 0), last.get("slowQueryCount", 0)
        lag = last.get("replicationLag")
    return {
        "averageQueryTime": average,
        "p99QueryTime": p99,
        "slowQueries": round(100 * slow / count, 4) if count else 0.0,
        "connectionPoolUtilization": round(max(pool), 2) if pool else None,
        "replicationLag": lag,
        "cacheHitRatio": hit_ratio,
    }


def _files(per_operation: dict[str, OperationSample], measured: float) -> dict[str, Any]:
    uploads = per_operation.get("POST /files/upload")
    assets = per_operation.get("GET /assets/{file}")
    operations = (uploads.requests if uploads else 0) + (assets.requests if assets else 0)
    upload_average = summary(uploads, measured)["averageResponseTime"] if uploads else None
    return {
        "uploadResponseTime": upload_average,
        # MB (10^6 bytes) of asset bodies received per second of the run:
        # what the mix downloaded, not the server's ceiling.
        "downloadThroughput": round(assets.bytes / measured / 1e6, 6) if assets else None,
        # Not measured: the harness sends to the host it is given, and a
        # Landform origin has no CDN of its own (it sends the headers a CDN
        # in front would honour); a ratio here would be made up. A CDN's
        # hit ratio is in the CDN's own figures.
        "cdnCacheHitRatio": None,
        "assetResponseTimeP99": milliseconds(assets.latency, 99) if assets else None,
        "storageOperationsPerSecond": round(operations / measured, 2),
    }


MONITORS = {
    "memory_leaks": ("memoryMB", "rising", "MB"),
    "connection_pool_exhaustion": ("poolUtilization", "rising", "%"),
    "cache_efficiency_degradation": ("cacheHitRatio", "falling", "%"),
}
POOL_EXHAUSTED = 95.0  # percent of the pool in use


def _trends(data: RunData) -> list[dict[str, Any]]:
    rows = []
    after_ramp = [s for s in data.server if s["at"] >= data.test.ramp_up]
    for monitor in data.test.monitoring:
        field, direction, unit = MONITORS[monitor]
        samples = [s for s in after_ramp if field in s]
        trend = fit([s["at"] for s in samples], [s[field] for s in samples])
        flagged = False
        finding = "not enough server samples (needs the ops token and a run past the ramp-up)"
        if trend is not None:
            flagged = trend.rising() if direction == "rising" else trend.falling()
            finding = (
                f"{trend.slope:+.2f} {unit}/hour ({trend.change:+.2f} {unit} over the run, "
                f"t = {trend.t_stat:.1f}, mean {trend.mean:.2f} {unit})"
            )
            peak = max(s[field] for s in samples)
            if monitor == "connection_pool_exhaustion" and peak >= POOL_EXHAUSTED:
                flagged = True
                finding += f"; the pool reached {peak:.0f} %"
        rows.append(
            {
                "monitor": monitor,
                "metric": field,
                "flagged": flagged,
                "finding": finding,
                "slopePerHour": round(trend.slope, 4) if trend else None,
                "samples": trend.samples if trend else len(samples),
            }
        )
    return rows
