"""The run's result as files: ``result.json`` (the spec's
``performanceResults`` shape, the SLA rows and the time series) and
``report.html``, one self-contained page: the verdict, the SLA table
coloured by status, latency percentiles, requests and errors over time,
the server's CPU and memory, and every operation's figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from landform.loadtest.charts import Series, line_chart

TEMPLATE = "report.html.j2"
STATUS_CLASS = {
    "OK": "ok",
    "ACCEPTABLE": "acceptable",
    "DEGRADED": "degraded",
    "CRITICAL": "critical",
    "BREACH": "critical",
    "WARNING": "degraded",
    "BELOW_TARGET": "critical",
    "NO_DATA": "nodata",
}


def charts(result: dict[str, Any]) -> dict[str, Markup]:
    timeline = result["timeline"]
    server = result["server"]

    def over_time(key: str) -> list[tuple[float, float]]:
        return [(row["at"], float(row[key])) for row in timeline]

    latency = line_chart(
        "Latency percentiles (from the intended send time)",
        "ms",
        [
            Series("p50", "#2b7bb9", over_time("p50")),
            Series("p95", "#e0a800", over_time("p95")),
            Series("p99", "#c0392b", over_time("p99")),
        ],
    )
    throughput = line_chart(
        "Requests and errors per second",
        "per s",
        [
            Series("requests", "#2b7bb9", over_time("requests")),
            Series("errors", "#c0392b", over_time("errors")),
            Series("users", "#7f8c8d", over_time("users")),
        ],
    )
    resources = line_chart(
        "Server CPU and memory (from /ops/performance)",
        "%",
        [
            Series("CPU", "#8e44ad", [(s["at"], s["cpuPercent"]) for s in server]),
            Series("memory", "#16a085", [(s["at"], s["memoryPercent"]) for s in server]),
            Series(
                "DB pool",
                "#d35400",
                [(s["at"], s["poolUtilization"]) for s in server if "poolUtilization" in s],
            ),
        ],
    )
    # line_chart escapes every text it draws; the rest is numbers and our colours.
    return {
        "latency": Markup(latency),  # noqa: S704
        "throughput": Markup(throughput),  # noqa: S704
        "resources": Markup(resources),  # noqa: S704
    }


def render_html(result: dict[str, Any]) -> str:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    environment.filters["status_class"] = lambda status: STATUS_CLASS.get(str(status), "nodata")
    return environment.get_template(TEMPLATE).render(r=result, charts=charts(result))


def write(result: dict[str, Any], output: Path) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, html_path = output / "result.json", output / "report.html"
    json_path.write_text(json.dumps(result, indent=2))
    html_path.write_text(render_html(result))
    return json_path, html_path
