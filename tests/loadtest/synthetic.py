"""Made-up runs with known figures, for the verdict, report and compare
tests: each second gets ``per_second`` requests of every operation, with
latencies around ``latency_ms`` (a tail from ``slow_ms``) and errors."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from landform.loadtest.config import built_in, find
from landform.loadtest.runner import RunData
from landform.loadtest.samples import Second
from landform.loadtest.verdict import evaluate
from landform.ops.sla import Sla

OPERATIONS = [
    "POST /auth/register", "POST /auth/verify-email", "POST /landing-pages",
    "PUT /landing-pages/{id}", "GET /templates", "POST /files/upload", "GET /landing-pages/{id}",
    "PUT /landing-pages/{id}/content", "GET /analytics/pages/{id}", "GET /analytics/dashboard",
    "POST /analytics/custom-query", "GET /{slug}", "POST /analytics/track-view",
    "GET /assets/{file}",
]  # fmt: skip


def run_data(
    name: str = "peak_traffic_simulation",
    seconds: int = 30,
    per_second: int = 10,
    latency_ms: float = 8.0,
    slow_ms: float = 40.0,
    error_every: int = 0,
    rate: float | None = None,
    server: list[dict[str, float]] | None = None,
    server_final: dict[str, Any] | None = None,
) -> RunData:
    test = find(built_in(), name).scaled(0.001, float(seconds))
    # The target is what the synthetic seconds deliver unless told otherwise.
    test = replace(test, requests_per_second=rate or per_second * len(OPERATIONS), ramp_up=5.0)
    data = RunData(test, "http://synthetic", "2026-11-29T00:00:00+00:00", 1)
    count = 0
    for at in range(seconds):
        second = Second(at, users=test.concurrent_users)
        for operation in OPERATIONS:
            for n in range(per_second):
                count += 1
                failed = bool(error_every) and count % error_every == 0
                ms = slow_ms if n == per_second - 1 and at % 5 == 0 else latency_ms
                second.sample(operation).record(
                    ms / 1000, ms / 1000, "500" if failed else "200", failed
                )
        data.seconds.append(second)
        data.generator_cpu.append(20.0)
    data.server = server or []
    data.server_final = server_final
    return data


def result(**options: Any) -> dict[str, Any]:
    return evaluate(run_data(**options), Sla.load(), 0.001)
