"""A Grafana dashboard (JSON) over the metrics ``GET /metrics`` exposes
(``landform ops grafana-dashboard``): throughput, errors, p99 per spec
component against its SLA thresholds, cache hit ratio, resources and the
database."""

from __future__ import annotations

import json
from typing import Any

from landform.ops.rules import SUCCESS_RATE
from landform.ops.sla import Sla


def _panel(
    ident: int, title: str, targets: list[tuple[str, str]], unit: str, x: int, y: int
) -> dict[str, Any]:
    return {
        "id": ident,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard(sla: Sla) -> str:
    p99 = (
        "histogram_quantile(0.99, sum by (le, component) "
        "(rate(landform_component_duration_seconds_bucket[5m])))"
    )
    panels = [
        _panel(1, "Requests per second", [("sum(rate(landform_requests_total[1m]))", "all")],
               "reqps", 0, 0),
        _panel(2, "Success rate", [(SUCCESS_RATE, "success %")], "percent", 12, 0),
        _panel(3, "p99 by spec component", [(p99, "{{component}}")], "s", 0, 8),
        _panel(4, "Cache hit ratio", [(
            '100 * sum(rate(landform_cache_lookups_total{outcome="hit"}[5m])) '
            '/ sum(rate(landform_cache_lookups_total{tier="l1"}[5m]))', "hit %")],
            "percent", 12, 8),
        _panel(5, "p99 by route", [(
            "histogram_quantile(0.99, sum by (le, route) "
            "(rate(landform_request_duration_seconds_bucket[5m])))", "{{route}}")], "s", 0, 16),
        _panel(6, "CPU and memory", [
            ("landform_cpu_percent", "CPU % (100 = a core)"),
            ("landform_memory_bytes / 2^20", "memory MiB"),
        ], "short", 12, 16),
        _panel(7, "Database", [
            ("landform_db_pool_utilization_percent", "pool %"),
            ("landform_db_replication_lag_seconds", "replica lag s"),
            ("rate(landform_db_slow_queries_total[5m])", "slow queries/s"),
        ], "short", 0, 24),
        _panel(8, "Connections and Redis", [
            ("landform_open_connections", "open connections"),
            ("landform_redis_memory_fragmentation_ratio", "Redis fragmentation"),
        ], "short", 12, 24),
    ]  # fmt: skip
    thresholds = [
        {"component": row.measure, "target_ms": row.target, "acceptable_ms": row.acceptable,
         "critical_ms": row.critical}
        for row in sla.components
    ]  # fmt: skip
    board = {
        "title": "Landform SLA",
        "uid": "landform-sla",
        "schemaVersion": 39,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "tags": ["landform"],
        "description": "SLA thresholds (p99, ms): " + json.dumps(thresholds),
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }
    return json.dumps(board, indent=2) + "\n"
